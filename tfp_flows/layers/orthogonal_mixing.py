"""Keras layer for `bijectors.OrthogonalMixing`: a fixed, seeded rotation of the last axis."""

from __future__ import annotations

import keras

from tfp_flows import bijectors
from tfp_flows.bijectors.orthogonal_mixing import random_orthogonal
from tfp_flows.layers.linear import SeededLinear


@keras.saving.register_keras_serializable(package="tfp_flows")
class OrthogonalMixing(SeededLinear):
    """Normalizing direction ``z = W x`` over the last axis, ``W`` a fixed Haar-random
    orthogonal matrix drawn from ``seed``; log-det 0, nothing trained.

    ``W`` is a non-trainable weight, so it is saved, loaded and exported with the model.
    See `tfp_flows.bijectors.OrthogonalMixing`.

    Args:
        seed: seed of ``W`` (None: random).

    Examples:
        >>> import numpy as np
        >>> layer = OrthogonalMixing(seed=0)
        >>> x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
        >>> z, log_det = layer(x)  # normalizing: x -> z and log|det dz/dx|
        >>> tuple(z.shape)
        (4, 3)
        >>> np.allclose(layer.bijector().forward(z), x, atol=1e-4)  # sampling goes back
        True
    """

    def build(self, input_shape):
        size = self._size(input_shape)
        self.matrix = self._constant("matrix", random_orthogonal(size, self.seed), False)

    def bijector(self, context=None, training=False):
        return bijectors.OrthogonalMixing(self.matrix)
