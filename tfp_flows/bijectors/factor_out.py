"""Multiscale factor-out with an optional learned prior (Glow's split)."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.bijectors._base import FlowBijector, check_floating, inverse_and_log_det
from tfp_flows.bijectors._coupling import soft_bound


class FactorOut(FlowBijector):
    """Half of the channels leave the flow; the other half goes through ``inner``.

    Normalizing direction, for ``x = [x_keep, x_out]`` split in channel halves::

        z_keep = inner^{-1}(x_keep)
        z_out  = (x_out - mu(x_keep)) * exp(-log_sigma(x_keep))   # learned prior
        z      = [z_keep, z_out]

    With ``prior=None``, ``z_out = x_out`` (the standard-normal base takes it as is).
    The Jacobian is block triangular, so
    ``log|det J| = log|det J_inner| - sum(log_sigma)``; the output has the input's
    shape, so a whole multiscale stack is one bijector and the base stays N(0, I).

    Cost: that of ``inner`` plus one prior call, O(size of x_out) for the rest.

    Kingma & Dhariwal, "Glow", arXiv:1807.03039 (split prior, their code);
    Dinh et al., "Real NVP", arXiv:1605.08803, section 3.6 (factor-out).

    Args:
        inner: bijector applied to the kept half (deeper levels), or None.
        prior: callable ``x_keep -> [mu, raw_log_sigma]`` concatenated on the last
            axis (or ``(x_keep, context) -> ...`` when a context is given), or None.
        context: optional tensor for the prior.
        event_ndims: 3 for images (channels are the last axis), 1 for vectors.
        log_scale_bound: bound ``c`` of ``log_sigma = c tanh(raw / c)``.
    """

    def __init__(self, inner: tfp.bijectors.Bijector | None = None, prior: Callable | None = None,
                 context=None, event_ndims: int = 3, log_scale_bound: float = 2.0,
                 validate_args: bool = False, name: str = "FactorOut"):
        parameters = dict(locals())
        self._inner = inner
        self._prior = prior
        self._context = context
        self._bound = float(log_scale_bound)
        super().__init__(forward_min_event_ndims=event_ndims, validate_args=validate_args,
                         parameters=parameters, name=name)

    def _split(self, x):
        check_floating(x, "FactorOut")
        channels = x.shape[-1]
        if channels is None or channels < 2:
            raise ValueError(f"FactorOut: expected at least 2 channels on the last axis; "
                             f"got shape {tuple(x.shape)}.")
        return tf.split(x, [channels // 2, channels - channels // 2], axis=-1)

    def _prior_params(self, x_keep, x_out):
        if self._prior is None:
            return 0.0, tf.zeros_like(x_out)
        theta = self._prior(x_keep) if self._context is None else self._prior(x_keep, self._context)
        theta = tf.cast(theta, x_out.dtype)
        if theta.shape[-1] != 2 * x_out.shape[-1]:
            raise ValueError(f"FactorOut: expected the prior to return {2 * x_out.shape[-1]} "
                             f"values on the last axis (mu and log sigma); got {tuple(theta.shape)}.")
        loc, raw = tf.split(theta, 2, axis=-1)
        return loc, soft_bound(raw, self._bound)

    def _sum(self, values):
        return tf.reduce_sum(values, axis=list(range(-self.forward_min_event_ndims, 0)))

    def _inner_forward(self, z_keep):
        if self._inner is None:
            return z_keep, 0.0
        x_keep = self._inner.forward(z_keep)
        return x_keep, self._inner.forward_log_det_jacobian(
            z_keep, event_ndims=self.forward_min_event_ndims)

    def _forward_and_log_det(self, z):
        z_keep, z_out = self._split(z)
        x_keep, inner_log_det = self._inner_forward(z_keep)
        loc, log_sigma = self._prior_params(x_keep, z_out)
        x_out = z_out * tf.exp(log_sigma) + loc
        return tf.concat([x_keep, x_out], axis=-1), inner_log_det + self._sum(log_sigma)

    def _inverse_and_log_det(self, x):
        x_keep, x_out = self._split(x)
        if self._inner is None:
            z_keep, inner_log_det = x_keep, 0.0
        else:
            z_keep, inner_log_det = inverse_and_log_det(self._inner, x_keep)
        loc, log_sigma = self._prior_params(x_keep, x_out)
        z_out = (x_out - loc) * tf.exp(-log_sigma)
        return tf.concat([z_keep, z_out], axis=-1), inner_log_det - self._sum(log_sigma)

    def _forward(self, z):
        return self._forward_and_log_det(z)[0]

    def _forward_log_det_jacobian(self, z):
        return self._forward_and_log_det(z)[1]

    def _inverse(self, x):
        return self._inverse_and_log_det(x)[0]

    def _inverse_log_det_jacobian(self, x):
        return self._inverse_and_log_det(x)[1]
