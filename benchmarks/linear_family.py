"""Case `linear_family`: growth of the solve and log-det costs of the linear bijectors.

For ``d`` in 64..1024 and `LULinear`, `FullLinear`, `TriangularLinear`,
`DiagonalLinear`: the solve direction (``forward``, z -> x) on 16 vectors and
``forward_log_det_jacobian``. An O(d) log-det takes microseconds, less than a
call's overhead, so each measurement runs the operation ``R`` times in one
XLA-compiled ``tf.while_loop`` (``R`` calibrated so one call lasts ~30 ms) and
divides. Each iteration rebuilds the bijector from parameters shifted by a
scalar that depends on the previous result, so XLA can neither hoist the work
out of the loop nor drop it. For the log-det only the parameter it reads (the
log-scale, or the matrix of `FullLinear`) is shifted, so the shift adds no
O(d^2) work to an O(d) measurement. The growth exponent is the slope of log time vs
log d over the three largest d.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf  # noqa: E402

from benchmarks import _common
from tfp_flows import bijectors  # noqa: E402
from tfp_flows.bijectors import random_rotation_lu  # noqa: E402

VECTORS = 16
THEORY = {"LULinear": (2, 1), "FullLinear": (3, 3), "TriangularLinear": (2, 1),
          "DiagonalLinear": (1, 1)}


# Index of the parameter each log-det reads: the one the loop perturbs for log-dets.
LOG_DET_PARAMETER = {"LULinear": 2, "FullLinear": 0, "TriangularLinear": 1, "DiagonalLinear": 0}


def parameters(kind, d, rng):
    """``(constructor, float parameters)``."""
    if kind == "LULinear":
        permutation, lower, upper, log_scale, sign = random_rotation_lu(d, seed=0)
        return (lambda lo, up, ls, sh: bijectors.LULinear(permutation, lo, up, ls,
                                                         sign.astype(np.float32), sh),
                [lower, upper, log_scale, np.zeros(d)])
    if kind == "FullLinear":
        q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        return bijectors.FullLinear, [q + 0.1 * np.eye(d), np.zeros(d)]
    if kind == "TriangularLinear":
        return (bijectors.TriangularLinear,
                [rng.standard_normal((d, d)) / np.sqrt(d), 0.1 * rng.standard_normal(d),
                 np.zeros(d)])
    return bijectors.DiagonalLinear, [0.1 * rng.standard_normal(d), np.zeros(d)]


def looped(kind, make, params, op, x):
    """An XLA function ``reps -> sum of results`` running ``op`` ``reps`` times."""
    params = [tf.constant(p, tf.float32) for p in params]

    shifted = (range(len(params)) if op == "solve"
               else [LOG_DET_PARAMETER[kind]])

    def body(i, carry, total):
        bijector = make(*[p + carry if k in shifted else p for k, p in enumerate(params)])
        if op == "solve":
            out = bijector.forward(x)
        else:
            out = bijector.forward_log_det_jacobian(x, event_ndims=1)
        value = tf.reduce_mean(out)
        return i + 1, 1e-30 * value, total + value

    @tf.function(jit_compile=True)
    def run(reps):
        return tf.while_loop(lambda i, c, t: i < reps, body,
                             (tf.constant(0), tf.constant(0.0), tf.constant(0.0)))[2]

    return run


def time_per_op(run, target_s, repeats):
    """Seconds per operation: ``(T(2R) - T(R)) / R`` with medians, which cancels the
    fixed cost of a call; ``R`` calibrated (fastest of 3) so ``T(R)`` is ~``target_s``."""
    run(tf.constant(1)).numpy()  # compile
    reps = 4
    while True:
        t = min(_common.timed(run, tf.constant(reps))[0] for _ in range(3))
        if t > target_s / 4 or reps >= 2 ** 20:
            break
        reps *= 4
    reps = int(min(2 ** 22, max(1, reps * target_s / max(t, 1e-9))))
    once = _common.median_time(lambda: run(tf.constant(reps)), repeats=repeats, warmup=0)
    twice = _common.median_time(lambda: run(tf.constant(2 * reps)), repeats=repeats, warmup=0)
    per_op = (twice["median_s"] - once["median_s"]) / reps
    if per_op <= 0:  # noise larger than the difference
        per_op = twice["median_s"] / (2 * reps)
    return per_op, reps, twice


def slope(sizes, times):
    return float(np.polyfit(np.log(sizes), np.log(times), 1)[0])


def main(argv=None):
    args = _common.parse_args(__doc__.splitlines()[0], argv)
    sizes = (32, 64, 128, 256) if args.quick else (64, 128, 256, 512, 1024)
    target = 0.005 if args.quick else 0.03
    repeats = args.repeats or (2 if args.quick else 5)
    rng = np.random.default_rng(0)
    results, rows = {}, []
    for kind in THEORY:
        results[kind] = {}
        for op in ("solve", "log_det"):
            per_op = []
            for d in sizes:
                make, params = parameters(kind, d, rng)
                x = tf.constant(rng.standard_normal((VECTORS, d)), tf.float32)
                seconds, reps, stats = time_per_op(looped(kind, make, params, op, x), target,
                                                   repeats)
                per_op.append(seconds)
                results[kind][f"{op}_d{d}"] = {"s_per_op": seconds, "reps": reps,
                                               "spread": stats["spread"]}
            top = slope(sizes[-3:], per_op[-3:])
            theory = THEORY[kind][0 if op == "solve" else 1]
            results[kind][op] = {"sizes": sizes, "s_per_op": per_op, "slope_top3": top,
                                 "slope_all": slope(sizes, per_op), "theory": theory}
            rows.append(_common.row(f"{kind} {op}: growth exponent (top 3 d)", top, None, "",
                                    f"theory {theory}; all-d slope "
                                    f"{results[kind][op]['slope_all']:.2f}; "
                                    f"{per_op[-1] * 1e6:.3g} us at d={sizes[-1]}",
                                    higher_is_better=False))
            print(f"{kind:17s} {op:8s} slope {top:5.2f} (theory {theory})  "
                  + "  ".join(f"d={d}: {t * 1e6:.3g}us" for d, t in zip(sizes, per_op)),
                  flush=True)
    _common.write_results("linear_family", args, rows, {"vectors": VECTORS, "results": results})


if __name__ == "__main__":
    main()
