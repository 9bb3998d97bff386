"""Simulation-based inference end to end: simulator -> fit -> one posterior -> calibration.

Run: python examples/sbi_gaussian_mixture.py [--simulations 50000] [--epochs 20] [--seed 0]

Task: the Gaussian mixture of Lueckmann et al. 2021 (arXiv:2101.04653) with a set of 10
i.i.d. observations per simulation: ``theta ~ U(-10, 10)^2`` and each observation
``x_j ~ N(theta, I) / 2 + N(theta, 0.01 I) / 2`` (`tfp_flows.simulators`). The exact
posterior is known (a truncated mixture of 2^10 Gaussians), so its NLL is the floor.

Model: ``NSF(2, context_shape=(10, 2), context_encoder=DeepSet(16), standardize=True)``:
a `tfp_flows.encoders.DeepSet` summarises each set (the same for any order of the
observations) and every autoregressive spline step sees its summary; ``flow.adapt`` standardises
``theta`` and the observations' two coordinates from the training simulations, and ``fit``
trains the encoder with the flow (Adam 1e-3 with cosine decay, batch 256).

Prints the held-out mean ``-log q(theta | x)`` beside the exact posterior's, the
simulation-based calibration (SBC) check (Talts et al. 2018, arXiv:1804.06788), the
expected coverage of HPD regions, and the R^2 of posterior means; writes
``examples/out/sbi_posterior.png`` (one observation: its 10 points, the exact posterior
and the flow's) and ``examples/out/sbi_calibration.png`` (SBC ECDF difference with its
95% simultaneous band, expected coverage, parameter recovery).
"""

import argparse
import time
from pathlib import Path

import keras
import matplotlib
import numpy as np

import tfp_flows
from tfp_flows import diagnostics, plots, simulators
from tfp_flows.encoders import DeepSet

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--simulations", type=int, default=50_000)
parser.add_argument("--epochs", type=int, default=20)
parser.add_argument("--observations", type=int, default=10, help="i.i.d. observations per set")
parser.add_argument("--test", type=int, default=1000, help="held-out simulations")
parser.add_argument("--draws", type=int, default=200, help="posterior draws per test set")
parser.add_argument("--encoder", choices=["deepset", "attention"], default="deepset")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()
out = Path(__file__).resolve().parent / "out"
out.mkdir(exist_ok=True)
keras.utils.set_random_seed(args.seed)

# -- simulate ---------------------------------------------------------------------------------
theta, x = simulators.gaussian_mixture(args.simulations, np.random.default_rng([args.seed, 0]),
                                       args.observations)
test_theta, test_x = simulators.gaussian_mixture(args.test, np.random.default_rng([args.seed, 1]),
                                                 args.observations)
theta, x, test_theta, test_x = (a.astype(np.float32) for a in (theta, x, test_theta, test_x))

# -- fit --------------------------------------------------------------------------------------


def attention_encoder():
    """Any Keras model is an encoder: one self-attention block over the set (each
    observation sees the others, so the points of the narrow cluster can find each other),
    then a mean over the set; as permutation-invariant as the DeepSet."""
    sets = keras.Input((args.observations, 2))
    h = keras.layers.Dense(64, activation="relu")(sets)
    h = keras.layers.LayerNormalization()(
        h + keras.layers.MultiHeadAttention(num_heads=4, key_dim=16)(h, h))
    h = keras.layers.Dense(64, activation="relu")(h)
    return keras.Model(sets, keras.layers.Dense(16)(keras.layers.GlobalAveragePooling1D()(h)))


encoder = DeepSet(16, hidden_units=(64, 64)) if args.encoder == "deepset" else attention_encoder()
flow = tfp_flows.NSF(2, num_steps=5, hidden_units=(64, 64), context_shape=(args.observations, 2),
                     context_encoder=encoder, standardize=True)
flow.adapt(theta, x)
steps = args.epochs * int(np.ceil(args.simulations / 256))
flow.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, steps)))
start = time.perf_counter()
flow.fit(theta, x, batch_size=256, epochs=args.epochs, verbose=0)
seconds = time.perf_counter() - start
nll = -float(np.mean(flow.log_prob(test_theta, test_x)))
floor = -float(np.mean(simulators.gaussian_mixture_log_posterior(test_theta, test_x)))
print(f"{args.simulations} simulations of {args.observations} observations, {steps} steps of "
      f"batch 256 in {seconds:.0f} s; {flow.count_params():,} weights "
      f"({flow.context_encoder.count_params():,} in the {args.encoder} encoder)")
print(f"held-out -log q(theta | x) over {args.test} simulations: {nll:.3f} nats "
      f"(exact posterior: {floor:.3f})")

# -- calibration ------------------------------------------------------------------------------
start = time.perf_counter()
result = diagnostics.calibration(flow, test_theta, test_x, num_samples=args.draws, seed=1)
inside = result.in_band()
levels, covered = result.expected_coverage()
mean, _, _ = diagnostics.posterior_intervals(result.samples)
r2 = 1.0 - ((mean - test_theta) ** 2).mean(0) / test_theta.var(0)
print(f"SBC over {args.test} simulations, {args.draws} draws each "
      f"({time.perf_counter() - start:.0f} s): ECDF inside its 95% band: theta_1 {inside[0]}, "
      f"theta_2 {inside[1]}; HPD coverage curve inside its band: {inside[2]}")
for level in (0.5, 0.9, 0.95):
    at = np.argmin(np.abs(levels - level))
    print(f"  expected coverage of the {levels[at]:.3f} HPD region: {covered[at]:.3f}")
print(f"R^2 of posterior means: theta_1 {r2[0]:.4f}, theta_2 {r2[1]:.4f}")
suffix = "" if args.encoder == "deepset" else f"_{args.encoder}"
plots.calibration(result, test_theta, out / f"sbi_calibration{suffix}.png")

# -- one observation: the exact posterior and the flow's --------------------------------------
index = 0
truth, observed = test_theta[index], test_x[index]
draws = flow.sample(4000, context=observed, seed=2).numpy()
half = max(0.4, 4 * float(draws.std(0).max()))
grid_1 = np.linspace(truth[0] - half, truth[0] + half, 200)
grid_2 = np.linspace(truth[1] - half, truth[1] + half, 200)
grid = np.stack(np.meshgrid(grid_1, grid_2), -1).reshape(-1, 2)
exact = np.exp(simulators.gaussian_mixture_log_posterior(grid, observed)).reshape(200, 200)
learned = np.exp(flow.log_prob(grid.astype(np.float32), observed).numpy()).reshape(200, 200)
figure, axes = plt.subplots(1, 3, figsize=(13, 4.2))
axes[0].scatter(observed[:, 0], observed[:, 1], s=12, label=f"{args.observations} observations")
axes[0].scatter(*truth, marker="*", s=120, c="k", label="true theta")
axes[0].add_patch(plt.Rectangle(truth - half, 2 * half, 2 * half, fill=False, ls="--"))
axes[0].set_title("one simulation (dashed: the zoom)")
axes[0].legend(fontsize=7)
extent = (grid_1[0], grid_1[-1], grid_2[0], grid_2[-1])
for axis, density, title in ((axes[1], exact, "exact posterior p(theta | x)"),
                             (axes[2], learned, "flow q(theta | x), 500 of its draws")):
    axis.imshow(density, origin="lower", extent=extent, aspect="auto", cmap="magma")
    axis.scatter(*truth, marker="*", s=120, c="cyan")
    axis.set_title(title)
    axis.set_xlabel("theta_1")
    axis.set_xlim(extent[:2])
    axis.set_ylim(extent[2:])
axes[2].scatter(draws[:500, 0], draws[:500, 1], s=1, c="white", alpha=0.4)
axes[1].set_ylabel("theta_2")
figure.tight_layout()
figure.savefig(out / f"sbi_posterior{suffix}.png", dpi=100)
plt.close(figure)
print(f"wrote {out / f'sbi_posterior{suffix}.png'} and {out / f'sbi_calibration{suffix}.png'}")
