"""Multiscale factor-out with an optional learned prior (Glow's split)."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.bijectors._base import inverse_and_log_det
from tfp_flows.bijectors._coupling import Coupling
from tfp_flows.bijectors.affine_coupling import AffineTransform
from tfp_flows.bijectors.partitions import HalfSplit


class FactorOut(Coupling):
    """Half of the channels leave the flow; the other half goes through ``inner``.

    Normalizing direction, for ``x = [x_keep, x_out]`` split in channel halves::

        z_keep = inner^{-1}(x_keep)
        z_out  = (x_out - mu(x_keep)) * exp(-log_sigma(x_keep))   # learned prior
        z      = [z_keep, z_out]

    That is an affine coupling (split, conditioner ``prior`` on ``x_keep``, merge:
    the `Coupling` template with `HalfSplit` and `AffineTransform`) whose kept half
    then goes through ``inner``. With ``prior=None``, ``z_out = x_out`` (the
    standard-normal base takes it as is). The Jacobian is block triangular, so
    ``log|det J| = log|det J_inner| - sum(log_sigma)``; the output has the input's
    shape, so a whole multiscale stack is one bijector and the base stays N(0, I).

    Cost: that of ``inner`` plus one prior call, O(size of x_out) for the rest.

    Kingma & Dhariwal, "Glow", arXiv:1807.03039 (split prior, their code);
    Dinh et al., "Real NVP", arXiv:1605.08803, section 3.6 (factor-out).

    Examples:
        >>> import numpy as np
        >>> b = FactorOut(prior=lambda x_keep: tf.concat([x_keep, 0 * x_keep], -1),
        ...               event_ndims=1)
        >>> b.inverse([[1.0, 3.0]]).numpy()  # z_out = x_out - x_keep
        array([[1., 2.]], dtype=float32)

    Args:
        inner: bijector applied to the kept half (deeper levels), or None.
        prior: callable ``x_keep -> [mu, raw_log_sigma]`` concatenated on the last
            axis (or ``(x_keep, context) -> ...`` when a context is given), or None.
        context: optional tensor for the prior.
        event_ndims: 3 for images (channels are the last axis), 1 for vectors.
        log_scale_bound: bound ``c`` of ``log_sigma = c tanh(raw / c)``.
    """

    num_params = 2

    def __init__(self, inner: tfp.bijectors.Bijector | None = None, prior: Callable | None = None,
                 context=None, event_ndims: int = 3, log_scale_bound: float = 2.0,
                 validate_args: bool = False, name: str = "FactorOut"):
        parameters = dict(locals())
        self._inner = inner
        self._transform = AffineTransform(log_scale_bound)
        super().__init__(prior, HalfSplit(), context, event_ndims, validate_args, name, parameters)

    def _check_conditioner(self, prior):
        if prior is not None:
            super()._check_conditioner(prior)

    def _split(self, x):
        channels = x.shape[-1]
        if channels is None or channels < 2:
            raise ValueError(f"FactorOut: expected at least 2 channels on the last axis; "
                             f"got shape {tuple(x.shape)}.")
        return super()._split(x)

    def _map_b(self, x_a, x_b, direction):
        if self._conditioner is None:  # no prior: the base N(0, I) takes x_out as it is
            return x_b, self.sum_b(tf.zeros_like(x_b))
        return super()._map_b(x_a, x_b, direction)

    def _forward_and_log_det(self, z):
        z_keep, z_out = self._split(z)
        if self._inner is None:
            x_keep, inner_log_det = z_keep, 0.0
        else:
            x_keep = self._inner.forward(z_keep)
            inner_log_det = self._inner.forward_log_det_jacobian(
                z_keep, event_ndims=self.forward_min_event_ndims)
        x_out, log_det = self._map_b(x_keep, z_out, self.forward_b)
        return self.partition.merge(x_keep, x_out), inner_log_det + log_det

    def _inverse_and_log_det(self, x):
        x_keep, x_out = self._split(x)
        if self._inner is None:
            z_keep, inner_log_det = x_keep, 0.0
        else:
            z_keep, inner_log_det = inverse_and_log_det(self._inner, x_keep)
        z_out, log_det = self._map_b(x_keep, x_out, self.inverse_b)
        return self.partition.merge(z_keep, z_out), inner_log_det + log_det
