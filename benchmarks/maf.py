"""Case `maf`: two moons, a 10-step affine MAF with ReLU MADEs of 64x64, batch 256.

Ours: ``tfp_flows.MAF(2)`` (the builder's defaults) trained with ``model.fit``
(``jit_compile=True``, ``steps_per_execution``). Baseline: TFP's own MAF, a chain of
10 ``tfb.MaskedAutoregressiveFlow`` whose ``shift_and_log_scale_fn`` is TFP's
tf_keras MADE, ``tfb.AutoregressiveNetwork(params=2, hidden_units=[64, 64],
activation="relu")``, with ``tfb.Permute`` reversals between them (the orderings
ours alternates), trained by a ``tf.function(jit_compile=True)`` step with the same
Keras Adam. Its log-scale is bounded as ``2 tanh(s / 2)``, as ours is (TFP's
unbounded ``exp`` diverges under XLA: design.md). A third side, not a floor, runs
TFP's step the way ``fit`` runs ours (``steps_per_execution`` steps in one XLA program).

Both directions of a MAF cost differently: training evaluates the density, one MADE
pass per step on both sides; sampling (not timed here) is ``d`` passes.

All sides see the same batches, alternately, chunk by chunk; the first chunk
(compilation) is not timed. Test NLL after the same number of steps. Every seed
(``--seeds``, default 0 1 2) trains all sides afresh; the table gives medians, as one
seed's NLL moves by more than the sides differ.
"""

from __future__ import annotations

import keras  # noqa: E402  (after tfp_flows set the backend)
import numpy as np
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402

import tfp_flows  # noqa: E402
from benchmarks import _common
from benchmarks._loop import make_trainer, time_chunks
from benchmarks.moons import ours_loss, tfp_loss
from tfp_flows.data import load_two_moons  # noqa: E402

tfb, tfd = tfp.bijectors, tfp.distributions

BATCH, NUM_STEPS, HIDDEN, ACTIVATION, LR = 256, 10, (64, 64), "relu", 1e-3


class BoundedMADE:
    """TFP's tf_keras MADE as a ``shift_and_log_scale_fn`` with ``2 tanh(s / 2)`` scales.

    Its masks are kernel constraints (applied after each optimizer update), so
    `still_autoregressive` checks after training that the update kept them.
    """

    def __init__(self, event_size, hidden_units, bound=2.0):
        self.bound = bound
        self.net = tfb.AutoregressiveNetwork(params=2, event_shape=[event_size],
                                             hidden_units=list(hidden_units),
                                             activation=ACTIVATION)
        self.net(tf.zeros((1, event_size)))  # builds the variables

    def __call__(self, x):
        shift, raw = tf.unstack(self.net(x), axis=-1)
        return shift, self.bound * tf.tanh(raw / self.bound)


def still_autoregressive(nets, event_size=2) -> bool:
    """True when every baseline MADE's Jacobian is still strictly triangular."""
    x = tf.random.stateless_normal((1, event_size), seed=(0, 1))
    for net in nets:
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = net.net(x)[0]  # [d, 2]
        jacobian = tape.jacobian(out, x)[:, :, 0, :].numpy()  # [d, 2, d]
        upper = np.triu(np.ones((event_size, event_size), bool))  # j >= i: forbidden
        if np.any(jacobian.transpose(1, 0, 2)[:, upper] != 0):
            return False
    return True


def tfp_maf(event_size=2, num_steps=NUM_STEPS, hidden_units=HIDDEN):
    """The baseline distribution and its trainable variables."""
    nets, chain = [], []
    for step in range(num_steps):
        net = BoundedMADE(event_size, hidden_units)
        nets.append(net)
        chain.append(tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=net))
        if step < num_steps - 1:
            chain.append(tfb.Permute(list(range(event_size))[::-1]))
    base = tfd.Sample(tfd.Normal(0.0, 1.0), event_size)
    dist = tfd.TransformedDistribution(base, tfb.Chain(chain))
    variables = [v for net in nets for v in net.net.trainable_variables]
    dist.nets = nets
    return dist, variables


def run_seed(seed, x_train, x_test, *, quick, chunk, repeats, spe, num_steps):
    """One seed: ours, TFP's step and TFP in our fused loop on the same batches."""
    keras.utils.set_random_seed(seed)
    flow = tfp_flows.MAF(2, num_steps=num_steps, hidden_units=HIDDEN, activation=ACTIVATION)
    flow.compile(optimizer=keras.optimizers.Adam(LR), jit_compile=True, steps_per_execution=spe)
    keras.utils.set_random_seed(seed)
    dist, tfp_vars = tfp_maf(num_steps=num_steps)
    step_tfp = make_trainer(tfp_loss(dist), tfp_vars, keras.optimizers.Adam(LR))
    keras.utils.set_random_seed(seed)
    dist_fused, fused_vars = tfp_maf(num_steps=num_steps)
    step_fused = make_trainer(tfp_loss(dist_fused), fused_vars, keras.optimizers.Adam(LR),
                              fused=True)
    params = {"ours": _common.count_params(flow.trainable_variables),
              "tfp": _common.count_params(tfp_vars)}
    compile_s, stats = time_chunks(x_train, flow, {"tfp": step_tfp, "tfp_fused": step_fused},
                                   chunk=chunk, spe=spe, batch=BATCH, repeats=repeats,
                                   rng=np.random.default_rng(seed))
    nll = {"ours_fit": -float(np.mean(flow.log_prob(x_test))),
           "tfp": -float(np.mean(dist.log_prob(x_test))),
           "tfp_fused": -float(np.mean(dist_fused.log_prob(x_test)))}
    if not quick:  # the same loss through the hand-written step's function, for the record
        nll["ours_loss_fn"] = float(ours_loss(flow)(tf.constant(x_test)))
    valid = {"tfp": still_autoregressive(dist.nets),
             "tfp_fused": still_autoregressive(dist_fused.nets)}
    if not all(valid.values()):
        print(f"WARNING: a baseline MADE lost its masks in training (seed {seed}): {valid}")
    rate = {name: chunk * BATCH / st["median_s"] for name, st in stats.items()}
    print(f"seed {seed}: test NLL " + ", ".join(f"{k} {v:.4f}" for k, v in nll.items())
          + "; samples/s " + ", ".join(f"{k} {v:,.0f}" for k, v in rate.items()), flush=True)
    return {"params": params, "first_chunk_s": compile_s, "times": stats, "samples_per_s": rate,
            "test_nll": nll, "baseline_still_autoregressive": valid}


def main(argv=None):
    def extra(parser):
        parser.add_argument("--seeds", type=int, nargs="+", default=None,
                            help="seeds (default 0 1 2; --quick: 0); medians are reported")

    args = _common.parse_args(__doc__.splitlines()[0], argv, extra)
    quick = args.quick
    chunk = 40 if quick else 300          # steps per timed repeat
    repeats = args.repeats or (2 if quick else 9)
    spe = 20 if quick else 100            # steps_per_execution
    total_steps = chunk * (repeats + 1)   # +1: the untimed first (compiling) chunk
    num_steps = 2 if quick else NUM_STEPS
    seeds = args.seeds or ([0] if quick else [0, 1, 2])

    (x_train, _), (x_test, _) = load_two_moons()
    runs = {seed: run_seed(seed, x_train, x_test, quick=quick, chunk=chunk, repeats=repeats,
                           spe=spe, num_steps=num_steps) for seed in seeds}
    params = runs[seeds[0]]["params"]
    print(f"trainable parameters: ours {params['ours']}, tfp {params['tfp']} "
          f"({100 * (params['ours'] / params['tfp'] - 1):+.1f}%)")

    def median(key, side):
        return float(np.median([run[key][side] for run in runs.values()]))

    def per_seed(key, side, fmt):
        return ", ".join(fmt.format(run[key][side]) for run in runs.values())

    seeds_text = " ".join(str(s) for s in seeds)
    spread = max(st["spread"] for run in runs.values() for st in run["times"].values())
    rows = [
        _common.row("train samples/s (fit vs TFP step)", median("samples_per_s", "ours_fit"),
                    median("samples_per_s", "tfp"), "samples/s",
                    f"median over seeds {seeds_text} of the medians of {repeats}x{chunk} steps, "
                    f"spread {spread:.0%}"),
        _common.row("  not a floor: fit vs TFP's step in our fused loop",
                    median("samples_per_s", "ours_fit"), median("samples_per_s", "tfp_fused"),
                    "samples/s", f"TFP, {spe} steps per XLA program"),
        _common.row(f"test NLL after {total_steps} steps (median of seeds)",
                    median("test_nll", "ours_fit"), median("test_nll", "tfp"), "nats",
                    f"seeds {seeds_text}: ours {per_seed('test_nll', 'ours_fit', '{:.3f}')}; "
                    f"TFP {per_seed('test_nll', 'tfp', '{:.3f}')}", higher_is_better=False),
        _common.row("first chunk incl. compile", median("first_chunk_s", "ours_fit"),
                    median("first_chunk_s", "tfp"), "s", higher_is_better=False),
        _common.row("trainable parameters", params["ours"], params["tfp"], ""),
    ]
    details = {"maf_steps": num_steps, "batch": BATCH, "steps_per_chunk": chunk,
               "steps_per_execution": spe, "total_steps": total_steps, "seeds": seeds,
               "runs": {str(seed): run for seed, run in runs.items()}}
    _common.write_results("maf", args, rows, details)


if __name__ == "__main__":
    main()
