"""Additive coupling (NICE)."""

from __future__ import annotations

import tensorflow as tf

from tfp_flows.bijectors._coupling import Coupling


class AdditiveCoupling(Coupling):
    """``y_b = x_b + t`` with ``t = conditioner(x_a)``: volume preserving.

    Forward and inverse: O(size of x_b) after one conditioner call.
    log|det J|: exactly 0 (the Jacobian is unit triangular, not the identity).

    Dinh et al., "NICE", arXiv:1410.8516.

    Args:
        conditioner: maps ``x_a`` (and the context) to ``t``, shaped like ``x_b``.
        partition, context, event_ndims, validate_args, name: as in `Coupling`.

    Examples:
        >>> import tensorflow as tf
        >>> shift = lambda x_a: tf.ones_like(x_a)  # t = 1 whatever x_a
        >>> bijector = AdditiveCoupling(shift)
        >>> bijector.forward(tf.constant([[1.0, 2.0]])).numpy()
        array([[1., 3.]], dtype=float32)
        >>> float(bijector.forward_log_det_jacobian(tf.constant([[1.0, 2.0]]), 1)[0])
        0.0
    """

    num_params = 1

    def __init__(self, conditioner, partition=None, context=None, event_ndims: int = 1,
                 validate_args: bool = False, name: str = "AdditiveCoupling"):
        parameters = dict(locals())
        super().__init__(conditioner, partition, context, event_ndims, validate_args, name,
                         parameters)

    def forward_b(self, x_b, params):
        return x_b + params[0], tf.zeros_like(x_b)

    def inverse_b(self, y_b, params):
        return y_b - params[0], tf.zeros_like(y_b)
