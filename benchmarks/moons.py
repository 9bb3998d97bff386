"""Case `moons`: two moons, 8 affine couplings, MLP 64x64, batch 256.

Ours: ``tfp_flows.RealNVP(2, num_steps=8, hidden_units=(64, 64))`` trained with
``model.fit`` (``jit_compile=True``, ``steps_per_execution``). Baseline: a chain of
8 ``tfb.RealNVP(num_masked=1, shift_and_log_scale_fn=<Keras 3 MLP>)`` with
``tfb.Permute`` between them, trained by a ``tf.function(jit_compile=True)`` step
with the same Keras Adam. A third side, "ours, hand-written step", runs our flow's
``graph_log_prob`` through the baseline's loop. A fourth, not a floor, runs TFP's step
the way ``fit`` runs ours (``steps_per_execution`` steps in one XLA program), to
show how much of the gap is that loop.

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
from benchmarks._loop import make_trainer, time_chunks
from tfp_flows.data import load_two_moons  # noqa: E402

tfb, tfd = tfp.bijectors, tfp.distributions

BATCH, NUM_STEPS, HIDDEN, LR = 256, 8, (64, 64), 1e-3


class KerasShiftAndLogScale:
    """``shift_and_log_scale_fn`` for ``tfb.RealNVP`` as a Keras 3 MLP (tanh, zero last layer).

    The log-scale is bounded as ``2 tanh(s / 2)``, as ours is: TFP's unbounded
    ``exp`` scale diverges under XLA on this data (see design.md).
    """

    def __init__(self, num_masked, output_units, hidden_units, bound=2.0):
        self.bound = bound
        self.net = keras.Sequential(
            [keras.Input((num_masked,))]
            + [keras.layers.Dense(u, activation="tanh") for u in hidden_units]
            + [keras.layers.Dense(2 * output_units, kernel_initializer="zeros")])

    def __call__(self, x, output_units, **condition_kwargs):
        shift, raw = tf.split(self.net(x), 2, axis=-1)
        return shift, self.bound * tf.tanh(raw / self.bound)


def tfp_realnvp(event_size=2, num_steps=NUM_STEPS, hidden_units=HIDDEN):
    """The baseline distribution and its trainable variables."""
    nets, chain = [], []
    for step in range(num_steps):
        net = KerasShiftAndLogScale(1, event_size - 1, hidden_units)
        nets.append(net)
        chain.append(tfb.RealNVP(num_masked=1, shift_and_log_scale_fn=net))
        if step < num_steps - 1:
            chain.append(tfb.Permute(list(range(event_size))[::-1]))
    base = tfd.Sample(tfd.Normal(0.0, 1.0), event_size)
    dist = tfd.TransformedDistribution(base, tfb.Chain(chain))
    variables = [v for net in nets for v in net.net.trainable_variables]
    return dist, variables


def ours(event_size=2, num_steps=NUM_STEPS, hidden_units=HIDDEN, **kwargs):
    return tfp_flows.RealNVP(event_size, num_steps=num_steps, hidden_units=hidden_units,
                             **kwargs)


def ours_loss(flow):
    return lambda x: -tf.reduce_mean(flow.graph_log_prob(x, training=True))


def tfp_loss(dist):
    return lambda x: -tf.reduce_mean(dist.log_prob(x))


def main(argv=None):
    args = _common.parse_args(__doc__.splitlines()[0], argv)
    quick = args.quick
    chunk = 40 if quick else 300          # steps per timed repeat
    repeats = args.repeats or (2 if quick else 9)
    spe = 20 if quick else 100            # steps_per_execution
    total_steps = chunk * (repeats + 1)   # +1: the untimed first (compiling) chunk

    (x_train, _), (x_test, _) = load_two_moons()
    rng = np.random.default_rng(0)

    couplings = 2 if quick else NUM_STEPS  # quick: fewer couplings, to compile fast
    keras.utils.set_random_seed(0)
    flow_fit = ours(num_steps=couplings)
    flow_fit.compile(optimizer=keras.optimizers.Adam(LR), jit_compile=True,
                     steps_per_execution=spe)
    keras.utils.set_random_seed(0)
    flow_step = ours(num_steps=couplings)
    step_ours = make_trainer(ours_loss(flow_step), flow_step.trainable_variables,
                             keras.optimizers.Adam(LR))
    keras.utils.set_random_seed(0)
    dist, tfp_vars = tfp_realnvp(num_steps=couplings)
    step_tfp = make_trainer(tfp_loss(dist), tfp_vars, keras.optimizers.Adam(LR))

    keras.utils.set_random_seed(0)
    dist_fused, tfp_fused_vars = tfp_realnvp(num_steps=couplings)
    step_tfp_fused = make_trainer(tfp_loss(dist_fused), tfp_fused_vars, keras.optimizers.Adam(LR),
                                  fused=True)

    params = {"ours": _common.count_params(flow_fit.trainable_variables),
              "tfp": _common.count_params(tfp_vars)}
    print(f"trainable parameters: ours {params['ours']}, tfp {params['tfp']} "
          f"({100 * (params['ours'] / params['tfp'] - 1):+.1f}%)")

    compile_s, stats = time_chunks(
        x_train, flow_fit, {"ours_step": step_ours, "tfp": step_tfp, "tfp_fused": step_tfp_fused},
        chunk=chunk, spe=spe, batch=BATCH, repeats=repeats, rng=rng)
    rate = {name: chunk * BATCH / s["median_s"] for name, s in stats.items()}

    nll = {"ours_fit": -float(np.mean(flow_fit.log_prob(x_test))),
           "ours_step": -float(np.mean(flow_step.log_prob(x_test))),
           "tfp": -float(np.mean(dist.log_prob(x_test))),
           "tfp_fused": -float(np.mean(dist_fused.log_prob(x_test)))}
    spread = max(s["spread"] for s in stats.values())
    rows = [
        _common.row("train samples/s (fit vs TFP step)", rate["ours_fit"], rate["tfp"],
                    "samples/s", f"median of {repeats}x{chunk} steps, spread {spread:.0%}"),
        _common.row("train samples/s (our hand-written step vs TFP)", rate["ours_step"],
                    rate["tfp"], "samples/s", "same loop for both sides"),
        _common.row("  not a floor: fit vs TFP's step in our fused loop", rate["ours_fit"],
                    rate["tfp_fused"], "samples/s",
                    f"TFP, {spe} steps per XLA program; NLL {nll['tfp_fused']:.4f}"),
        _common.row(f"test NLL after {total_steps} steps (fit)", nll["ours_fit"], nll["tfp"],
                    "nats", higher_is_better=False),
        _common.row(f"test NLL after {total_steps} steps (hand-written)", nll["ours_step"],
                    nll["tfp"], "nats", higher_is_better=False),
        _common.row("first chunk incl. compile", compile_s["ours_fit"], compile_s["tfp"], "s",
                    higher_is_better=False),
        _common.row("trainable parameters", params["ours"], params["tfp"], ""),
    ]
    details = {"couplings": couplings, "batch": BATCH, "steps_per_chunk": chunk,
               "steps_per_execution": spe, "total_steps": total_steps, "params": params, "times": stats,
               "samples_per_s": rate, "test_nll": nll, "first_chunk_s": compile_s}
    _common.write_results("moons", args, rows, details)


if __name__ == "__main__":
    main()
