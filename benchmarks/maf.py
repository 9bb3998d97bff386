"""Case `maf`: two moons, a 10-step affine MAF with ReLU MADEs of 64x64, batch 256.

Ours: ``tfp_flows.MAF(2)`` (the builder's defaults) trained with ``model.fit``
(``jit_compile=True``, ``steps_per_execution``). Baseline: TFP's own MAF, a chain of
10 ``tfb.MaskedAutoregressiveFlow`` whose ``shift_and_log_scale_fn`` is TFP's
tf_keras MADE, ``tfb.AutoregressiveNetwork(params=2, hidden_units=[64, 64],
activation="relu")``, with ``tfb.Permute`` reversals between them (the orderings
ours alternates), trained by a ``tf.function(jit_compile=True)`` step with the same
Keras Adam. Its log-scale is bounded as ``2 tanh(s / 2)``, as ours is (TFP's
unbounded ``exp`` diverges under XLA: design.md). Ours adds an ActNorm per step
(4 parameters each). A third side, not a floor, runs TFP's step the way ``fit``
runs ours (``steps_per_execution`` steps in one XLA program).

Both directions of a MAF cost differently: training evaluates the density, one MADE
pass per step on both sides; sampling (not timed here) is ``d`` passes.

All sides see the same batches, alternately, chunk by chunk; the first chunk
(compilation) is not timed. Test NLL after the same number of steps.
"""

from __future__ import annotations

import keras  # noqa: E402  (after tfp_flows set the backend)
import numpy as np
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402

import tfp_flows  # noqa: E402
from benchmarks import _common
from benchmarks._loop import make_trainer
from benchmarks.moons import batches, ours_loss, tfp_loss
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


def main(argv=None):
    args = _common.parse_args(__doc__.splitlines()[0], argv)
    quick = args.quick
    chunk = 40 if quick else 300          # steps per timed repeat
    repeats = args.repeats or (2 if quick else 9)
    spe = 20 if quick else 100            # steps_per_execution
    total_steps = chunk * (repeats + 1)   # +1: the untimed first (compiling) chunk
    num_steps = 2 if quick else NUM_STEPS

    (x_train, _), (x_test, _) = load_two_moons()
    rng = np.random.default_rng(0)

    keras.utils.set_random_seed(0)
    flow = tfp_flows.MAF(2, num_steps=num_steps, hidden_units=HIDDEN, activation=ACTIVATION)
    flow.compile(optimizer=keras.optimizers.Adam(LR), jit_compile=True, steps_per_execution=spe)
    keras.utils.set_random_seed(0)
    dist, tfp_vars = tfp_maf(num_steps=num_steps)
    step_tfp = make_trainer(tfp_loss(dist), tfp_vars, keras.optimizers.Adam(LR))
    keras.utils.set_random_seed(0)
    dist_fused, fused_vars = tfp_maf(num_steps=num_steps)
    step_fused = make_trainer(tfp_loss(dist_fused), fused_vars, keras.optimizers.Adam(LR),
                              fused=True)

    params = {"ours": _common.count_params(flow.trainable_variables),
              "tfp": _common.count_params(tfp_vars)}
    print(f"trainable parameters: ours {params['ours']}, tfp {params['tfp']} "
          f"({100 * (params['ours'] / params['tfp'] - 1):+.1f}%)")

    state = {}

    def next_chunk():
        state["xs"] = batches(x_train, chunk, BATCH, rng)

    def run_fit():
        flow.fit(state["xs"].reshape(-1, 2), batch_size=BATCH, epochs=1, shuffle=False,
                 verbose=0)

    def run_in_slices(trainer):
        xs = tf.constant(state["xs"])
        loss = None
        for start in range(0, chunk, spe):
            loss = trainer(xs[start:start + spe])
        return loss

    sides = {"ours_fit": run_fit, "tfp": lambda: run_in_slices(step_tfp),
             "tfp_fused": lambda: run_in_slices(step_fused)}
    compile_s = {}
    next_chunk()
    for name, fn in sides.items():  # first chunk: tracing and XLA compilation
        compile_s[name] = _common.timed(fn)[0]
    times = {name: [] for name in sides}
    for _ in range(repeats):
        next_chunk()
        for name, fn in sides.items():
            times[name].append(_common.timed(fn)[0])
    stats = {name: _common.summary(t) for name, t in times.items()}
    rate = {name: chunk * BATCH / s["median_s"] for name, s in stats.items()}

    nll = {"ours_fit": -float(np.mean(flow.log_prob(x_test))),
           "tfp": -float(np.mean(dist.log_prob(x_test))),
           "tfp_fused": -float(np.mean(dist_fused.log_prob(x_test)))}
    if not quick:  # the same loss through the hand-written step's function, for the record
        nll["ours_loss_fn"] = float(ours_loss(flow)(tf.constant(x_test)))
    valid = {"tfp": still_autoregressive(dist.nets),
             "tfp_fused": still_autoregressive(dist_fused.nets)}
    if not all(valid.values()):
        print(f"WARNING: a baseline MADE lost its masks in training: {valid}")
    spread = max(s["spread"] for s in stats.values())
    rows = [
        _common.row("train samples/s (fit vs TFP step)", rate["ours_fit"], rate["tfp"],
                    "samples/s", f"median of {repeats}x{chunk} steps, spread {spread:.0%}"),
        _common.row("  not a floor: fit vs TFP's step in our fused loop", rate["ours_fit"],
                    rate["tfp_fused"], "samples/s",
                    f"TFP, {spe} steps per XLA program; NLL {nll['tfp_fused']:.4f}"),
        _common.row(f"test NLL after {total_steps} steps", nll["ours_fit"], nll["tfp"], "nats",
                    higher_is_better=False),
        _common.row("first chunk incl. compile", compile_s["ours_fit"], compile_s["tfp"], "s",
                    higher_is_better=False),
        _common.row("trainable parameters", params["ours"], params["tfp"], ""),
    ]
    details = {"maf_steps": num_steps, "batch": BATCH, "steps_per_chunk": chunk,
               "steps_per_execution": spe, "total_steps": total_steps, "params": params,
               "times": stats, "samples_per_s": rate, "test_nll": nll, "first_chunk_s": compile_s,
               "baseline_still_autoregressive": valid}
    _common.write_results("maf", args, rows, details)


if __name__ == "__main__":
    main()
