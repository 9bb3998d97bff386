"""Gaussian noise augmentation for training (TarFlow's recipe): `GaussianNoise`."""

from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.layers.base import FlowLayer

tfb = tfp.bijectors


@keras.saving.register_keras_serializable(package="tfp_flows")
class GaussianNoise(FlowLayer):
    """Training: ``y = x + sigma * eps``, ``eps ~ N(0, I)``; otherwise ``y = x``. log-det 0.

    Not a bijection while training: it makes the flow a density of noisy data,
    ``p_sigma = p * N(0, sigma^2 I)``, which is smooth at the scale ``sigma`` however
    discrete the data are; TarFlow trains so and then denoises its samples with one
    score step, ``x + sigma^2 grad log p_sigma(x)`` (Tweedie's formula;
    `tfp_flows.models.denoise`). Evaluation and sampling see the identity, so
    ``log_prob`` of the trained flow is a density of clean data (for discrete data,
    after a `Dequantize` layer, still the uniform-dequantization bound: a bound for
    any density). Cost O(size of x).

    The noise is Philox from the layer's Keras ``SeedGenerator``, so it compiles under
    XLA. Put it before the first layer with weights (after `Dequantize`): then
    ``compile(backprop="inverse")`` accepts it (its noise is drawn once, never replayed).

    Zhai et al., "Normalizing Flows are Capable Generative Models" (TarFlow),
    arXiv:2412.06329, section 2.3.

    Args:
        noise_std: ``sigma >= 0``, in the units of the layer's input (a `Dequantize`
            layer's output ``v`` in ``[-0.5, 0.5)`` for images).
        seed: seed of the noise.

    Raises:
        ValueError: ``noise_std < 0``.

    Examples:
        >>> import numpy as np
        >>> layer = GaussianNoise(0.1, seed=0)
        >>> x = np.zeros((2, 3), np.float32)
        >>> float(np.abs(layer(x)[0]).max())  # evaluation: the identity
        0.0
        >>> bool(np.abs(layer(x, training=True)[0]).max() > 0)  # training: noisy data
        True
    """

    def __init__(self, noise_std: float = 0.05, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not float(noise_std) >= 0:
            raise ValueError(f"GaussianNoise: expected noise_std >= 0; got {noise_std!r}.")
        self.noise_std = float(noise_std)
        self.seed = seed
        self.noise = keras.random.SeedGenerator(seed)

    def bijector(self, context=None, training=False):
        return tfb.Identity()

    def call(self, x, context=None, training=False):
        x = tf.cast(x, self.compute_dtype)
        if training and self.noise_std > 0:
            seed = tf.cast(tf.math.floormod(self.noise.next(), 2**31 - 1), tf.int32)
            x = x + self.noise_std * tf.random.stateless_normal(tf.shape(x), seed=seed,
                                                                dtype=x.dtype, alg="philox")
        return x, tf.zeros(tf.shape(x)[:1], x.dtype)

    def get_config(self):
        return {**super().get_config(), "noise_std": self.noise_std, "seed": self.seed}
