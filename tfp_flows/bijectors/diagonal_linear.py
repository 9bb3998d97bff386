"""Diagonal linear map: the cheap end of the linear family."""

from __future__ import annotations

import tensorflow as tf
from tensorflow_probability.python.internal import dtype_util

from tfp_flows.bijectors._base import FlowBijector, check_event, check_floating


class DiagonalLinear(FlowBijector):
    """Normalizing map ``z = exp(log_scale) * x + shift``, elementwise over the last axis.

    Inverse (normalizing) and forward (sampling): O(d) a row.
    log|det J| of the inverse: ``sum(log_scale)``, O(d).

    Args:
        log_scale: ``[d]``.
        shift: ``[d]``.
    """

    def __init__(self, log_scale, shift, validate_args: bool = False,
                 name: str = "DiagonalLinear"):
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            dtype = dtype_util.common_dtype([log_scale, shift], tf.float32)
            self._log_scale = tf.convert_to_tensor(log_scale, dtype=dtype)
            self._shift = tf.convert_to_tensor(shift, dtype=dtype)
            if self._shift.shape != self._log_scale.shape:
                raise ValueError(f"DiagonalLinear: expected shift of shape "
                                 f"{tuple(self._log_scale.shape)}; got {tuple(self._shift.shape)}.")
            super().__init__(forward_min_event_ndims=1, is_constant_jacobian=True, dtype=dtype,
                             validate_args=validate_args, parameters=parameters, name=name)

    def _check(self, x):
        check_floating(x, "DiagonalLinear")
        check_event(x, (self._log_scale.shape[-1],), "DiagonalLinear")

    def _inverse(self, y):
        self._check(y)
        return y * tf.exp(self._log_scale) + self._shift

    def _forward(self, x):
        self._check(x)
        return (x - self._shift) * tf.exp(-self._log_scale)

    def _inverse_log_det_jacobian(self, y):
        return tf.reduce_sum(self._log_scale)

    def _forward_log_det_jacobian(self, x):
        return -tf.reduce_sum(self._log_scale)
