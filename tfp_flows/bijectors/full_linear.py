"""Dense linear map: the expensive end of the linear family."""

from __future__ import annotations

import tensorflow as tf
from tensorflow_probability.python.internal import dtype_util

from tfp_flows.bijectors._base import FlowBijector, check_event, check_floating


class FullLinear(FlowBijector):
    """Normalizing map ``z = W x + shift`` with a dense ``W``.

    Inverse (normalizing): one matmul, O(d^2) a row.
    Forward (sampling): an LU solve, O(d^3) for the factorisation plus O(d^2) a row.
    log|det J| of the inverse: ``log|det W| = sum log|diag(R)|`` from a QR
        factorisation (XLA has no kernel for ``slogdet``), O(d^3).

    Nothing keeps ``W`` invertible during training; prefer `LULinear`.

    Args:
        matrix: ``[d, d]``, ``W``.
        shift: ``[d]``.
    """

    def __init__(self, matrix, shift, validate_args: bool = False, name: str = "FullLinear"):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            dtype = dtype_util.common_dtype([matrix, shift], tf.float32)
            self._matrix = tf.convert_to_tensor(matrix, dtype=dtype)
            self._shift = tf.convert_to_tensor(shift, dtype=dtype)
            size = self._shift.shape[-1]
            if tuple(self._matrix.shape) != (size, size):
                raise ValueError(f"FullLinear: expected matrix of shape {(size, size)}; "
                                 f"got {tuple(self._matrix.shape)}.")
            super().__init__(forward_min_event_ndims=1, is_constant_jacobian=True, dtype=dtype,
                             validate_args=validate_args, parameters=parameters, name=name)

    def _check(self, x):
        check_floating(x, "FullLinear")
        check_event(x, (self._shift.shape[-1],), "FullLinear")

    def _inverse(self, y):
        self._check(y)
        return tf.linalg.matvec(self._matrix, y) + self._shift

    def _forward(self, x):
        self._check(x)
        size = self._shift.shape[-1]
        columns = tf.transpose(tf.reshape(x - self._shift, [-1, size]))
        return tf.reshape(tf.transpose(tf.linalg.solve(self._matrix, columns)), tf.shape(x))

    def _inverse_log_det_jacobian(self, y):
        upper = tf.linalg.qr(self._matrix)[1]
        return tf.reduce_sum(tf.math.log(tf.abs(tf.linalg.diag_part(upper))))

    def _forward_log_det_jacobian(self, x):
        return -self._inverse_log_det_jacobian(x)
