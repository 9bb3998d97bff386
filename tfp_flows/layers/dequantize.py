"""Uniform dequantization of discrete data (pixels)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.layers.base import FlowLayer

tfb = tfp.bijectors

RENAMED_LEVELS = ("levels was renamed num_values (the number of discrete values per dimension, "
                  "e.g. 256)")


def reject_unknown_kwargs(where: str, kwargs: dict) -> None:
    """TypeError for keywords that ``where`` does not take; for the old ``levels``, its new name.

    The builders take ``**kwargs`` only to say this: ``levels`` was renamed ``num_values``
    (``num_levels`` is a multiscale flow's number of scales, a different thing).
    """
    if "levels" in kwargs:
        raise TypeError(f"{where}: {RENAMED_LEVELS}; got levels={kwargs['levels']!r}.")
    if kwargs:
        raise TypeError(f"{where}() got an unexpected keyword argument {next(iter(kwargs))!r}")


@keras.saving.register_keras_serializable(package="tfp_flows")
class Dequantize(FlowLayer):
    """Maps data ``k`` in ``{0, ..., n - 1}`` to ``v = (k + u) / n - 0.5`` in ``[-0.5, 0.5)``.

    ``n`` is ``num_values``, the number of discrete values per dimension (256 for
    8-bit pixels). The log-det ``-D log(n)`` turns the density of ``v`` into a density of
    ``k + u`` in data units, and ``log P(k) >= E_u[log p(k + u)]`` with
    ``u ~ U(0, 1)^D`` (Theis et al., arXiv:1511.01844; Ho et al., arXiv:1902.00275):
    the bound behind the bits/dim that papers report.

    Training draws ``u`` from the layer's Keras `SeedGenerator` (Philox, so it
    compiles under XLA). Evaluation takes ``u`` from the caller (``noise=``, fresh
    seeded draws: `tfp_flows.Flow.log_prob`); without either, ``u = 1/2``, the
    deterministic midpoint of `tfp_flows.Flow.score`.

    Its bijector is the continuous part, ``k + u -> v``, for sampling and TFP use.

    Args:
        num_values: number of discrete values per dimension, ``2 ** n_bits`` for
            ``n_bits`` images (formerly ``levels``; a ``.keras`` file that says ``levels``
            still loads).
        seed: seed of the training noise.

    Raises:
        ValueError: ``num_values < 2``.
        TypeError: the old argument name ``levels``.

    Examples:
        >>> import numpy as np
        >>> layer = Dequantize(num_values=17, seed=0)
        >>> z, log_det = layer(np.array([[0, 16]]))
        >>> bool(np.all(np.abs(z) <= 0.5))  # pixels k + u scaled to [-1/2, 1/2]
        True
    """

    takes_noise = True  # LayerChain hands it the evaluation noise

    def __init__(self, num_values: int = 256, seed: int | None = None, **kwargs):
        if "levels" in kwargs:
            raise TypeError(f"Dequantize: {RENAMED_LEVELS}; got levels={kwargs['levels']!r}.")
        super().__init__(**kwargs)
        if int(num_values) < 2:
            raise ValueError(f"Dequantize: expected num_values >= 2; got {num_values}.")
        self.num_values = int(num_values)
        self.seed = seed
        self.noise = keras.random.SeedGenerator(seed)

    def bijector(self, context=None, training=False):
        dtype = self.compute_dtype
        return tfb.Chain([tfb.Scale(tf.constant(self.num_values, dtype)),
                          tfb.Shift(tf.constant(0.5, dtype))])

    def call(self, x, context=None, training=False, noise=None):
        x = tf.cast(x, self.compute_dtype)
        if noise is not None:
            x = x + tf.cast(noise, x.dtype)
        elif training:
            x = x + self._uniform_noise(tf.shape(x), x.dtype)
        else:
            x = x + 0.5
        size = int(np.prod(x.shape[1:]))
        log_det = -size * np.log(self.num_values) * tf.ones(tf.shape(x)[:1], x.dtype)
        return x / self.num_values - 0.5, log_det

    def _uniform_noise(self, shape, dtype):
        """U(0, 1) noise, Philox from the layer's seed state. `keras.random.uniform` lets
        TensorFlow pick the algorithm at run time, which XLA compiles 25x slower
        (about 1 ms for 4096 numbers on a CPU, a twentieth of a digits Glow step)."""
        seed = tf.cast(tf.math.floormod(self.noise.next(), 2**31 - 1), tf.int32)
        return tf.random.stateless_uniform(shape, seed=seed, dtype=dtype, alg="philox")

    def get_config(self):
        return {**super().get_config(), "num_values": self.num_values, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "levels" in config:  # saved before the rename
            config["num_values"] = config.pop("levels")
        return cls(**config)
