"""Conditional densities against zuko on simulation-based-inference tasks (issue 23).

``python -m benchmarks.sbi [--tasks NAME ...] [--models NAME ...] [--seeds 1 2 3]
[--steps 3000] [--peer PYTHON]``

Each task is a seeded simulator of ``(theta, x)`` pairs; a flow learns the posterior
``q(theta | x)`` (``theta`` the event, ``x`` the context). Every model of a seed sees
the same 80,000 training simulations, cut into the same ``steps`` batches of 256
(drawn with replacement), trains with ``Adam(1e-3)`` and no schedule, and is scored by
the mean of ``-log q(theta | x)`` over 20,000 fresh simulations (nats; lower is better).

Tasks (the simulators are in `tfp_flows.simulators`, a few lines each):

- ``sharp1d``: a 1-D target given 6 standard-normal features: two modes whose weight,
  position, gap and width (0.01 to 0.6) depend on the features.
- ``two_moons``: SBI two moons (Greenberg et al. 2019, arXiv:1905.07488), 2-D | 2-D.
- ``slcp``: simple likelihood, complex posterior (Papamakarios et al. 2019,
  arXiv:1805.07226), 5-D | 8-D (four draws of a 2-D Gaussian).
- ``gaussian_linear``: 10-D | 10-D, prior and noise covariance 0.1 I (Lueckmann et al.
  2021, arXiv:2101.04653); its exact posterior's NLL is printed as ``floor``.
- ``gaussian_mixture``: 2-D | 2-D, ``theta ~ U(-10, 10)^2``, ``x ~ N(theta, I) / 2 +
  N(theta, 0.01 I) / 2`` (ibid.).

Models: ``nsf`` and ``maf`` are this package's builders at their defaults but for the
size, which is the peer's: 3 transforms with 128x128 ReLU conditioners (``NSF(d,
num_steps=3, hidden_units=(128, 128), context_shape=(c,))``, ``MAF(...)`` likewise);
``zuko_nsf`` and ``zuko_maf`` are ``zuko.flows.NSF(d, c, transforms=3,
hidden_features=(128, 128))`` and ``MAF(...)`` at zuko's other defaults (8 bins on
[-5, 5]); ``realnvp`` and ``zuko_realnvp`` the coupling flows at the same size (zuko's
``RealNVP``: alternating masks, no ActNorm, no linear maps). zuko's rows are trained by
``--peer PYTHON``, an interpreter with ``torch`` and ``zuko`` (a separate environment;
never a dependency of this package) on the very same batches. Ours call
``flow.adapt(theta, x)`` on the training simulations first (what ``fit`` does itself for
the standardisation not yet set). Other rows build variants (see `VARIANTS`). Both sides
run on one thread.
"""

from __future__ import annotations

import functools
import json
import sys
import time
import types

import keras
import numpy as np
import tensorflow as tf

import tfp_flows
from benchmarks import _common
from tfp_flows import bijectors
from tfp_flows.conditioners import MADE
from tfp_flows.conditioners.made import made_masks
from tfp_flows.conditioners.mlp import hidden_initializers
from tfp_flows.layers import masked_autoregressive
from tfp_flows.models import builders
from tfp_flows.simulators import (
    gaussian_linear,
    gaussian_linear_nll,
    gaussian_mixture,
    sharp1d,
    sharp1d_nll,
    slcp,
    two_moons,
)

LR, BATCH, SPE = 1e-3, 256, 16
NUM_TRAIN, NUM_TEST = 80_000, 20_000
TRANSFORMS, HIDDEN = 3, (128, 128)


# -- the simulators: (theta, x) pairs from a seeded generator (tfp_flows.simulators) -----------

TASKS = {"sharp1d": (sharp1d, sharp1d_nll), "two_moons": (two_moons, None),
         "slcp": (slcp, None), "gaussian_linear": (gaussian_linear, gaussian_linear_nll),
         "gaussian_mixture": (gaussian_mixture, None)}


def task_data(task, seed, steps):
    """Training batches ``[steps, 256, .]`` (theta and x) and a fresh test set, float32."""
    simulate = TASKS[task][0]
    rng = np.random.default_rng([seed, 0])
    theta, x = simulate(NUM_TRAIN, rng)
    rows = np.random.default_rng([seed, 1]).integers(0, NUM_TRAIN, (steps, BATCH))
    test_theta, test_x = simulate(NUM_TEST, np.random.default_rng([seed, 2]))
    f32 = np.float32
    return {"theta": theta[rows].astype(f32), "x": x[rows].astype(f32),
            "test_theta": test_theta.astype(f32), "test_x": test_x.astype(f32)}


# -- our models -------------------------------------------------------------------------------


def _earlier(kwargs):
    """``kwargs`` with the context standardised only where ``standardize`` is set, as the
    builders did before ``standardize_context`` (on by default since): the ablation rows
    measured then reproduce. The rows ``nsf``, ``maf`` and ``realnvp`` are the defaults."""
    return {"standardize_context": bool(kwargs.get("standardize")), **kwargs}


def _realnvp(**kwargs):
    """``RealNVP`` at the peer's size."""
    kwargs = _earlier(kwargs)
    return lambda d, c: tfp_flows.RealNVP(d, num_steps=TRANSFORMS, hidden_units=HIDDEN,
                                          context_shape=(c,), **kwargs)


def _nsf(coupling=False, **kwargs):
    """``NSF`` at the peer's size; ``coupling``: the coupling arrangement (RQ-NSF (C)) for
    ``d >= 2``, the one of the rows measured before ``NSF`` became autoregressive given a
    context (a 1-D event is autoregressive either way). ReLU in every hidden layer unless
    ``activation`` is given (the default before the smooth last layer; ``activation=None``:
    the builder's default)."""
    kwargs = {"activation": "relu", **_earlier(kwargs)}

    def make(d, c):
        arrangement = {"autoregressive": False} if coupling and d > 1 else {}
        return tfp_flows.NSF(d, **{"num_steps": TRANSFORMS, **kwargs}, hidden_units=HIDDEN,
                             context_shape=(c,), **arrangement)
    return make


class JointMADE(MADE):
    """A change tried and not kept: the first layer initialised as one dense layer over
    ``[x, context]`` (PyTorch's ``nn.Linear``, zuko's ``MaskedMLP``): context kernel and
    first biases ``U(+-1/sqrt(d + c))``, instead of a Glorot-uniform context kernel and
    biases ``U(+-1/sqrt(d))`` (``U(+-1)`` for a 1-D target)."""

    def build(self, x_shape, context_shape=None):
        super().build(x_shape, context_shape)
        if context_shape is not None:
            kernel, bias = hidden_initializers(self.initializer,
                                               self.event_size + int(context_shape[-1]))
            self.biases[0].assign(bias(self.biases[0].shape))
            self.kernels[0].assign(kernel(self.kernels[0].shape))
            self.context_kernel.assign(kernel(self.context_kernel.shape))


class RandomLastMADE(MADE):
    """The last layer ``U(+-1/sqrt(fan_in))`` (PyTorch's, zuko's) instead of zero."""

    def build(self, x_shape, context_shape=None):
        super().build(x_shape, context_shape)
        for weight in (self.kernels[-1], self.biases[-1]):
            bound = 1.0 / np.sqrt(self.kernels[-1].shape[0])
            weight.assign(keras.initializers.RandomUniform(-bound, bound)(weight.shape))


class DirectMADE(MADE):
    """Direct connections (Germain et al., section 4): the outputs also get a linear map
    of the context (unmasked) and of the entries before each one (masked), zero at
    the start, so that the part of the parameters linear in the inputs has a path
    with 10s of weights instead of the hidden layers'."""

    def build(self, x_shape, context_shape=None):
        super().build(x_shape, context_shape)
        outputs = self.params_per_dim * self.event_size
        self.direct_kernel = self.add_weight(name="direct_kernel",
                                             shape=(self.event_size, outputs), initializer="zeros")
        # entry j reaches the outputs of the entries after it: MADE's output mask over
        # the inputs' own degrees
        self._direct_mask = made_masks([self.degrees[0]] * 2, self.params_per_dim)[-1]
        self.direct_context_kernel = (self.add_weight(
            name="direct_context_kernel", shape=(int(context_shape[-1]), outputs),
            initializer="zeros") if context_shape is not None else None)

    def call(self, x, context=None):
        out = super().call(x, context)
        dtype = self.compute_dtype
        h = tf.reshape(tf.cast(x, dtype), [-1, self.event_size])
        direct = tf.matmul(h, tf.cast(self.direct_kernel, dtype) * self._direct_mask)
        if context is not None:
            flat = tf.reshape(tf.cast(context, dtype), [-1, self.direct_context_kernel.shape[0]])
            direct = direct + tf.matmul(flat, tf.cast(self.direct_context_kernel, dtype))
        return out + tf.reshape(direct, tf.shape(out))


class DropoutMADE(MADE):
    """Tried and not kept: dropout of rate 0.1 after each hidden layer while training
    (``training`` reaches it through `_dropout`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.dropping = False
        self.activations = [self._dropped(f) for f in self.activations]

    def _dropped(self, activation):
        return lambda h: tf.nn.dropout(activation(h), 0.1) if self.dropping else activation(h)


def _dropout(make):
    """The flow of ``make`` with `DropoutMADE`s, dropping in its training steps only."""
    def build(d, c):
        flow = _with_made(DropoutMADE, make)(d, c)
        for layer in flow.flow_layers:
            if isinstance(layer, masked_autoregressive.MaskedAutoregressive):
                def bijector(context=None, training=False, layer=layer, plain=layer.bijector):
                    layer.made.dropping = bool(training)  # read when the step is traced
                    return plain(context, training)
                layer.bijector = bijector
        return flow
    return build


def _context_noise(scale, make):
    """Tried and not kept: Gaussian noise of std ``scale`` added to the standardised
    context in training steps (noise regularisation, Rothfuss et al. 2019,
    arXiv:1907.08982)."""
    def build(d, c):
        flow = make(d, c)
        plain = flow.embed_context

        def embed_context(context, training=False):
            out = plain(context, training)
            if training and out is not None:
                out = out + scale * tf.random.normal(tf.shape(out), dtype=out.dtype)
            return out
        flow.embed_context = embed_context
        return flow
    return build


def _context_scale(power, make):
    """Tried: the standardised context divided by ``c ** power`` (``c`` its features), so
    that the whole context vector, not each feature, has about unit scale."""
    def build(d, c):
        flow = make(d, c)
        plain = flow.adapt

        def adapt(*args, **kwargs):
            out = plain(*args, **kwargs)
            flow.context_std.assign(flow.context_std * float(c) ** power)
            return out
        flow.adapt = adapt
        return flow
    return build


def _with_made(made, make):
    """The flow of ``make`` with ``made`` (a `MADE` subclass) for its MADEs."""
    def build(d, c):
        masked_autoregressive.MADE = made
        try:
            return make(d, c)
        finally:
            masked_autoregressive.MADE = MADE
    return build


def _maf(made=None, **kwargs):
    """``MAF`` at the peer's size; ``made``: a `MADE` subclass to build it with."""
    kwargs = _earlier(kwargs)

    def make(d, c):
        return tfp_flows.MAF(d, num_steps=TRANSFORMS, hidden_units=HIDDEN, context_shape=(c,),
                             **kwargs)
    return make if made is None else _with_made(made, make)


def _sample_direction(make):
    """The flow of ``make`` with every spline of the earlier arrangement, ``g`` in the
    sampling direction and ``g^-1`` in the density (`SplineTransform(direction="sample")`)."""
    return _with_spline(functools.partial(bijectors.SplineTransform, direction="sample"), make)


class LatentAffineSpline(bijectors.SplineTransform):
    """Tried and not kept: the affine map on the latent side of the spline, ``z = (g(x) -
    t) exp(-s)`` (sampling ``x = g^-1(t + exp(s) z)``)."""

    def forward(self, z, params):
        u, affine_log_det = bijectors.AffineTransform().forward(z, params[:2])
        x, log_det = super(bijectors.SplineTransform, self).inverse(u, params[2:])  # g^-1
        return x, log_det + affine_log_det

    def inverse(self, x, params):
        u, log_det = super(bijectors.SplineTransform, self).forward(x, params[2:])  # g
        z, affine_log_det = bijectors.AffineTransform().inverse(u, params[:2])
        return z, log_det + affine_log_det


def _with_spline(spline, make):
    """The flow of ``make`` with ``spline(num_bins, bound, ...)`` for its splines."""
    def build(d, c):
        builders.bijectors = types.SimpleNamespace(**{**vars(bijectors), "SplineTransform": spline})
        try:
            return make(d, c)
        finally:
            builders.bijectors = bijectors
    return build


# Ablation rows: name -> flow factory (d, c) -> Flow. Every row but the three defaults
# is built as measured, with the context raw unless it says "standardize" (`_earlier`).
ROWS = {
    "realnvp reverse": _realnvp(linear="reverse"),
    "realnvp lu": _realnvp(linear="lu"),
    "realnvp lu from reversal": _realnvp(linear="lu_reversal"),
    "maf joint": _maf(JointMADE),
    "maf_spline": _maf(transform="spline"),
    "maf_spline joint": _maf(JointMADE, transform="spline"),
    "maf_spline last random": _maf(RandomLastMADE, transform="spline"),
    "maf_spline B5": _maf(transform="spline", bound=5.0),
    "maf_spline B4 K16": _maf(transform="spline", bound=4.0, num_bins=16),
    "maf_spline B5 K16": _maf(transform="spline", bound=5.0, num_bins=16),
    "maf_spline B5 no ActNorm": _maf(transform="spline", bound=5.0, actnorm=False),
    "maf_spline B5 no ActNorm last random": _maf(RandomLastMADE, transform="spline", bound=5.0,
                                                 actnorm=False),
    "maf_spline joint B5 no ActNorm": _maf(JointMADE, transform="spline", bound=5.0,
                                           actnorm=False),
    "nsf ActNorm": _nsf(actnorm=True),
    "nsf no ActNorm": _nsf(actnorm=False),
    "nsf coupling": _nsf(coupling=True),
    "nsf coupling no ActNorm": _nsf(coupling=True, actnorm=False),
    "nsf coupling B5": _nsf(coupling=True, bound=5.0),
    "nsf coupling K8": _nsf(coupling=True, num_bins=8),
    "nsf coupling 6 steps": _nsf(coupling=True, num_steps=6),
    "nsf coupling standardize": _nsf(coupling=True, standardize=True),
    "maf standardize": _maf(standardize=True),
    "maf_spline standardize": _maf(transform="spline", standardize=True),
    "maf_spline standardize no ActNorm": _maf(transform="spline", standardize=True,
                                              actnorm=False),
    "maf_spline joint standardize no ActNorm": _maf(JointMADE, transform="spline",
                                                    standardize=True, actnorm=False),
    "maf_spline B4 K16 standardize no ActNorm": _maf(transform="spline", standardize=True,
                                                     actnorm=False, bound=4.0, num_bins=16),
    # Since commit 18e65d1 every spline has zuko's parametrisation; the rows above and the
    # "old parametrisation" rows of docs/conditional.md measured before it had the previous
    # one. "affine_spline" rows: `NSF`'s autoregressive steps (an affine map, then a spline)
    # at other bins and bounds ("nsf ActNorm" and "nsf no ActNorm" at its own).
    "affine_spline B5 no ActNorm": _nsf(num_bins=8, bound=5.0, actnorm=False),
    "affine_spline B5 K16": _nsf(num_bins=16, bound=5.0),
    "affine_spline B5 K12": _nsf(num_bins=12, bound=5.0),
    # Since this version the splines of MAF / NSF (AR) evaluate g in the density direction
    # (nflows' and zuko's arrangement); "... sample-direction" rows: the earlier one.
    "nsf sample-direction": _sample_direction(_nsf()),
    "affine_spline B4 K16": _nsf(num_bins=16, bound=4.0),
    "affine_spline B4 K16 sample-direction": _sample_direction(_nsf(num_bins=16, bound=4.0)),
    "affine_spline latent B5 K8": _with_spline(LatentAffineSpline, _nsf(num_bins=8, bound=5.0)),
    "affine_spline latent B4 K16": _with_spline(LatentAffineSpline, _nsf(num_bins=16, bound=4.0)),
    "affine_spline B5 no ActNorm sample-direction": _sample_direction(
        _nsf(num_bins=8, bound=5.0, actnorm=False)),
    "maf_spline B5 no ActNorm sample-direction": _sample_direction(
        _maf(transform="spline", bound=5.0, actnorm=False)),
    # The defaults before the context was standardised by default.
    "nsf raw context": _nsf(), "maf raw context": _maf(), "realnvp raw context": _realnvp(),
    "affine_spline standardize": lambda d, c: _nsf(num_bins=8, bound=3.0, standardize=True,
                                                   actnorm=d > 2)(d, c),
    # Tried with the context standardised (docs/conditional.md, first section).
    "nsf K8": _nsf(num_bins=8, standardize_context=True),
    "nsf direct": _with_made(DirectMADE, _nsf(standardize_context=True)),
    "maf direct": _with_made(DirectMADE, _maf(standardize_context=True)),
    "nsf elu": _nsf(standardize_context=True, activation="elu"),
    "nsf gelu": _nsf(standardize_context=True, activation="gelu"),
    "nsf silu": _nsf(standardize_context=True, activation="silu"),
    "nsf tanh": _nsf(standardize_context=True, activation="tanh"),
    "nsf gelu,relu": _nsf(standardize_context=True, activation=("gelu", "relu")),
    "nsf relu": _nsf(standardize_context=True),  # the default before the GELU layer
    "nsf relu,silu": _nsf(standardize_context=True, activation=("relu", "silu")),
    "nsf relu,tanh": _nsf(standardize_context=True, activation=("relu", "tanh")),
    "maf relu,gelu": _maf(standardize_context=True, activation=("relu", "gelu")),
    "nsf context / sqrt(c)": _context_scale(0.5, _nsf(standardize_context=True,
                                                      activation=None)),
    "nsf dropout": _dropout(_nsf(standardize_context=True)),
    "nsf context noise 0.1": _context_noise(0.1, _nsf(standardize_context=True)),
    "nsf context noise 0.3": _context_noise(0.3, _nsf(standardize_context=True)),
    "maf_spline K8 B5 plain": _maf(transform="spline", bound=5.0, actnorm=False, num_bins=8),
    "maf_spline K8 B5 plain std": _maf(transform="spline", bound=5.0, actnorm=False,
                                       num_bins=8, standardize_context=True),
}
VARIANTS = {"nsf": _nsf(standardize_context=True, activation=None),
            "maf": _maf(standardize_context=True),
            "realnvp": _realnvp(standardize_context=True), **ROWS}


def _nll(flow, theta, x):
    return float(-np.mean(np.concatenate([flow.log_prob(theta[i:i + 5000], x[i:i + 5000]).numpy()
                                          for i in range(0, len(theta), 5000)])))


def run_ours(model, data, curve=None, epsilon=None, ema=None):
    """Test NLL after the budget; ``curve``: also print the NLL of the first 10,000
    training rows and of 10,000 test simulations every ``curve`` steps."""
    theta, x = data["theta"], data["x"]
    flow = VARIANTS[model](theta.shape[-1], x.shape[-1])
    steps = len(theta)
    theta, x = theta.reshape(-1, theta.shape[-1]), x.reshape(-1, x.shape[-1])
    flow.adapt(theta, x)  # sets the standardisation of flows built with it; else nothing
    adam = keras.optimizers.Adam(LR, **({} if epsilon is None else {"epsilon": epsilon}),
                                 **({} if ema is None else {"use_ema": True, "ema_momentum": ema}))
    flow.compile(optimizer=adam, jit_compile=True, steps_per_execution=SPE)
    chunk = (curve or steps) * BATCH
    for start in range(0, len(theta), chunk):
        flow.fit(theta[start:start + chunk], x[start:start + chunk], batch_size=BATCH, epochs=1,
                 shuffle=False, verbose=0)
        if curve:
            print(f"  {model} step {start // BATCH + curve}: train NLL "
                  f"{_nll(flow, theta[:10_000], x[:10_000]):.4f}, test NLL "
                  f"{_nll(flow, data['test_theta'][:10_000], data['test_x'][:10_000]):.4f}",
                  flush=True)
    return _nll(flow, data["test_theta"], data["test_x"])


# -- the peer (another interpreter) -----------------------------------------------------------

PEER_SCRIPT = r"""
import json, sys
import numpy as np, torch, zuko
torch.set_num_threads(1)
spec = json.loads(sys.argv[1])
data = np.load(spec["data"])
theta, x = torch.from_numpy(data["theta"]), torch.from_numpy(data["x"])
d, c = theta.shape[-1], x.shape[-1]
torch.manual_seed(spec["seed"])
make = {"zuko_nsf": zuko.flows.NSF, "zuko_maf": zuko.flows.MAF,
        "zuko_realnvp": zuko.flows.RealNVP}[spec["model"]]
flow = make(d, c, transforms=spec["transforms"], hidden_features=tuple(spec["hidden"]))
opt = torch.optim.Adam(flow.parameters(), lr=spec["lr"],
                       **({} if spec["epsilon"] is None else {"eps": spec["epsilon"]}))
average = (torch.optim.swa_utils.AveragedModel(
    flow, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(spec["ema"]))
    if spec["ema"] else None)
def nll(t, c):
    scored = flow if average is None else average.module
    with torch.no_grad():
        return -torch.cat([scored(c[i:i + 5000]).log_prob(t[i:i + 5000])
                           for i in range(0, len(t), 5000)]).mean().item()
test_theta, test_x = torch.from_numpy(data["test_theta"]), torch.from_numpy(data["test_x"])
rows_theta, rows_x = theta.reshape(-1, d)[:10000], x.reshape(-1, c)[:10000]
for step, (tb, xb) in enumerate(zip(theta, x), 1):
    loss = -flow(xb).log_prob(tb).mean()
    opt.zero_grad(); loss.backward(); opt.step()
    if average is not None:
        average.update_parameters(flow)
    if spec["curve"] and step % spec["curve"] == 0:
        print(f"  {spec['model']} step {step}: train NLL {nll(rows_theta, rows_x):.4f}, "
              f"test NLL {nll(test_theta[:10000], test_x[:10000]):.4f}", file=sys.stderr)
print(json.dumps({"nll": nll(test_theta, test_x)}))
"""


def run_peer(python, model, data, seed, curve=None, epsilon=None, ema=None):
    return _common.run_peer(python, PEER_SCRIPT, data, {
        "model": model, "seed": seed, "lr": LR, "transforms": TRANSFORMS,
        "hidden": list(HIDDEN), "curve": curve, "epsilon": epsilon,
        "ema": ema}, show_stderr=bool(curve))


# -- driver -----------------------------------------------------------------------------------


def main(argv=None):
    def extra(parser):
        parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
        parser.add_argument("--models", nargs="+", default=None,
                            help="nsf, maf, realnvp, zuko_nsf, zuko_maf, zuko_realnvp, or a "
                                 "row of VARIANTS")
        parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
        parser.add_argument("--steps", type=int, default=None)
        parser.add_argument("--peer", default=None, metavar="PYTHON",
                            help="an interpreter with torch and zuko (adds zuko_nsf, zuko_maf)")
        parser.add_argument("--out", default=None, help="JSON file name under benchmarks/results")
        parser.add_argument("--adam-epsilon", type=float, default=None,
                            help="Adam's epsilon on both sides (default: each one's own, "
                                 "Keras 1e-7, torch 1e-8)")
        parser.add_argument("--ema", type=float, default=None, metavar="MOMENTUM",
                            help="both sides score the exponential moving average of the weights "
                                 "(ours: Adam(use_ema=True, ema_momentum=MOMENTUM); zuko: "
                                 "torch's AveragedModel with the same decay)")
        parser.add_argument("--curve", type=int, default=None, metavar="STEPS",
                            help="print train and test NLL every STEPS steps (ours)")

    args = _common.parse_args(__doc__.splitlines()[0], argv, extra)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    steps = args.steps or (50 if args.quick else 3000)
    models = args.models or (["nsf", "maf"] + (["zuko_nsf", "zuko_maf"] if args.peer else []))
    results = {}
    for task in args.tasks:
        floor = TASKS[task][1]
        for seed in args.seeds:
            data = task_data(task, seed, steps)
            if floor is not None:
                results.setdefault((task, "floor (exact posterior)"), []).append(
                    floor(data["test_theta"].astype(np.float64), data["test_x"].astype(np.float64)))
            for model in models:
                start = time.perf_counter()
                if model.startswith("zuko"):
                    if not args.peer:
                        raise SystemExit(f"{model} needs --peer PYTHON")
                    nll = run_peer(args.peer, model, data, seed, args.curve, args.adam_epsilon,
                                   args.ema)
                else:
                    keras.utils.set_random_seed(seed)
                    nll = run_ours(model, data, args.curve, args.adam_epsilon, args.ema)
                results.setdefault((task, model), []).append(nll)
                print(f"{task} seed {seed} {model}: {nll:.4f} "
                      f"({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"\ntest NLL -log q(theta | x), nats; {steps} steps of batch {BATCH}, Adam({LR}); "
          f"seeds {args.seeds}\n")
    print("| task | model | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean |")
    print("|---" * (len(args.seeds) + 3) + "|")
    for (task, model), values in results.items():
        print(f"| {task} | {model} | " + " | ".join(f"{v:.3f}" for v in values)
              + f" | {np.mean(values):.3f} |")
    _common.RESULTS.mkdir(parents=True, exist_ok=True)
    path = _common.RESULTS / (args.out or "sbi.json")
    path.write_text(json.dumps({"steps": steps, "seeds": args.seeds,
                                "results": {f"{t} / {m}": v for (t, m), v in results.items()},
                                "machine": _common.machine_info()}, indent=2, default=str))
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
