"""Activation normalisation: a per-channel affine map."""

from __future__ import annotations

import tensorflow as tf
from tensorflow_probability.python.internal import dtype_util

from tfp_flows.bijectors._base import FlowBijector, check_event, check_floating, event_size


class ActNorm(FlowBijector):
    """Normalizing map ``z = (x - loc) * exp(-log_scale)`` per channel (last axis).

    Forward (sampling): ``x = z * exp(log_scale) + loc``, O(size of the event).
    log|det J| of the inverse: ``-P * sum(log_scale)``, O(C), with ``P`` the number
    of positions (pixels) in one event.

    Kingma & Dhariwal, "Glow", arXiv:1807.03039, section 3.1.

    Args:
        loc: ``[C]``.
        log_scale: ``[C]``.
        event_ndims: 1 for vectors, 3 for ``[H, W, C]`` images.
    """

    def __init__(self, loc, log_scale, event_ndims: int = 1, validate_args: bool = False,
                 name: str = "ActNorm"):
        parameters = dict(locals())
        if event_ndims < 1:
            raise ValueError(f"ActNorm: expected event_ndims >= 1; got {event_ndims}.")
        with tf.name_scope(name) as name:
            dtype = dtype_util.common_dtype([loc, log_scale], tf.float32)
            self._loc = tf.convert_to_tensor(loc, dtype=dtype)
            self._log_scale = tf.convert_to_tensor(log_scale, dtype=dtype)
            super().__init__(forward_min_event_ndims=event_ndims, is_constant_jacobian=True,
                             dtype=dtype, validate_args=validate_args,
                             parameters=parameters, name=name)

    def _check(self, x):
        check_floating(x, "ActNorm")
        event = (None,) * (self.forward_min_event_ndims - 1) + (self._loc.shape[-1],)
        check_event(x, event, "ActNorm")

    def _forward(self, x):
        self._check(x)
        return x * tf.exp(self._log_scale) + self._loc

    def _inverse(self, y):
        self._check(y)
        return (y - self._loc) * tf.exp(-self._log_scale)

    def _forward_log_det_jacobian(self, x):
        ndims = self.forward_min_event_ndims
        positions = event_size(x, ndims) // x.shape[-1]
        return tf.reduce_sum(self._log_scale) * tf.cast(positions, self.dtype)

    def _inverse_log_det_jacobian(self, y):
        return -self._forward_log_det_jacobian(y)
