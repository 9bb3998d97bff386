"""Case `moons_profile`: where the time of our moons training step goes, against TFP's.

Measured per training step (batch 256, 8 couplings, MLP 64x64), all sides alternately:
- ``fit (numpy)``: ``model.fit`` on a NumPy chunk, as a user runs it;
- ``fit (tf.data)``: ``model.fit`` on a prebuilt repeating ``tf.data.Dataset``;
- ``step``: our ``Flow.graph_log_prob`` in the hand-written XLA step (``benchmarks._loop``);
- ablations of the step: no ActNorm; a fixed reversal instead of ``LULinear``; both;
- ``step, fused``: the same step, all steps of a slice in one XLA program (as ``fit``
  runs them with ``steps_per_execution``);
- ``TFP``: the baseline of the ``moons`` case in the same loop;
- the Adam update alone (constant gradients) of our flow's variables, one XLA
  launch per step against all steps in one XLA program: the launch cost;
- the loss alone (no gradient, no update), ours vs TFP;
and, per compiled step, the number of HLO instructions after XLA's optimisation and
the time to trace (Python) versus the time of the first call (XLA compile + run).
"""

from __future__ import annotations

import re

import keras  # noqa: E402
import numpy as np
import tensorflow as tf  # noqa: E402

from benchmarks import _common
from benchmarks._loop import in_graph_loop, in_xla_loop, make_trainer
from benchmarks.moons import BATCH, LR, NUM_STEPS, ours, ours_loss, tfp_loss, tfp_realnvp
from tfp_flows.data import load_two_moons  # noqa: E402


def hlo_stats(jitted, x):
    """Instruction and fusion counts of the optimised HLO of a jit-compiled function."""
    try:
        text = jitted.experimental_get_compiler_ir(x)(stage="optimized_hlo")
    except Exception as error:  # noqa: BLE001
        return {"error": repr(error)[:300]}
    entry = text[text.find("ENTRY"):]
    ops = re.findall(r"=\s*\S+\s+([a-z][\w-]*)\(", text)
    counts = {}
    for op in ops:
        counts[op] = counts.get(op, 0) + 1
    top = dict(sorted(counts.items(), key=lambda kv: -kv[1])[:12])
    return {"instructions": len(ops), "entry_instructions": entry.count("\n"),
            "fusions": counts.get("fusion", 0), "top_ops": top}


def main(argv=None):
    args = _common.parse_args(__doc__.splitlines()[0], argv)
    quick = args.quick
    couplings = 2 if quick else NUM_STEPS
    chunk, spe = (40, 20) if quick else (300, 100)
    repeats = args.repeats or (2 if quick else 7)
    (x_train, _), _ = load_two_moons()
    rng = np.random.default_rng(0)
    xs = tf.constant(x_train[rng.integers(0, len(x_train), (chunk, BATCH))])
    flat = xs.numpy().reshape(-1, 2)

    def adam():
        return keras.optimizers.Adam(LR)

    def trainer_for(fused=False, **kwargs):
        keras.utils.set_random_seed(0)
        flow = ours(num_steps=couplings, **kwargs)
        return flow, make_trainer(ours_loss(flow), flow.trainable_variables, adam(), fused=fused)

    keras.utils.set_random_seed(0)
    flow_fit = ours(num_steps=couplings)
    flow_fit.compile(optimizer=adam(), jit_compile=True, steps_per_execution=spe)
    keras.utils.set_random_seed(0)
    flow_ds = ours(num_steps=couplings)
    flow_ds.compile(optimizer=adam(), jit_compile=True, steps_per_execution=spe)
    dataset = tf.data.Dataset.from_tensor_slices(flat).batch(BATCH, drop_remainder=True)
    dataset = dataset.cache().repeat().prefetch(tf.data.AUTOTUNE)

    flow, step = trainer_for()
    _, step_fused = trainer_for(fused=True)
    _, step_no_actnorm = trainer_for(actnorm=False)
    _, step_reverse = trainer_for(linear="reverse")
    _, step_bare = trainer_for(actnorm=False, linear="reverse")
    keras.utils.set_random_seed(0)
    dist, tfp_vars = tfp_realnvp(num_steps=couplings)
    step_tfp = make_trainer(tfp_loss(dist), tfp_vars, adam())
    loss_ours = tf.function(ours_loss(flow), jit_compile=True)
    loss_tfp = tf.function(tfp_loss(dist), jit_compile=True)

    def sliced(trainer):
        def run():
            for start in range(0, chunk, spe):
                out = trainer(xs[start:start + spe])
            return out
        return run

    def repeated(fn):
        loop = in_graph_loop(fn)
        return lambda: loop(xs)

    def adam_only(fused):
        variables = ours(num_steps=couplings).trainable_variables
        optimizer = adam()
        optimizer.build(variables)
        gradients = [tf.fill(v.shape, 1e-3) for v in variables]

        def update(x):
            optimizer.apply_gradients(zip(gradients, variables))
            return tf.reduce_sum(x[:1])

        if fused:
            loop = in_xla_loop(update)
            return lambda: loop(xs)
        return repeated(tf.function(update, jit_compile=True))

    # Trace (Python only) and first call (XLA compile + one step) of each compiled step.
    first = {}
    for name, trainer in [("ours", step), ("tfp", step_tfp)]:
        trace_s = _common.timed(trainer.step.get_concrete_function, xs[0])[0]
        call_s = _common.timed(trainer.step, xs[0])[0]
        first[name] = {"trace_s": trace_s, "first_call_s": call_s}
    hlo = {"ours": hlo_stats(step.step, xs[0]), "tfp": hlo_stats(step_tfp.step, xs[0]),
           "ours_loss_only": hlo_stats(loss_ours, xs[0]),
           "tfp_loss_only": hlo_stats(loss_tfp, xs[0])}

    sides = {
        "fit (numpy)": lambda: flow_fit.fit(flat, batch_size=BATCH, epochs=1, shuffle=False,
                                            verbose=0),
        "fit (tf.data)": lambda: flow_ds.fit(dataset, steps_per_epoch=chunk, epochs=1, shuffle=False,
                                             verbose=0),
        "step": sliced(step),
        "step, fused": sliced(step_fused),
        "step, no ActNorm": sliced(step_no_actnorm),
        "step, reversal not LU": sliced(step_reverse),
        "step, neither": sliced(step_bare),
        "TFP step": sliced(step_tfp),
        "loss only, ours": repeated(loss_ours),
        "loss only, TFP": repeated(loss_tfp),
        "Adam only, one XLA launch per step": adam_only(False),
        "Adam only, steps in one XLA program": adam_only(True),
    }
    for fn in sides.values():  # compile and warm up
        fn()
    stats = _common.alternate(sides, repeats)
    per_step_us = {name: 1e6 * s["median_s"] / chunk for name, s in stats.items()}
    tfp_us = per_step_us["TFP step"]
    def baseline(name):
        if name.startswith("Adam"):
            return None
        return per_step_us["loss only, TFP"] if "loss" in name else tfp_us

    rows = [_common.row(f"us/step: {name}", us, baseline(name), "us", higher_is_better=False)
            for name, us in per_step_us.items()]
    rows += [
        _common.row("trace of compiled step (Python)", first["ours"]["trace_s"],
                    first["tfp"]["trace_s"], "s", higher_is_better=False),
        _common.row("first call (XLA compile + step)", first["ours"]["first_call_s"],
                    first["tfp"]["first_call_s"], "s", higher_is_better=False),
        _common.row("HLO instructions, train step", hlo["ours"].get("instructions"),
                    hlo["tfp"].get("instructions"), "", higher_is_better=False),
        _common.row("HLO fusions, train step", hlo["ours"].get("fusions"),
                    hlo["tfp"].get("fusions"), "", higher_is_better=False),
        _common.row("HLO instructions, loss only", hlo["ours_loss_only"].get("instructions"),
                    hlo["tfp_loss_only"].get("instructions"), "", higher_is_better=False),
    ]
    details = {"couplings": couplings, "chunk": chunk, "steps_per_execution": spe,
               "per_step_us": per_step_us, "times": stats, "first": first, "hlo": hlo}
    _common.write_results("moons_profile", args, rows, details)


if __name__ == "__main__":
    main()
