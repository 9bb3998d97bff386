"""Keras layers for the dense, triangular and diagonal linear maps, and the base of the
layers that start from a seeded random rotation."""

from __future__ import annotations

import keras

from tfp_flows import bijectors
from tfp_flows.layers.base import FlowLayer


class SeededLinear(FlowLayer):
    """Base of the layers whose ``[d, d]`` matrix over the last axis starts from a seeded
    random rotation (`LULinear`, `Invertible1x1Conv`, `OrthogonalMixing`).

    Subclasses build their weights with ``_constant`` from ``_size(input_shape)``.

    Args:
        seed: seed of the initial rotation (None: random).
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def _size(self, input_shape):
        size = input_shape[-1]
        if size is None:
            raise ValueError(f"{type(self).__name__}: expected a known last axis; "
                             f"got input shape {tuple(input_shape)}.")
        return size

    def _constant(self, name, value, trainable=True, dtype=None):
        return self.add_weight(name=name, shape=value.shape, trainable=trainable,
                               dtype=dtype or self.variable_dtype,
                               initializer=keras.initializers.Constant(value))

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


class _Linear(FlowLayer):
    def _size(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__}: expected vector inputs (batch, d); "
                             f"got input shape {tuple(input_shape)}.")
        return input_shape[-1]

    def _weight(self, name, shape, initializer):
        return self.add_weight(name=name, shape=shape, initializer=initializer)


@keras.saving.register_keras_serializable(package="tfp_flows")
class FullLinear(_Linear):
    """Owns a dense ``W`` (initialised orthogonal) and a shift; see `bijectors.FullLinear`.

    Examples:
        >>> import numpy as np
        >>> layer = FullLinear()
        >>> x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
        >>> z, log_det = layer(x)  # normalizing: x -> z and log|det dz/dx|
        >>> tuple(z.shape)
        (4, 3)
        >>> np.allclose(layer.bijector().forward(z), x, atol=1e-4)  # sampling goes back
        True
    """

    def build(self, input_shape):
        size = self._size(input_shape)
        self.matrix = self._weight("matrix", (size, size), keras.initializers.Orthogonal())
        self.shift = self._weight("shift", (size,), "zeros")

    def bijector(self, context=None, training=False):
        return bijectors.FullLinear(self.matrix, self.shift)


@keras.saving.register_keras_serializable(package="tfp_flows")
class TriangularLinear(_Linear):
    """Owns a lower-triangular ``T`` (identity at start) and a shift; see
    `bijectors.TriangularLinear`.

    Examples:
        >>> import numpy as np
        >>> layer = TriangularLinear()
        >>> x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
        >>> z, log_det = layer(x)  # normalizing: x -> z and log|det dz/dx|
        >>> tuple(z.shape)
        (4, 3)
        >>> np.allclose(layer.bijector().forward(z), x, atol=1e-4)  # sampling goes back
        True
    """

    def build(self, input_shape):
        size = self._size(input_shape)
        self.lower = self._weight("lower", (size, size), "zeros")
        self.log_diagonal = self._weight("log_diagonal", (size,), "zeros")
        self.shift = self._weight("shift", (size,), "zeros")

    def bijector(self, context=None, training=False):
        return bijectors.TriangularLinear(self.lower, self.log_diagonal, self.shift)


@keras.saving.register_keras_serializable(package="tfp_flows")
class DiagonalLinear(_Linear):
    """Owns a log-scale and a shift (identity at start); see `bijectors.DiagonalLinear`.

    Examples:
        >>> import numpy as np
        >>> layer = DiagonalLinear()
        >>> x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
        >>> z, log_det = layer(x)  # normalizing: x -> z and log|det dz/dx|
        >>> tuple(z.shape)
        (4, 3)
        >>> np.allclose(layer.bijector().forward(z), x, atol=1e-4)  # sampling goes back
        True
    """

    def build(self, input_shape):
        size = self._size(input_shape)
        self.log_scale = self._weight("log_scale", (size,), "zeros")
        self.shift = self._weight("shift", (size,), "zeros")

    def bijector(self, context=None, training=False):
        return bijectors.DiagonalLinear(self.log_scale, self.shift)
