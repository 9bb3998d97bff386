"""LU-decomposed linear map over the last axis."""

from __future__ import annotations

import tensorflow as tf

from tfp_flows.bijectors._linear import Linear
from tfp_flows.bijectors._lu import triangular_factors


class LULinear(Linear):
    """Normalizing map ``z = W x + shift`` with ``W = P L (U + diag(sign * exp(log_scale)))``.

    Invertible by construction for any ``lower``, ``upper`` and ``log_scale``
    (the diagonal of the triangular factor is never 0). No inverse or determinant
    of ``W`` is ever formed.

    Inverse (x -> z, normalizing): one matmul, O(d^2) a row (``W`` costs O(d^3)
        once per call, independent of the batch).
    Forward (z -> x, sampling): two triangular solves, O(d^2) a row.
    log|det J| of the inverse: ``sum(log_scale)``, O(d).

    Kingma & Dhariwal, "Glow", arXiv:1807.03039, section 3.2.

    Examples:
        >>> import numpy as np
        >>> from tfp_flows.bijectors import random_rotation_lu
        >>> b = LULinear(*random_rotation_lu(3, seed=0), shift=np.zeros(3))
        >>> x = np.ones((2, 3), np.float32)
        >>> np.allclose(b.forward(tf.identity(b.inverse(x))), x, atol=1e-5)
        True

    Args:
        permutation: int vector ``perm`` with ``(P v)_i = v[perm_i]``.
        lower: ``[d, d]``; only the strictly lower part is used (unit diagonal).
        upper: ``[d, d]``; only the strictly upper part is used.
        log_scale: ``[d]``, log of the absolute diagonal of the upper factor.
        sign: ``[d]`` of +-1, the signs of that diagonal (fixed, not trained).
        shift: ``[d]`` added in the normalizing direction.
    """

    _event_ndims = 1

    def __init__(self, permutation, lower, upper, log_scale, sign, shift,
                 validate_args: bool = False, name: str | None = None):
        parameters = dict(locals())
        self._permutation = tf.convert_to_tensor(permutation, dtype=tf.int32)
        super().__init__({"log_scale": (log_scale, 1), "lower": (lower, 2), "upper": (upper, 2),
                          "sign": (sign, 1)}, shift, event_ndims=self._event_ndims,
                         validate_args=validate_args, parameters=parameters, name=name)
        self._check_shape("permutation", self._permutation, 1)

    def _factors(self):
        return triangular_factors(self._lower, self._upper, self._log_scale, self._sign)

    def _weight(self):
        unit_lower, upper = self._factors()
        return tf.gather(tf.matmul(unit_lower, upper), self._permutation, axis=0)

    def _solve(self, z):
        """All rows through one pair of triangular solves, after undoing ``P``."""
        return super()._solve(tf.gather(z, tf.math.invert_permutation(self._permutation), axis=-1))

    def _solve_columns(self, columns):
        unit_lower, upper = self._factors()
        columns = tf.linalg.triangular_solve(unit_lower, columns, lower=True)
        return tf.linalg.triangular_solve(upper, columns, lower=False)

    def _log_abs_det(self):
        return tf.reduce_sum(self._log_scale)
