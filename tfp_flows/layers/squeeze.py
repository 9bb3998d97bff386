"""Keras layers that reshape image events: `Squeeze`, `Unsqueeze` and `Permute`."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow_probability as tfp

from tfp_flows import bijectors
from tfp_flows.layers.base import FlowLayer

tfb = tfp.bijectors


@keras.saving.register_keras_serializable(package="tfp_flows")
class Squeeze(FlowLayer):
    """Normalizing direction: ``[H, W, C] -> [H/2, W/2, 4C]`` (space-to-depth); log-det 0.

    Examples:
        >>> import numpy as np
        >>> layer = Squeeze()
        >>> x = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype("float32")
        >>> z, log_det = layer(x)  # normalizing: x -> z and log|det dz/dx|
        >>> tuple(z.shape)
        (2, 2, 2, 12)
        >>> np.allclose(layer.bijector().forward(z), x, atol=1e-4)  # sampling goes back
        True
    """

    def build(self, input_shape):
        height, width = input_shape[-3], input_shape[-2]
        if len(input_shape) != 4 or height % 2 or width % 2:
            raise ValueError(f"Squeeze: expected images (batch, H, W, C) with even H and W; "
                             f"got input shape {tuple(input_shape)}.")

    def bijector(self, context=None, training=False):
        return tfb.Invert(bijectors.Squeeze())

    def compute_output_shape(self, input_shape):
        *batch, height, width, channels = input_shape
        return (*batch, height // 2, width // 2, 4 * channels)


@keras.saving.register_keras_serializable(package="tfp_flows")
class Unsqueeze(FlowLayer):
    """Normalizing direction: ``[H, W, 4C] -> [2H, 2W, C]`` (depth-to-space); log-det 0.

    Examples:
        >>> import numpy as np
        >>> layer = Unsqueeze()
        >>> x = np.random.default_rng(0).normal(size=(2, 2, 2, 12)).astype("float32")
        >>> z, log_det = layer(x)  # normalizing: x -> z and log|det dz/dx|
        >>> tuple(z.shape)
        (2, 4, 4, 3)
        >>> np.allclose(layer.bijector().forward(z), x, atol=1e-4)  # sampling goes back
        True
    """

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] % 4:
            raise ValueError(f"Unsqueeze: expected images (batch, H, W, C) with C divisible "
                             f"by 4; got input shape {tuple(input_shape)}.")

    def bijector(self, context=None, training=False):
        return bijectors.Squeeze()

    def compute_output_shape(self, input_shape):
        *batch, height, width, channels = input_shape
        return (*batch, 2 * height, 2 * width, channels // 4)


@keras.saving.register_keras_serializable(package="tfp_flows")
class Permute(FlowLayer):
    """A fixed permutation of the last axis (reversal by default); log-det 0.

    Args:
        seed: None reverses the axis; an int draws a random permutation.

    Examples:
        >>> import numpy as np
        >>> layer = Permute(seed=0)
        >>> x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
        >>> z, log_det = layer(x)  # normalizing: x -> z and log|det dz/dx|
        >>> tuple(z.shape)
        (4, 3)
        >>> np.allclose(layer.bijector().forward(z), x, atol=1e-4)  # sampling goes back
        True
    """

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def build(self, input_shape):
        size = input_shape[-1]
        order = (np.arange(size)[::-1] if self.seed is None
                 else np.random.default_rng(self.seed).permutation(size))
        self.permutation = self.add_weight(name="permutation", shape=(size,), dtype="int32",
                                           trainable=False,
                                           initializer=keras.initializers.Constant(order))

    def bijector(self, context=None, training=False):
        return tfb.Permute(self.permutation, axis=-1)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
