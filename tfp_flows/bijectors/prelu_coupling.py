"""PReLU coupling: a piecewise-linear, data-dependent leaky ReLU on ``x_b``."""

from __future__ import annotations

import tensorflow as tf

from tfp_flows.bijectors._coupling import Coupling, soft_bound


class PReLUCoupling(Coupling):
    """``y_b = x_b`` where ``x_b >= 0``, ``alpha * x_b`` elsewhere, then ``+ t``.

    ``alpha = exp(c tanh(r / c))`` per element, with ``r`` (and the shift ``t``)
    from the conditioner: ``alpha`` lies in ``[exp(-c), exp(c)]``, so it can never
    reach 0 and the map stays invertible and monotone. A zero conditioner output
    (``alpha = 1``, ``t = 0``) is the identity.

    Forward (sampling): O(size of x_b) after one conditioner call.
    Inverse (normalizing): ``u = y_b - t``; ``x_b = u`` where ``u >= 0``, ``u / alpha`` elsewhere.
    log|det J| of the forward: ``sum over negative x_b of log alpha``, O(size of x_b).

    Args: those of `Coupling`, and
        with_shift: add the conditioner's shift ``t`` after the PReLU (default True);
            without it the conditioner returns only ``r``.
        log_slope_bound: ``c > 0``; default 2.

    Raises:
        ValueError: ``log_slope_bound <= 0``.

    Examples:
        >>> import tensorflow as tf
        >>> params = lambda x_a: tf.concat([tf.zeros_like(x_a), tf.ones_like(x_a)], -1)
        >>> bijector = PReLUCoupling(params)  # t = 0, r = 1: alpha = exp(2 tanh(1/2))
        >>> [round(float(v), 4) for v in bijector.forward(tf.constant([[1.0, -1.0]]))[0]]
        [1.0, -2.5199]
    """

    def __init__(self, conditioner, partition=None, context=None, event_ndims: int = 1,
                 with_shift: bool = True, log_slope_bound: float = 2.0,
                 validate_args: bool = False, name: str = "PReLUCoupling"):
        parameters = dict(locals())
        if not log_slope_bound > 0:
            raise ValueError(f"PReLUCoupling: expected log_slope_bound > 0; got {log_slope_bound}.")
        self._with_shift = bool(with_shift)
        self._bound = float(log_slope_bound)
        self.num_params = 2 if self._with_shift else 1
        super().__init__(conditioner, partition, context, event_ndims, validate_args, name,
                         parameters)

    def _slope_and_shift(self, params):
        log_slope = soft_bound(params[-1], self._bound)
        shift = params[0] if self._with_shift else 0.0
        return log_slope, shift

    def forward_b(self, x_b, params):
        log_slope, shift = self._slope_and_shift(params)
        negative = x_b < 0
        y_b = tf.where(negative, x_b * tf.exp(log_slope), x_b) + shift
        return y_b, tf.where(negative, log_slope, tf.zeros_like(log_slope))

    def inverse_b(self, y_b, params):
        log_slope, shift = self._slope_and_shift(params)
        u = y_b - shift
        negative = u < 0
        x_b = tf.where(negative, u * tf.exp(-log_slope), u)
        return x_b, tf.where(negative, -log_slope, tf.zeros_like(log_slope))
