"""LU arithmetic shared by `LULinear` and `Invertible1x1Conv`.

``W = P L (U + diag(sign * exp(log_scale)))`` with ``L`` unit lower triangular,
``U`` strictly upper triangular and ``P`` the permutation ``(P v)_i = v[perm_i]``.
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


def random_rotation_lu(size: int, seed: int | None = None):
    """Glow's initialisation: a random rotation (QR of a Gaussian) factored as ``P L U``.

    The public home of the LU factors that `LULinear` and `Invertible1x1Conv` take
    (``tfp_flows.bijectors.random_rotation_lu``): ``W = P L (U + diag(sign * exp(log_scale)))``
    is orthogonal, so the map starts volume-preserving and well conditioned.

    Args:
        size: the matrix is ``size x size``.
        seed: NumPy seed; None draws a fresh rotation.

    Returns:
        NumPy arrays ``(permutation, lower, upper, log_scale, sign)``: an int32
        permutation, the strictly lower and strictly upper parts, and the log-magnitudes
        and signs of the diagonal of ``U``.

    Examples:
        >>> [factor.shape for factor in random_rotation_lu(3, seed=0)]
        [(3,), (3, 3), (3, 3), (3,), (3,)]
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


def reversal_lu(size: int):
    """The reversal of the entries factored as ``P L U``: ``P`` reverses, ``L = U = I``.

    The start of ``LULinear(start="reversal")``: the fixed map of a reversal between
    couplings, whose LU factors are then learned. Unlike a random rotation it keeps each
    coordinate whole, so the first couplings split the data's own coordinates.

    Args:
        size: the matrix is ``size x size``.

    Returns:
        NumPy arrays ``(permutation, lower, upper, log_scale, sign)`` as
        `random_rotation_lu` returns them.

    Examples:
        >>> permutation, lower, upper, log_scale, sign = reversal_lu(3)
        >>> permutation.tolist(), float(abs(lower).sum() + abs(upper).sum() + abs(log_scale).sum())
        ([2, 1, 0], 0.0)
    """
    zeros = np.zeros((size, size))
    return (np.arange(size)[::-1].astype(np.int32), zeros, zeros.copy(), np.zeros(size),
            np.ones(size))
