"""Keras layer for `bijectors.OrthogonalMixing`: a fixed, seeded rotation of the last axis."""

from __future__ import annotations

import keras

from tfp_flows import bijectors
from tfp_flows.bijectors.orthogonal_mixing import random_orthogonal
from tfp_flows.layers.base import FlowLayer


@keras.saving.register_keras_serializable(package="tfp_flows")
class OrthogonalMixing(FlowLayer):
    """Normalizing direction ``z = W x`` over the last axis, ``W`` a fixed Haar-random
    orthogonal matrix drawn from ``seed``; log-det 0, nothing trained.

    ``W`` is a non-trainable weight, so it is saved, loaded and exported with the model.
    See `tfp_flows.bijectors.OrthogonalMixing`.

    Args:
        seed: seed of ``W`` (None: random).
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def build(self, input_shape):
        size = input_shape[-1]
        if size is None:
            raise ValueError(f"OrthogonalMixing: expected a known last axis; got input shape "
                             f"{tuple(input_shape)}.")
        self.matrix = self.add_weight(
            name="matrix", shape=(size, size), trainable=False, dtype=self.variable_dtype,
            initializer=keras.initializers.Constant(random_orthogonal(size, self.seed)))

    def bijector(self, context=None, training=False):
        return bijectors.OrthogonalMixing(self.matrix)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
