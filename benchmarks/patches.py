"""63-D natural-image patches: unconditional RealNVP, NSF and MAF against zuko's (issue 23).

``python -m benchmarks.patches [--models NAME ...] [--seeds 1 2 3] [--steps 3000]
[--peer PYTHON] [--standardize]``

Data: BSDS300's preprocessing (Papamakarios et al. 2017, arXiv:1705.07057) applied to
the two photographs bundled with scikit-learn (``load_sample_images``): 8x8 grey
patches at stride 2, values ``(pixel + u) / 256`` with ``u ~ U(0, 1)``, the patch's
mean subtracted and its last pixel dropped (63 dimensions, a covariance with a
dynamic range of about 10^3). Training patches come from the left three quarters of
each picture and test patches from the right quarter (held out in space, not only in
draws). Every model of a seed sees the same ``steps`` batches of 256 (drawn with
replacement), trains with ``Adam(1e-3)`` and no schedule, and is scored by the mean
``-log p(x)`` over 20,000 test patches (nats; lower is better). ``--standardize``
divides each dimension by its training standard deviation first (the table is then
in those units). ``--data digits``: scikit-learn's 8x8 digits as 64-D vectors instead
(1,500 training images, 297 test; a small table: the budget is then many epochs).

Models: ``realnvp`` is ``RealNVP(63, num_steps=8, hidden_units=(128, 128))`` at its other
defaults; ``nsf`` and ``maf`` the builders at the same size; ``zuko_realnvp``,
``zuko_nsf`` and ``zuko_maf`` zuko's flows with ``transforms=8, hidden_features=(128,
128)``, trained by ``--peer PYTHON`` (an interpreter with ``torch`` and ``zuko``, never a
dependency) on the very same batches. Other rows (`VARIANTS`) are the ablation of
``docs/ablation.md``. Both sides run on one thread.
"""

from __future__ import annotations

import json
import sys
import time

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_flows
from benchmarks import _common
from tfp_flows import layers
from tfp_flows.bijectors import HalfSplit
from tfp_flows.conditioners import MLP

tfb = tfp.bijectors
LR, BATCH, SPE = 1e-3, 256, 16
NUM_TEST, SIDE = 20_000, 8
STEPS_PER_FLOW, HIDDEN = 8, (128, 128)


def _grey_pictures():
    """The pictures bundled with scikit-learn as whole-number grey levels in [0, 255]."""
    from sklearn.datasets import load_sample_images

    rgb = load_sample_images().images
    return [np.round(image @ np.array([0.299, 0.587, 0.114])) for image in rgb]


def _patches(picture, columns, stride=2):
    """Every ``SIDE x SIDE`` patch at ``stride`` whose columns lie in ``columns``."""
    rows = range(0, picture.shape[0] - SIDE + 1, stride)
    cols = range(columns.start, columns.stop - SIDE + 1, stride)
    return np.stack([picture[r:r + SIDE, c:c + SIDE].reshape(-1) for r in rows for c in cols])


def _preprocess(patches, rng):
    """BSDS300's: dequantise, divide by 256, subtract each patch's mean, drop the last pixel."""
    x = (patches + rng.uniform(size=patches.shape)) / 256.0
    return (x - x.mean(axis=1, keepdims=True))[:, :-1]


def _digit_vectors(seed):
    """scikit-learn's 8x8 digits as 64-D vectors: 1,500 to train and 297 to test (seeded
    split), each value ``(v + u) / 17 - 0.5`` with ``u ~ U(0, 1)`` drawn once."""
    from sklearn.datasets import load_digits

    pixels = load_digits().data
    rng = np.random.default_rng([seed, 0])
    x = (pixels + rng.uniform(size=pixels.shape)) / 17.0 - 0.5
    order = rng.permutation(len(x))
    return x[order[:1500]], x[order[1500:]]


def patch_data(seed, steps, standardize=False, data="patches"):
    """Training batches ``[steps, 256, d]`` and the test rows, float32: ``NUM_TEST``
    held-out patches (63-D), or ``data="digits"``: the 297 test digits (64-D)."""
    if data == "digits":
        train, test = _digit_vectors(seed)
    else:
        train, test = [], []
        for picture in _grey_pictures():
            cut = picture.shape[1] * 3 // 4
            train.append(_patches(picture, range(0, cut)))
            test.append(_patches(picture, range(cut, picture.shape[1])))
        rng = np.random.default_rng([seed, 0])
        train = _preprocess(np.concatenate(train), rng)
        test = _preprocess(np.concatenate(test), rng)
        test = test[rng.permutation(len(test))[:NUM_TEST]]
    if standardize:
        scale = train.std(axis=0)
        train, test = train / scale, test / scale
    rows = np.random.default_rng([seed, 1]).integers(0, len(train), (steps, BATCH))
    return {"x": train[rows].astype(np.float32), "test_x": test.astype(np.float32)}


# -- our models -------------------------------------------------------------------------------

def _realnvp(**kwargs):
    return lambda d: tfp_flows.RealNVP(d, **{"num_steps": STEPS_PER_FLOW, **kwargs},
                                       hidden_units=HIDDEN)


def _realnvp_steps(actnorm=True, mixing="lu", last="zeros", log_scale_bound=3.0):
    """`RealNVP`'s steps built by hand: [ActNorm,] a mixing (``"lu"`` or ``"alternate"``:
    none, the halves alternate, zuko's masks after one fixed interleaving), an affine
    coupling whose `MLP` has the last layer ``last`` (``"zeros"``, ours, or PyTorch's
    ``U(+-1/sqrt(fan_in))``, zuko's)."""
    def make(d):
        flow_layers = [] if mixing != "alternate" else [layers.FixedBijector(tfb.Permute(
            np.concatenate([np.arange(0, d, 2), np.arange(1, d, 2)])))]
        for step in range(STEPS_PER_FLOW):
            flow_layers += [layers.ActNorm()] if actnorm else []
            if mixing == "lu":
                flow_layers.append(layers.LULinear(seed=step))
            partition = HalfSplit(reverse=step % 2 == 1)
            size_b = partition.shapes((d,))[1][-1]
            initializer = ("zeros" if last == "zeros" else keras.initializers.RandomUniform(
                -1 / np.sqrt(HIDDEN[-1]), 1 / np.sqrt(HIDDEN[-1])))
            flow_layers.append(layers.AffineCoupling(
                partition, conditioner=MLP(2 * size_b, HIDDEN, "relu",
                                           output_initializer=initializer),
                log_scale_bound=log_scale_bound))
        return tfp_flows.Flow(flow_layers, (d,))
    return make


VARIANTS = {
    "realnvp": _realnvp(),
    "nsf": lambda d: tfp_flows.NSF(d, num_steps=STEPS_PER_FLOW, hidden_units=HIDDEN),
    "maf": lambda d: tfp_flows.MAF(d, num_steps=STEPS_PER_FLOW, hidden_units=HIDDEN),
    # the ablation of RealNVP's choices (docs/ablation.md)
    "realnvp no ActNorm": _realnvp(actnorm=False),
    "realnvp reverse": _realnvp(linear="reverse", actnorm=True),
    "realnvp reverse no ActNorm": _realnvp(linear="reverse", actnorm=False),
    "realnvp bound 7": _realnvp(log_scale_bound=7.0),
    "realnvp built": _realnvp_steps(),
    "realnvp last random": _realnvp_steps(last="random"),
    "realnvp alternate no ActNorm": _realnvp_steps(actnorm=False, mixing="alternate"),
    "realnvp lu from reversal": _realnvp(linear="lu_reversal"),
    "realnvp lu from reversal no ActNorm": _realnvp(linear="lu_reversal", actnorm=False),
    "realnvp alternate no ActNorm last random B7": _realnvp_steps(
        actnorm=False, mixing="alternate", last="random", log_scale_bound=7.0),
}


def _nll(flow, x):
    return float(-np.mean(np.concatenate([flow.log_prob(x[i:i + 5000]).numpy()
                                          for i in range(0, len(x), 5000)])))


def run_ours(model, data, curve=None):
    """Test NLL after the budget; ``curve``: also every ``curve`` steps, with the NLL of
    the first 10,000 training rows."""
    x = data["x"]
    flow = VARIANTS[model](x.shape[-1])
    steps = len(x)
    x = x.reshape(-1, x.shape[-1])
    flow.adapt(x)  # sets the standardisation of flows built with it; else nothing
    flow.compile(optimizer=keras.optimizers.Adam(LR), jit_compile=True, steps_per_execution=SPE)
    chunk = (curve or steps) * BATCH
    for start in range(0, len(x), chunk):
        flow.fit(x[start:start + chunk], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        if curve:
            print(f"  {model} step {start // BATCH + curve}: train NLL {_nll(flow, x[:10_000]):.3f},"
                  f" test NLL {_nll(flow, data['test_x'][:10_000]):.3f}", flush=True)
    return _nll(flow, data["test_x"])


# -- the peer (another interpreter) -----------------------------------------------------------

PEER_SCRIPT = r"""
import json, sys
import numpy as np, torch, zuko
torch.set_num_threads(1)
spec = json.loads(sys.argv[1])
data = np.load(spec["data"])
x, test_x = torch.from_numpy(data["x"]), torch.from_numpy(data["test_x"])
torch.manual_seed(spec["seed"])
make = {"zuko_realnvp": zuko.flows.RealNVP, "zuko_nsf": zuko.flows.NSF,
        "zuko_maf": zuko.flows.MAF}[spec["model"]]
flow = make(x.shape[-1], transforms=spec["transforms"], hidden_features=tuple(spec["hidden"]))
opt = torch.optim.Adam(flow.parameters(), lr=spec["lr"])
def nll(t):
    with torch.no_grad():
        return -torch.cat([flow().log_prob(t[i:i + 5000]) for i in range(0, len(t), 5000)]
                          ).mean().item()
rows = x.reshape(-1, x.shape[-1])[:10000]
for step, xb in enumerate(x, 1):
    loss = -flow().log_prob(xb).mean()
    opt.zero_grad(); loss.backward(); opt.step()
    if spec["curve"] and step % spec["curve"] == 0:
        print(f"  {spec['model']} step {step}: train NLL {nll(rows):.3f}, "
              f"test NLL {nll(test_x[:10000]):.3f}", file=sys.stderr)
print(json.dumps({"nll": nll(test_x)}))
"""


def run_peer(python, model, data, seed, curve=None):
    return _common.run_peer(python, PEER_SCRIPT, data, {
        "model": model, "seed": seed, "lr": LR, "transforms": STEPS_PER_FLOW,
        "hidden": list(HIDDEN), "curve": curve}, show_stderr=bool(curve))


# -- driver -----------------------------------------------------------------------------------


def main(argv=None):
    def extra(parser):
        parser.add_argument("--models", nargs="+", default=None,
                            help="realnvp, nsf, maf, zuko_*, or a row of VARIANTS")
        parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
        parser.add_argument("--steps", type=int, default=None)
        parser.add_argument("--peer", default=None, metavar="PYTHON",
                            help="an interpreter with torch and zuko (adds the zuko_* rows)")
        parser.add_argument("--data", default="patches", choices=["patches", "digits"])
        parser.add_argument("--standardize", action="store_true",
                            help="divide each dimension by its training standard deviation")
        parser.add_argument("--curve", type=int, default=None, metavar="STEPS",
                            help="print train and test NLL every STEPS steps")
        parser.add_argument("--out", default=None, help="JSON file name under benchmarks/results")

    args = _common.parse_args(__doc__.splitlines()[0], argv, extra)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    steps = args.steps or (50 if args.quick else 3000)
    models = args.models or (["realnvp"] + (["zuko_realnvp"] if args.peer else []))
    results = {}
    for seed in args.seeds:
        data = patch_data(seed, steps, args.standardize, args.data)
        for model in models:
            start = time.perf_counter()
            if model.startswith("zuko"):
                if not args.peer:
                    raise SystemExit(f"{model} needs --peer PYTHON")
                nll = run_peer(args.peer, model, data, seed, args.curve)
            else:
                keras.utils.set_random_seed(seed)
                nll = run_ours(model, data, args.curve)
            results.setdefault(model, []).append(nll)
            print(f"seed {seed} {model}: {nll:.3f} ({time.perf_counter() - start:.0f} s)",
                  flush=True)
    print(f"\n{args.data}{' (standardised)' if args.standardize else ''}: test NLL, nats; "
          f"{steps} steps of batch {BATCH}, Adam({LR}); seeds {args.seeds}\n")
    print("| model | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean |")
    print("|---" * (len(args.seeds) + 2) + "|")
    for model, values in results.items():
        print(f"| {model} | " + " | ".join(f"{v:.2f}" for v in values)
              + f" | {np.mean(values):.2f} |")
    _common.RESULTS.mkdir(parents=True, exist_ok=True)
    path = _common.RESULTS / (args.out or "patches.json")
    path.write_text(json.dumps({"data": args.data, "steps": steps, "seeds": args.seeds,
                                "standardize": args.standardize, "results": results,
                                "machine": _common.machine_info()}, indent=2, default=str))
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
