"""Lower-triangular linear map."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow_probability.python.internal import dtype_util

from tfp_flows.bijectors._base import FlowBijector, check_event, check_floating
from tfp_flows.bijectors._lu import strictly_lower_mask


class TriangularLinear(FlowBijector):
    """Normalizing map ``z = T x + shift``, ``T`` lower triangular with diagonal ``exp(log_diagonal)``.

    Inverse (normalizing): one matmul, O(d^2) a row.
    Forward (sampling): one triangular solve, O(d^2) a row.
    log|det J| of the inverse: ``sum(log_diagonal)``, O(d).

    Args:
        lower: ``[d, d]``; only the strictly lower part is used.
        log_diagonal: ``[d]``, so the diagonal is positive and ``T`` invertible.
        shift: ``[d]``.
    """

    def __init__(self, lower, log_diagonal, shift, validate_args: bool = False,
                 name: str = "TriangularLinear"):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            dtype = dtype_util.common_dtype([lower, log_diagonal, shift], tf.float32)
            self._lower = tf.convert_to_tensor(lower, dtype=dtype)
            self._log_diagonal = tf.convert_to_tensor(log_diagonal, dtype=dtype)
            self._shift = tf.convert_to_tensor(shift, dtype=dtype)
            size = self._log_diagonal.shape[-1]
            if tuple(self._lower.shape) != (size, size) or self._shift.shape[-1] != size:
                raise ValueError(f"TriangularLinear: expected lower {(size, size)} and shift "
                                 f"{(size,)}; got {tuple(self._lower.shape)} and "
                                 f"{tuple(self._shift.shape)}.")
            super().__init__(forward_min_event_ndims=1, is_constant_jacobian=True, dtype=dtype,
                             validate_args=validate_args, parameters=parameters, name=name)

    def _matrix(self):
        size = self._log_diagonal.shape[-1]
        eye = tf.constant(np.eye(size), self.dtype)
        return self._lower * strictly_lower_mask(size, self.dtype) + eye * tf.exp(self._log_diagonal)

    def _check(self, x):
        check_floating(x, "TriangularLinear")
        check_event(x, (self._log_diagonal.shape[-1],), "TriangularLinear")

    def _inverse(self, y):
        self._check(y)
        return tf.linalg.matvec(self._matrix(), y) + self._shift

    def _forward(self, x):
        self._check(x)
        size = self._log_diagonal.shape[-1]
        columns = tf.transpose(tf.reshape(x - self._shift, [-1, size]))
        columns = tf.linalg.triangular_solve(self._matrix(), columns, lower=True)
        return tf.reshape(tf.transpose(columns), tf.shape(x))

    def _inverse_log_det_jacobian(self, y):
        return tf.reduce_sum(self._log_diagonal)

    def _forward_log_det_jacobian(self, x):
        return -tf.reduce_sum(self._log_diagonal)
