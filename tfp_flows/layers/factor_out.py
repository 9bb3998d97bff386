"""Keras layer for `bijectors.FactorOut`: a level's exit, with the deeper levels inside."""

from __future__ import annotations

import keras
import tensorflow as tf

from tfp_flows import bijectors
from tfp_flows.layers.base import FlowLayer, LayerChain, build_sequence
from tfp_flows.layers.coupling import default_conditioner


@keras.saving.register_keras_serializable(package="tfp_flows")
class FactorOut(FlowLayer):
    """Half the channels leave for the base; ``inner`` layers transform the other half.

    With ``split_prior`` the leaving half gets a learned Gaussian prior
    conditioned on the kept half (and the context), written as an affine map so
    that the base stays N(0, I).

    Args:
        inner: flow layers for the kept half, in normalizing order (the deeper levels).
        split_prior: learn the prior of the leaving half (Glow) instead of N(0, I).
        hidden_units: widths of the prior's `MLP` (vector events).
        hidden_channels: width of the prior's `ConvNet` (image events).

    Examples:
        >>> import numpy as np
        >>> from tfp_flows import layers
        >>> layer = FactorOut(inner=[layers.AffineCoupling(hidden_units=(8,))], hidden_units=(8,))
        >>> z, log_det = layer(np.random.default_rng(0).normal(size=(4, 2, 2, 4)).astype("float32"))
        >>> tuple(z.shape), tuple(log_det.shape)
        ((4, 2, 2, 4), (4,))
    """

    def __init__(self, inner=(), split_prior: bool = True, hidden_units=(64, 64),
                 hidden_channels: int = 128, **kwargs):
        super().__init__(**kwargs)
        self.inner = [keras.saving.deserialize_keras_object(layer) if isinstance(layer, dict)
                      else layer for layer in inner]
        self.split_prior = bool(split_prior)
        self.hidden_units = tuple(hidden_units)
        self.hidden_channels = int(hidden_channels)
        self.prior = None

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None or channels < 2:
            raise ValueError(f"FactorOut: expected at least 2 channels; got {tuple(input_shape)}.")
        self.event_ndims = len(input_shape) - 1
        kept = tuple(input_shape[:-1]) + (channels // 2,)
        if build_sequence(self.inner, kept) != kept:
            raise ValueError(f"FactorOut: expected inner layers that keep the shape {kept}; "
                             f"they give {build_sequence(self.inner, kept)}.")
        if self.split_prior:
            self.prior = default_conditioner(self, self.event_ndims, 2 * (channels - channels // 2),
                                             self.hidden_units, self.hidden_channels, "prior")

    def sublayers(self):
        return list(self.inner)

    def backward(self, walker, y, grad_y, known=None):
        """Inverse backprop (`FlowLayer.backward`): the deeper levels on the kept half,
        then the split prior as a coupling step (``[x_keep, x_out] -> [x_keep, z_out]``),
        so no deeper level's activations are held while the prior's gradient is taken."""
        prior = bijectors.FactorOut(None, self.prior, walker.context, event_ndims=self.event_ndims)
        split, merge = prior.partition.split, prior.partition.merge
        (z_keep, z_out), (grad_keep, grad_out) = split(y), split(grad_y)
        x_keep, grad_keep = walker.backward(self.inner, z_keep, grad_keep,
                                            None if known is None else split(known)[0])
        if self.prior is None:  # the leaving half is the base's as it is
            return (merge(x_keep, z_out), merge(grad_keep, grad_out)) if known is None \
                else (known, None)
        # A known input has no gradient to pass on, but the prior's weights get theirs.
        grad_keep = tf.zeros_like(z_keep) if grad_keep is None else grad_keep
        return walker.coupling(prior, self.prior.trainable_variables, merge(x_keep, z_out),
                               merge(grad_keep, grad_out), known)

    def bijector(self, context=None, training=False):
        inner = LayerChain(self.inner, context, training, event_ndims=self.event_ndims)
        return bijectors.FactorOut(inner, self.prior, context, event_ndims=self.event_ndims)

    def get_config(self):
        return {**super().get_config(),
                "inner": [keras.saving.serialize_keras_object(layer) for layer in self.inner],
                "split_prior": self.split_prior, "hidden_units": list(self.hidden_units),
                "hidden_channels": self.hidden_channels}
