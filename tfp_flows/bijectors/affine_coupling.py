"""Affine coupling (RealNVP, Glow)."""

from __future__ import annotations

import tensorflow as tf

from tfp_flows.bijectors._coupling import Coupling, soft_bound


class AffineTransform:
    """``y = x * exp(s) + t`` elementwise, ``s = c tanh(r / c)``; params ``(t, r)``.

    ``forward(x, params)`` / ``inverse(y, params)`` return ``(value, elementwise
    log-det of that direction)``. Zero parameters are the identity.

    Args:
        log_scale_bound: ``c > 0``; default 2.
    """

    num_params = 2

    def __init__(self, log_scale_bound: float = 2.0):
        if not float(log_scale_bound) > 0:
            raise ValueError(f"AffineTransform: expected log_scale_bound > 0; "
                             f"got {log_scale_bound!r}.")
        self.log_scale_bound = float(log_scale_bound)

    def forward(self, x, params):
        shift, raw = params
        log_scale = soft_bound(raw, self.log_scale_bound)
        return x * tf.exp(log_scale) + shift, log_scale

    def inverse(self, y, params):
        shift, raw = params
        log_scale = soft_bound(raw, self.log_scale_bound)
        return (y - shift) * tf.exp(-log_scale), -log_scale

    def get_config(self) -> dict:
        return {"class_name": "AffineTransform", "log_scale_bound": self.log_scale_bound}


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
        self._transform = AffineTransform(log_scale_bound)
        super().__init__(conditioner, partition, context, event_ndims, validate_args, name,
                         parameters)

    def _forward_b(self, x_b, params):
        return self._transform.forward(x_b, params)

    def _inverse_b(self, y_b, params):
        return self._transform.inverse(y_b, params)
