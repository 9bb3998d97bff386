"""Affine coupling (RealNVP, Glow)."""

from __future__ import annotations

import tensorflow as tf

from tfp_flows.bijectors._coupling import Coupling, soft_bound


class AffineCoupling(Coupling):
    """``y_b = x_b * exp(s) + t`` with ``(t, r) = conditioner(x_a)`` and ``s = c tanh(r / c)``.

    The log-scale is bounded smoothly by ``c = log_scale_bound`` so that no
    conditioner output can overflow ``exp`` (unbounded scales diverge under XLA).

    Forward (sampling): O(size of x_b) after one conditioner call.
    Inverse (normalizing): ``x_b = (y_b - t) * exp(-s)``, same cost.
    log|det J| of the forward: ``sum(s)``, O(size of x_b).

    Dinh et al., "Density estimation using Real NVP", arXiv:1605.08803.

    Args: those of `Coupling`, and
        log_scale_bound: ``c > 0``; default 2.
    """

    num_params = 2

    def __init__(self, conditioner, partition=None, context=None, event_ndims: int = 1,
                 log_scale_bound: float = 2.0, validate_args: bool = False,
                 name: str = "AffineCoupling"):
        parameters = dict(locals())
        if not log_scale_bound > 0:
            raise ValueError(f"AffineCoupling: expected log_scale_bound > 0; got {log_scale_bound}.")
        self._bound = float(log_scale_bound)
        super().__init__(conditioner, partition, context, event_ndims, validate_args, name,
                         parameters)

    def _forward_b(self, x_b, params):
        shift, raw = params
        log_scale = soft_bound(raw, self._bound)
        return x_b * tf.exp(log_scale) + shift, log_scale

    def _inverse_b(self, y_b, params):
        shift, raw = params
        log_scale = soft_bound(raw, self._bound)
        return (y_b - shift) * tf.exp(-log_scale), -log_scale
