"""The linear family: how sampling (the solve) and the log-det cost grow with dimension.

Run: python examples/linear_family.py
The careful measurement, with fitted exponents, is `python -m benchmarks linear_family`;
this script shows the same story in a few seconds: a dense matrix pays O(d^3) for its
inverse and determinant, the LU map O(d^2) and O(d), the diagonal O(d).
"""

import timeit

import numpy as np
import tensorflow as tf

from tfp_flows import bijectors
from tfp_flows.bijectors import random_rotation_lu

rng = np.random.default_rng(0)


def build(kind, d):
    if kind == "LU":
        permutation, lower, upper, log_scale, sign = random_rotation_lu(d, seed=0)
        return bijectors.LULinear(permutation, lower.astype(np.float32), upper.astype(np.float32),
                                  log_scale.astype(np.float32), sign.astype(np.float32),
                                  np.zeros(d, np.float32))
    if kind == "full":
        return bijectors.FullLinear(np.eye(d, dtype=np.float32) + 0.01 * rng.standard_normal(
            (d, d)).astype(np.float32), np.zeros(d, np.float32))
    if kind == "triangular":
        return bijectors.TriangularLinear(np.zeros((d, d), np.float32), np.zeros(d, np.float32),
                                          np.zeros(d, np.float32))
    return bijectors.DiagonalLinear(np.zeros(d, np.float32), np.zeros(d, np.float32))


print(f"{'map':>10} {'d':>5} {'solve (ms)':>11} {'log-det (ms)':>13}")
for kind in ("full", "triangular", "LU", "diagonal"):
    for d in (128, 512, 1024):
        bijector = build(kind, d)
        x = tf.constant(rng.standard_normal((64, d)), tf.float32)
        solve = tf.function(lambda x, b=bijector: b.forward(x))
        log_det = tf.function(lambda x, b=bijector: b.forward_log_det_jacobian(x, event_ndims=1))
        solve(x), log_det(x)  # trace once
        times = [min(timeit.repeat(lambda f=f, x=x: f(x).numpy(), number=5, repeat=3)) / 5 * 1e3
                 for f in (solve, log_det)]
        print(f"{kind:>10} {d:>5} {times[0]:>11.3f} {times[1]:>13.3f}")
