"""Keras layers that turn images into patch tokens and back: `Patchify`, `Unpatchify`."""

from __future__ import annotations

import keras
import tensorflow_probability as tfp

from tfp_flows import bijectors
from tfp_flows.layers.base import FlowLayer

tfb = tfp.bijectors


@keras.saving.register_keras_serializable(package="tfp_flows")
class Patchify(FlowLayer):
    """Normalizing direction: ``[H, W, C] -> [(H/p)(W/p), p*p*C]`` tokens; log-det 0.

    See `tfp_flows.bijectors.Patchify` for the token layout.

    Args:
        patch_size: side ``p`` of the square patches; divides ``H`` and ``W``.

    Raises:
        ValueError: ``patch_size < 1``, or inputs that are not images ``(batch, H, W, C)``.

    Examples:
        >>> import numpy as np
        >>> z, log_det = Patchify(2)(np.zeros((1, 4, 4, 3), np.float32))
        >>> tuple(z.shape)  # 4 tokens of 2 * 2 * 3 values
        (1, 4, 12)
    """

    def __init__(self, patch_size: int, **kwargs):
        super().__init__(**kwargs)
        if int(patch_size) < 1:
            raise ValueError(f"Patchify: expected patch_size >= 1; got {patch_size}.")
        self.patch_size = int(patch_size)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"Patchify: expected images (batch, H, W, C); got input shape "
                             f"{tuple(input_shape)}.")
        self.image_shape = bijectors.Patchify(input_shape[1:], self.patch_size).image_shape

    def bijector(self, context=None, training=False):
        return tfb.Invert(bijectors.Patchify(self.image_shape, self.patch_size))

    def compute_output_shape(self, input_shape):
        tokens = bijectors.Patchify(input_shape[1:], self.patch_size).token_shape
        return (input_shape[0], *tokens)

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size}


@keras.saving.register_keras_serializable(package="tfp_flows")
class Unpatchify(FlowLayer):
    """Normalizing direction: tokens ``[(H/p)(W/p), p*p*C] -> [H, W, C]``; log-det 0.

    The inverse of `Patchify`, so that a token flow's latent has the image's shape.

    Args:
        image_shape: ``(H, W, C)`` of the images.
        patch_size: side ``p`` of the square patches.

    Examples:
        >>> import numpy as np
        >>> z, log_det = Unpatchify((4, 4, 3), 2)(np.zeros((1, 4, 12), np.float32))
        >>> tuple(z.shape)
        (1, 4, 4, 3)
    """

    def __init__(self, image_shape, patch_size: int, **kwargs):
        super().__init__(**kwargs)
        patchify = bijectors.Patchify(image_shape, patch_size)
        self.image_shape = patchify.image_shape
        self.patch_size = patchify.patch_size
        self.token_shape = patchify.token_shape

    def build(self, input_shape):
        if tuple(input_shape[1:]) != self.token_shape:
            raise ValueError(f"Unpatchify: expected tokens (batch, "
                             f"{', '.join(map(str, self.token_shape))}) for images "
                             f"{self.image_shape} in {self.patch_size}x{self.patch_size} patches; "
                             f"got input shape {tuple(input_shape)}.")

    def bijector(self, context=None, training=False):
        return bijectors.Patchify(self.image_shape, self.patch_size)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.image_shape)

    def get_config(self):
        return {**super().get_config(), "image_shape": list(self.image_shape),
                "patch_size": self.patch_size}
