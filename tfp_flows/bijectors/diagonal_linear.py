"""Diagonal linear map: the cheap end of the linear family."""

from __future__ import annotations

import tensorflow as tf

from tfp_flows.bijectors._linear import Linear


class DiagonalLinear(Linear):
    """Normalizing map ``z = exp(log_scale) * x + shift``, elementwise over the last axis.

    Inverse (normalizing) and forward (sampling): O(d) a row.
    log|det J| of the inverse: ``P * sum(log_scale)``, O(d), with ``P`` the number
    of vectors in one event (1 for vectors, the pixels of ``[H, W, C]`` images).

    Examples:
        >>> import numpy as np
        >>> b = DiagonalLinear(np.log([2.0, 4.0]), shift=[1.0, 0.0])
        >>> b.inverse(np.ones((1, 2))).numpy()
        array([[3., 4.]])
        >>> b.forward([[3.0, 4.0]]).numpy()
        array([[1., 1.]])

    Args:
        log_scale: ``[d]``.
        shift: ``[d]``.
        event_ndims: 1 for vectors, 3 for the channels of ``[H, W, C]`` images.
        parameters: a subclass's ``dict(locals())`` (`ActNorm`).
    """

    def __init__(self, log_scale, shift, event_ndims: int = 1, validate_args: bool = False,
                 name: str = "DiagonalLinear", parameters: dict | None = None):
        parameters = dict(locals()) if parameters is None else parameters
        super().__init__({"log_scale": (log_scale, 1)}, shift, event_ndims=event_ndims,
                         validate_args=validate_args, parameters=parameters, name=name)

    def _matmul(self, x):
        return x * tf.exp(self._log_scale)

    def _solve(self, z):
        return z * tf.exp(-self._log_scale)

    def _log_abs_det(self):
        return tf.reduce_sum(self._log_scale)
