"""Ablation of the defaults that decide how fast a flow learns per step (issue 13).

``python -m benchmarks.ablation [--quick] [--seeds 1 2 3] [--only NAME ...] [moons|mnist|digits]``

Each row changes one thing (or a few, named) against a reference row and trains
with the plain budget a new user gets: ``compile(optimizer=Adam(1e-3))``, no
schedule (``jit_compile=True`` and ``steps_per_execution=16`` for speed: the maths is
that of one step at a time). Printed: the test score per seed and their mean.

- ``moons``: two moons (noise 0.05), 8 affine couplings with 64x64 MLPs, batch 256,
  3,000 steps; test NLL in nats on 5,000 fresh points. ``--zuko PYTHON`` also trains
  zuko's ``RealNVP`` (PyTorch) on the very same batches with that interpreter (a
  separate environment with ``torch`` and ``zuko``; never a dependency of this package).
- ``mnist``: the 5,000-image MNIST subset (28x28, not padded), ``Glow(num_levels=2,
  num_steps=4, hidden_channels=128)``, batch 64, 1,500 steps; test bits/dim, the
  uniform-dequantization bound (one fresh draw of ``u``, seed 0).
- ``digits``: 8x8 digits (17 levels), the same Glow, 1,000 steps; bits/dim as above.

Every row is built here from the package's layers, so that a row can differ from
the defaults; the row named ``defaults`` is the public builder as it ships.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import keras  # noqa: E402  (after tfp_flows set the backend)
import numpy as np
import tensorflow as tf  # noqa: E402

import tfp_flows  # noqa: E402
from benchmarks import _common
from tfp_flows import bijectors, layers, metrics
from tfp_flows.bijectors import HalfSplit
from tfp_flows.conditioners import MLP

LR, SPE = 1e-3, 16

# -- scale parametrisations of the affine coupling (row options) ---------------------------

class RationalScaleCoupling(bijectors.AffineCoupling):
    """zuko's ``s = r / (1 + |r| / c)`` (c = log(1/1e-3) = 6.9 there)."""

    def _log_scale(self, raw):
        return raw / (1.0 + tf.abs(raw) / self._transform.log_scale_bound)

    def forward_b(self, x_b, params):
        shift, raw = params
        s = self._log_scale(raw)
        return x_b * tf.exp(s) + shift, s

    def inverse_b(self, y_b, params):
        shift, raw = params
        s = self._log_scale(raw)
        return (y_b - shift) * tf.exp(-s), -s


class SigmoidSamplingScaleCoupling(RationalScaleCoupling):
    """The sigmoid on the sampling side: ``z_b -> z_b * sigmoid(r + 2) + t``, so
    ``s = log sigmoid(r + 2)``: the normalizing direction only expands (unbounded)."""

    def _log_scale(self, raw):
        return tf.math.log_sigmoid(raw + 2.0)


class NormalizingAffineCoupling(bijectors.AffineCoupling):
    """Shift after scale in the normalizing direction (RealNVP's paper, zuko):
    normalizing ``x_b -> x_b * exp(s) + t``; sampling ``y_b -> (y_b - t) * exp(-s)``."""

    def forward_b(self, x_b, params):
        shift, raw = params
        s = self._transform.log_scale_bound * tf.tanh(raw / self._transform.log_scale_bound)
        return (x_b - shift) * tf.exp(-s), -s

    def inverse_b(self, y_b, params):
        shift, raw = params
        s = self._transform.log_scale_bound * tf.tanh(raw / self._transform.log_scale_bound)
        return y_b * tf.exp(s) + shift, s


class NormalizingAffineLayer(layers.AffineCoupling):
    bijector_class = NormalizingAffineCoupling


class RationalScaleLayer(layers.AffineCoupling):
    bijector_class = RationalScaleCoupling


def sigmoid_scale_layer(*args, **kwargs):
    """Glow's code, as `Glow` now ships it: normalizing ``x_b -> (x_b - t) * sigmoid(r + 2)``."""
    return layers.AffineCoupling(*args, scale="sigmoid", **kwargs)


class SigmoidSamplingScaleLayer(layers.AffineCoupling):
    bijector_class = SigmoidSamplingScaleCoupling


COUPLING_LAYERS = {"tanh": layers.AffineCoupling, "normalizing": NormalizingAffineLayer,
                   "rational": RationalScaleLayer, "sigmoid": sigmoid_scale_layer,
                   "sigmoid_sampling": SigmoidSamplingScaleLayer}


def _initializer(name):
    """"torch": PyTorch's ``nn.Linear`` default, ``U(+-1/sqrt(fan_in))`` (the `MLP` default)."""
    return "fan_in_uniform" if name == "torch" else name


def _optimizer(row):
    kwargs = {key: row[key] for key in ("epsilon", "beta_2", "clipnorm", "global_clipnorm")
              if row.get(key) is not None}
    return keras.optimizers.Adam(LR, **kwargs)


# -- two moons ------------------------------------------------------------------------------

MOONS_REFERENCE = dict(num_steps=8, activation="tanh", hidden_init="glorot_uniform",
                       output_init="zeros", scale="tanh", bound=2.0, actnorm=True,
                       linear="reverse")

# (name, changes against the reference). The reference is the state before issue 13.
MOONS_ROWS = [
    ("reference (before)", {}),
    ("relu", {"activation": "relu"}),
    ("elu", {"activation": "elu"}),
    ("silu", {"activation": "silu"}),
    ("relu, he init", {"activation": "relu", "hidden_init": "he_uniform"}),
    ("relu, torch init", {"activation": "relu", "hidden_init": "torch"}),
    ("output init torch (not zero)", {"output_init": "torch"}),
    ("hidden biases torch (not zero)", {"bias_init": "torch"}),
    ("relu, torch init, torch biases", {"activation": "relu", "hidden_init": "torch",
                                        "bias_init": "torch"}),
    ("relu, glorot init, torch biases", {"activation": "relu", "bias_init": "torch"}),
    ("relu, torch init, torch biases + rational c=6.9", {
        "activation": "relu", "hidden_init": "torch", "bias_init": "torch",
        "scale": "rational", "bound": 6.9}),
    ("relu, torch init, torch biases + no ActNorm", {
        "activation": "relu", "hidden_init": "torch", "bias_init": "torch", "actnorm": False}),
    ("relu, torch init, torch biases + LU", {
        "activation": "relu", "hidden_init": "torch", "bias_init": "torch", "linear": "lu"}),
    ("relu, torch init, torch biases + output torch", {
        "activation": "relu", "hidden_init": "torch", "bias_init": "torch",
        "output_init": "torch"}),
    ("relu, torch init, torch biases + rational + no ActNorm", {
        "activation": "relu", "hidden_init": "torch", "bias_init": "torch",
        "scale": "rational", "bound": 6.9, "actnorm": False}),
    ("tanh, torch init, torch biases", {"hidden_init": "torch", "bias_init": "torch"}),
    ("new: relu, torch init and biases, no ActNorm", {
        "activation": "relu", "hidden_init": "torch", "bias_init": "torch", "actnorm": False}),
    ("new + bound c=3", {"activation": "relu", "hidden_init": "torch", "bias_init": "torch",
                         "actnorm": False, "bound": 3.0}),
    ("new + output torch", {"activation": "relu", "hidden_init": "torch", "bias_init": "torch",
                            "actnorm": False, "output_init": "torch"}),
    ("new + silu", {"activation": "silu", "hidden_init": "torch", "bias_init": "torch",
                    "actnorm": False}),
    ("new + elu", {"activation": "elu", "hidden_init": "torch", "bias_init": "torch",
                   "actnorm": False}),
    ("bound c=3", {"bound": 3.0}),
    ("bound c=5", {"bound": 5.0}),
    ("rational c=6.9 (zuko)", {"scale": "rational", "bound": 6.9}),
    ("sigmoid(r+2) (Glow)", {"scale": "sigmoid"}),
    ("1/sigmoid(r+2) (sampling side)", {"scale": "sigmoid_sampling"}),
    ("shift after scale, normalizing side", {"scale": "normalizing"}),
    ("shift after scale + relu", {"scale": "normalizing", "activation": "relu"}),
    ("no ActNorm", {"actnorm": False}),
    ("LU instead of reversal", {"linear": "lu"}),
    ("Adam epsilon 1e-8", {"epsilon": 1e-8}),
    ("Adam beta_2 0.99", {"beta_2": 0.99}),
    ("clipnorm 1", {"global_clipnorm": 1.0}),
    ("zuko's choices", {"activation": "relu", "hidden_init": "torch", "output_init": "torch",
                        "scale": "rational", "bound": 6.9, "actnorm": False}),
    ("zuko's choices + torch biases", {"activation": "relu", "hidden_init": "torch",
                                       "output_init": "torch", "bias_init": "torch",
                                       "scale": "rational", "bound": 6.9, "actnorm": False}),
    ("defaults (RealNVP builder, 8 steps)", {"builder": True}),
    ("defaults (RealNVP(2), 16 steps)", {"builder": True, "num_steps": 16}),
]


def moons_flow(row):
    if row.get("builder"):
        return tfp_flows.RealNVP(2, num_steps=row["num_steps"])
    flow_layers = []
    coupling = COUPLING_LAYERS[row["scale"]]
    for step in range(row["num_steps"]):
        if row["actnorm"]:
            flow_layers.append(layers.ActNorm())
        lu = row["linear"] == "lu"
        flow_layers.append(layers.LULinear(seed=step) if lu else layers.Permute())
        conditioner = MLP(2, (64, 64), activation=row["activation"],
                          kernel_initializer=_initializer(row["hidden_init"]),
                          bias_initializer=_initializer(row.get("bias_init", "zeros")),
                          output_initializer=_initializer(row["output_init"]))
        flow_layers.append(coupling(HalfSplit(reverse=lu and step % 2 == 1),
                                    conditioner=conditioner, log_scale_bound=row["bound"]))
    return tfp_flows.Flow(flow_layers, (2,))


def moons_batches(x_train, steps, seed):
    """``[steps * 256, 2]`` batches drawn with replacement, the same for every row of a seed."""
    return x_train[np.random.default_rng(seed).integers(0, len(x_train), (steps, 256))]


def run_moons(row, seed, steps, data):
    (x_train, _), (x_test, _) = data
    keras.utils.set_random_seed(seed)
    flow = moons_flow(row)
    flow.compile(optimizer=_optimizer(row), jit_compile=True, steps_per_execution=SPE)
    xs = moons_batches(x_train, steps, seed)
    flow.fit(xs.reshape(-1, 2), batch_size=256, epochs=1, shuffle=False, verbose=0)
    return -float(np.mean(flow.log_prob(x_test)))


ZUKO_SCRIPT = r"""
import json, sys
import numpy as np, torch, zuko
torch.set_num_threads(1)
spec = json.loads(sys.argv[1])
x_test = torch.from_numpy(np.load(spec["test"]))
out = {}
for seed, path in spec["batches"].items():
    torch.manual_seed(int(seed))
    flow = zuko.flows.RealNVP(2, transforms=spec["transforms"], hidden_features=(64, 64))
    opt = torch.optim.Adam(flow.parameters(), lr=spec["lr"])
    for xb in torch.from_numpy(np.load(path)):
        loss = -flow().log_prob(xb).mean()
        opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad():
        out[seed] = -flow().log_prob(x_test).mean().item()
print(json.dumps(out))
"""


def run_zuko(python, seeds, steps, data, transforms=8):
    """zuko's RealNVP on the same batches, in another interpreter; {seed: test NLL}."""
    (x_train, _), (x_test, _) = data
    with tempfile.TemporaryDirectory() as tmp:
        spec = {"test": os.path.join(tmp, "test.npy"), "lr": LR, "transforms": transforms,
                "batches": {}}
        np.save(spec["test"], x_test)
        for seed in seeds:
            path = os.path.join(tmp, f"batches_{seed}.npy")
            np.save(path, moons_batches(x_train, steps, seed))
            spec["batches"][str(seed)] = path
        done = subprocess.run([python, "-c", ZUKO_SCRIPT, json.dumps(spec)],
                              capture_output=True, text=True, check=True)
    return {int(k): v for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}


# -- images ------------------------------------------------------------------------------------

GLOW_REFERENCE = dict(num_levels=2, num_steps=4, hidden_channels=128, scale="tanh", bound=2.0,
                      actnorm=True, min_scale=1e-3, split_prior=True)

IMAGE_ROWS = [
    ("reference (before)", {}),
    ("defaults (Glow builder)", {"builder": True}),
    ("sigmoid(r+2) (Glow's code)", {"scale": "sigmoid"}),
    ("rational c=6.9 (zuko)", {"scale": "rational", "bound": 6.9}),
    ("clipnorm 1", {"global_clipnorm": 1.0}),
]


def glow_flow(row, shape, levels):
    if row.get("builder"):
        return tfp_flows.Glow(shape, num_levels=row["num_levels"], num_steps=row["num_steps"],
                              hidden_channels=row["hidden_channels"], num_values=levels)
    coupling = COUPLING_LAYERS[row["scale"]]
    width = row["hidden_channels"]
    counter = iter(range(10**6))

    def level(depth):
        out = [layers.Squeeze()]
        for step in range(row["num_steps"]):
            index = next(counter)
            if row["actnorm"]:
                out.append(layers.ActNorm(min_scale=row["min_scale"]))
            out += [layers.Invertible1x1Conv(seed=index),
                    coupling(HalfSplit(reverse=step % 2 == 1), log_scale_bound=row["bound"],
                             hidden_channels=width)]
        if depth < row["num_levels"] - 1:
            out.append(layers.FactorOut(level(depth + 1), split_prior=row["split_prior"],
                                        hidden_channels=width))
        return out + [layers.Unsqueeze()]

    return tfp_flows.Flow([layers.Dequantize(levels, seed=0)] + level(0), shape)


def bits_per_dim(flow, x, levels):
    """The uniform-dequantization bound, one fresh draw of ``u`` (seed 0), in batches."""
    out = []
    for start in range(0, len(x), 250):
        k = x[start:start + 250]
        try:
            out.append(flow.bits_per_dim(k, num_draws=1, seed=0).numpy())
        except TypeError:  # a package without the bound: the density of k + u in data units
            u = np.random.default_rng(0).uniform(size=k.shape).astype(np.float32)
            log_p = flow.distribution().log_prob(k.astype(np.float32) + u).numpy()
            out.append(metrics.bits_per_dim(-log_p, np.prod(k.shape[1:])))
    return float(np.mean(np.concatenate(out)))


class _StepLosses(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.losses = []

    def on_epoch_end(self, epoch, logs=None):
        self.losses.append(float(logs["loss"]))


def run_image(row, seed, steps, data, levels, log_every):
    (x_train, _), (x_test, _) = data
    keras.utils.set_random_seed(seed)
    flow = glow_flow(row, x_train.shape[1:], levels)
    if row.get("builder"):  # what a new user writes: the optimizer and nothing else
        flow.compile(optimizer=_optimizer(row))
    else:
        flow.compile(optimizer=_optimizer(row), jit_compile=True, steps_per_execution=SPE)
    rows = np.random.default_rng(seed).integers(0, len(x_train), (steps, 64))
    # one "epoch" per log_every steps: the logged loss is the mean over those steps
    losses = _StepLosses()
    flow.fit(tf.data.Dataset.from_tensor_slices(x_train[rows]).repeat(), epochs=steps // log_every,
             steps_per_epoch=log_every, verbose=0, callbacks=[losses])
    return bits_per_dim(flow, x_test, levels), losses.losses


# -- driver --------------------------------------------------------------------------------------

def table(results, header):
    lines = [f"| row | {' | '.join(header)} | mean |", "|---" * (len(header) + 2) + "|"]
    for name, values in results.items():
        cells = [f"{v:.3f}" if v is not None and np.isfinite(v) else "nan" for v in values]
        finite = [v for v in values if v is not None and np.isfinite(v)]
        mean = f"{np.mean(values):.3f}" if len(finite) == len(values) and values else "nan"
        lines.append(f"| {name} | {' | '.join(cells)} | {mean} |")
    return "\n".join(lines)


def main(argv=None):
    def extra(parser):
        parser.add_argument("case", nargs="?", default="moons", choices=["moons", "mnist", "digits"])
        parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
        parser.add_argument("--steps", type=int, default=None, help="training steps per run")
        parser.add_argument("--only", nargs="+", default=None, help="rows whose name starts so")
        parser.add_argument("--zuko", default=None, metavar="PYTHON",
                            help="an interpreter with torch and zuko: adds zuko's RealNVP (moons)")

    args = _common.parse_args(__doc__.splitlines()[0], argv, extra)
    case = args.case
    if case == "moons":
        rows, reference = MOONS_ROWS, MOONS_REFERENCE
        steps = args.steps or (200 if args.quick else 3000)
        data = tfp_flows.data.load_two_moons()
        header = [f"seed {s}" for s in args.seeds]
    else:
        rows, reference = IMAGE_ROWS, GLOW_REFERENCE
        default_steps = 1500 if case == "mnist" else 1000
        steps = args.steps or (32 if args.quick else default_steps)
        data = tfp_flows.data.load_mnist() if case == "mnist" else tfp_flows.data.load_digits()
        levels = 256 if case == "mnist" else 17
        header = [f"seed {s}" for s in args.seeds]
    if args.quick:
        rows = rows[:2] if case == "moons" else rows[:1]
    if args.only:
        rows = [(name, change) for name, change in rows
                if any(name.startswith(prefix) for prefix in args.only)]
    results, curves, seconds = {}, {}, {}
    for name, change in rows:
        row = {**reference, **change}
        if args.quick and case != "moons":
            row.update(num_steps=1, hidden_channels=16)
        values = []
        start = time.perf_counter()
        for seed in args.seeds:
            if case == "moons":
                values.append(run_moons(row, seed, steps, data))
            else:
                log_every = min(steps, 50)
                value, curve = run_image(row, seed, steps, data, levels, log_every)
                values.append(value)
                curves[f"{name} / seed {seed}"] = curve
                print(f"  {name} seed {seed}: loss every {log_every} steps "
                      + " ".join(f"{v:.0f}" for v in curve), flush=True)
        seconds[name] = time.perf_counter() - start
        results[name] = values
        print(f"{name}: " + ", ".join(f"{v:.4f}" for v in values)
              + f"  ({seconds[name]:.0f} s)", flush=True)
    if args.zuko and case == "moons":
        start = time.perf_counter()
        label = "zuko RealNVP (8 transforms, ReLU 64x64)"
        nll = run_zuko(args.zuko, args.seeds, steps, data)
        results[label] = [nll[s] for s in args.seeds]
        print(f"{label}: {results[label]}", flush=True)
        seconds["zuko"] = time.perf_counter() - start
    unit = "test NLL, nats" if case == "moons" else "test bits/dim (bound)"
    print(f"\n{case}: {unit}, {steps} steps, Adam({LR}), no schedule\n")
    print(table(results, header))
    _common.RESULTS.mkdir(parents=True, exist_ok=True)
    path = _common.RESULTS / f"ablation_{case}.json"
    path.write_text(json.dumps({"case": case, "quick": args.quick, "steps": steps,
                                "seeds": args.seeds, "results": results, "loss_curves": curves,
                                "seconds": seconds, "machine": _common.machine_info()},
                               indent=2, default=str))
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
