"""Case `wide_realnvp`: 64 dims, MLP 1024x1024, batch 1024: achieved FLOP/s of a step.

Matmul FLOPs are counted analytically: ``2 m k n`` per dense layer forward (and
per LU matvec, plus ``2 d^3`` to form ``W = L U``), backward twice the forward.
They are divided by the step time of ``fit`` (``jit_compile=True``) and compared
with the machine's own float32 matmul rate (a large ``tf.matmul`` in ``tf.function``).
"""

from __future__ import annotations

import keras  # noqa: E402
import numpy as np
import tensorflow as tf  # noqa: E402

import tfp_flows  # noqa: E402
from benchmarks import _common

DIM, HIDDEN = 64, (1024, 1024)


def step_flops(flow, batch):
    """Training-step matmul FLOPs: dense kernels and LU maps, forward x 3."""
    forward = 0
    for v in flow.trainable_variables:
        name = v.path.split("/")[-1]
        if name == "kernel" and len(v.shape) == 2:
            forward += 2 * batch * v.shape[0] * v.shape[1]
        elif name == "lower" and len(v.shape) == 2:  # one LU map: W x and W = L U
            d = v.shape[0]
            forward += 2 * batch * d * d + 2 * d ** 3
    return 3 * forward


def matmul_peak(n, repeats):
    a = tf.random.stateless_normal((n, n), seed=(0, 1))
    b = tf.random.stateless_normal((n, n), seed=(0, 2))
    mm = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)))
    stats = _common.median_time(mm, repeats=repeats, warmup=2)
    return 2 * n ** 3 / stats["median_s"], stats


def main(argv=None):
    args = _common.parse_args(__doc__.splitlines()[0], argv)
    quick = args.quick
    couplings, batch, spe, chunk = (2, 256, 2, 4) if quick else (4, 1024, 10, 20)
    repeats = args.repeats or (2 if quick else 5)
    keras.utils.set_random_seed(0)
    flow = tfp_flows.RealNVP(DIM, num_steps=couplings, hidden_units=HIDDEN)
    flow.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=True,
                 steps_per_execution=spe)
    x = np.random.default_rng(0).standard_normal((chunk * batch, DIM)).astype(np.float32)

    def run():
        flow.fit(x, batch_size=batch, epochs=1, shuffle=False, verbose=0)

    stats = _common.median_time(run, repeats=repeats, warmup=1)
    step_s = stats["median_s"] / chunk
    flops = step_flops(flow, batch)
    achieved = flops / step_s
    peak, peak_stats = matmul_peak(1024 if quick else 4096, repeats=3 if quick else 5)
    rows = [
        _common.row("achieved / machine matmul FLOP/s", achieved / peak, None, "fraction",
                    f"{couplings} couplings, batch {batch}"),
        _common.row("achieved FLOP/s (training step)", achieved, None, "FLOP/s"),
        _common.row("machine float32 matmul FLOP/s", peak, None, "FLOP/s",
                    f"tf.matmul {1024 if quick else 4096}^2"),
        _common.row("train step time", step_s, None, "s", f"spread {stats['spread']:.0%}",
                    higher_is_better=False),
        _common.row("matmul FLOPs per step", flops, None, "FLOP"),
    ]
    details = {"couplings": couplings, "batch": batch, "hidden": HIDDEN,
               "steps_per_execution": spe, "steps_per_repeat": chunk, "fit_times": stats,
               "step_s": step_s, "flops_per_step": flops, "achieved_flops": achieved,
               "matmul_peak_flops": peak, "matmul_times": peak_stats}
    _common.write_results("wide_realnvp", args, rows, details)


if __name__ == "__main__":
    main()
