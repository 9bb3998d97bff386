"""LU-decomposed linear map over the last axis."""

from __future__ import annotations

import tensorflow as tf
from tensorflow_probability.python.internal import dtype_util

from tfp_flows.bijectors import _lu
from tfp_flows.bijectors._base import FlowBijector, check_event, check_floating


class LULinear(FlowBijector):
    """Normalizing map ``z = W x + shift`` with ``W = P L (U + diag(sign * exp(log_scale)))``.

    Invertible by construction for any ``lower``, ``upper`` and ``log_scale``
    (the diagonal of the triangular factor is never 0). No inverse or determinant
    of ``W`` is ever formed.

    Inverse (x -> z, normalizing): one matmul, O(d^2) a row (``W`` costs O(d^3)
        once per call, independent of the batch).
    Forward (z -> x, sampling): two triangular solves, O(d^2) a row.
    log|det J| of the inverse: ``sum(log_scale)``, O(d).

    Kingma & Dhariwal, "Glow", arXiv:1807.03039, section 3.2.

    Example:
        >>> import numpy as np
        >>> b = LULinear(*_lu.random_rotation_lu(3, seed=0), shift=np.zeros(3))
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
        name = name or type(self).__name__
        with tf.name_scope(name) as name:
            dtype = dtype_util.common_dtype([lower, upper, log_scale, sign, shift], tf.float32)
            self._permutation = tf.convert_to_tensor(permutation, dtype=tf.int32)
            self._lower = tf.convert_to_tensor(lower, dtype=dtype)
            self._upper = tf.convert_to_tensor(upper, dtype=dtype)
            self._log_scale = tf.convert_to_tensor(log_scale, dtype=dtype)
            self._sign = tf.convert_to_tensor(sign, dtype=dtype)
            self._shift = tf.convert_to_tensor(shift, dtype=dtype)
            size = self._log_scale.shape[-1]
            for label, t, shape in [("lower", self._lower, (size, size)),
                                    ("upper", self._upper, (size, size)),
                                    ("sign", self._sign, (size,)), ("shift", self._shift, (size,)),
                                    ("permutation", self._permutation, (size,))]:
                if tuple(t.shape) != shape:
                    raise ValueError(f"{type(self).__name__}: expected {label} of shape {shape} "
                                     f"to match log_scale of size {size}; got {tuple(t.shape)}.")
            super().__init__(forward_min_event_ndims=self._event_ndims, is_constant_jacobian=True,
                             dtype=dtype, validate_args=validate_args,
                             parameters=parameters, name=name)

    @property
    def size(self) -> int:
        return self._log_scale.shape[-1]

    def _factors(self):
        return self._permutation, self._lower, self._upper, self._log_scale, self._sign

    def _check(self, x):
        check_floating(x, type(self).__name__)
        check_event(x, (None,) * (self._event_ndims - 1) + (self.size,), type(self).__name__)

    def _inverse(self, y):
        self._check(y)
        return _lu.lu_matmul(y, *self._factors()) + self._shift

    def _forward(self, x):
        self._check(x)
        return _lu.lu_solve(x - self._shift, *self._factors())

    def _positions(self, x):
        """Number of vectors in one event (1 here; pixels for the 1x1 convolution)."""
        return 1

    def _inverse_log_det_jacobian(self, y):
        return tf.reduce_sum(self._log_scale) * tf.cast(self._positions(y), self.dtype)

    def _forward_log_det_jacobian(self, x):
        return -self._inverse_log_det_jacobian(x)
