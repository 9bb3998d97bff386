"""LU arithmetic shared by `LULinear` and `Invertible1x1Conv`.

``W = P L (U + diag(sign * exp(log_scale)))`` with ``L`` unit lower triangular,
``U`` strictly upper triangular and ``P`` the permutation ``(P v)_i = v[perm_i]``.
Rows of ``x`` are vectors, so ``W x`` is written ``x @ W^T``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def strictly_lower_mask(size: int, dtype) -> tf.Tensor:
    """Constant 0/1 mask of the strictly lower triangle: masks compile to one multiply,
    where ``band_part`` compiles to iota/compare/select on every call."""
    return tf.constant(np.tril(np.ones((size, size)), -1), dtype)


def triangular_factors(lower, upper, log_scale, sign):
    """Returns ``(L, U')``; entries of ``lower``/``upper`` off their strict part are ignored."""
    size = log_scale.shape[-1]
    mask = strictly_lower_mask(size, log_scale.dtype)
    eye = tf.constant(np.eye(size), log_scale.dtype)
    unit_lower = lower * mask + eye
    upper = upper * tf.transpose(mask) + eye * (sign * tf.exp(log_scale))
    return unit_lower, upper


def lu_matmul(x, permutation, lower, upper, log_scale, sign):
    """``W x`` for rows ``x``: one matmul with ``W = P L U'``. O(d^2) a row, O(d^3) once for ``W``."""
    unit_lower, upper = triangular_factors(lower, upper, log_scale, sign)
    weight = tf.gather(tf.matmul(unit_lower, upper), permutation, axis=0)
    return tf.linalg.matvec(weight, x)


def lu_solve(z, permutation, lower, upper, log_scale, sign):
    """``W^{-1} z`` for rows ``z`` by two triangular solves, O(d^2) a row.

    All rows go through one solve with the rows as right-hand-side columns.
    """
    unit_lower, upper = triangular_factors(lower, upper, log_scale, sign)
    inverse_permutation = tf.math.invert_permutation(permutation)
    size = tf.shape(z)[-1]
    columns = tf.transpose(tf.reshape(tf.gather(z, inverse_permutation, axis=-1), [-1, size]))
    columns = tf.linalg.triangular_solve(unit_lower, columns, lower=True)
    columns = tf.linalg.triangular_solve(upper, columns, lower=False)
    return tf.reshape(tf.transpose(columns), tf.shape(z))


def random_rotation_lu(size: int, seed: int | None = None):
    """Glow's initialisation: an orthogonal matrix (QR of a Gaussian) factored as ``P L U``.

    Returns NumPy arrays ``(permutation, lower, upper, log_scale, sign)``.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((size, size)))
    packed, rows = tf.linalg.lu(tf.constant(q))  # q[rows] = L U
    packed = packed.numpy()
    permutation = tf.math.invert_permutation(rows).numpy()  # q = gather(L U, permutation)
    diagonal = np.diag(packed)
    return (permutation.astype(np.int32), np.tril(packed, -1), np.triu(packed, 1),
            np.log(np.abs(diagonal)), np.sign(diagonal))
