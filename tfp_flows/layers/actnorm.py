"""Keras layer for `bijectors.ActNorm`, with Glow's data-dependent initialisation."""

from __future__ import annotations

import keras
import tensorflow as tf

from tfp_flows import bijectors
from tfp_flows.layers.base import FlowLayer


@keras.saving.register_keras_serializable(package="tfp_flows")
class ActNorm(FlowLayer):
    """Per-channel ``z = (x - loc) * exp(-log_scale)``, initialised from data.

    Its data initialisation sets ``loc`` to the batch mean and ``log_scale`` to the
    log of the batch standard deviation, floored at ``min_scale``, so that its output
    starts zero-mean and unit-variance per channel. `tfp_flows.Flow.fit` runs it before
    the first step (`tfp_flows.Flow.initialize`, which checks the data); a layer not
    initialised then does it on its first call with ``training=True`` (in a custom
    loop), in the normalizing direction. Sampling never initialises it. The flag is a
    saved weight: a reloaded model does not re-initialise.

    Args:
        min_scale: floor on the standard deviation used at initialisation.

    Raises:
        ValueError: ``min_scale <= 0``, or an input whose channel axis is unknown.

    Examples:
        >>> import numpy as np
        >>> layer = ActNorm()
        >>> x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
        >>> z, log_det = layer(x)  # normalizing: x -> z and log|det dz/dx|
        >>> tuple(z.shape)
        (4, 3)
        >>> np.allclose(layer.bijector().forward(z), x, atol=1e-4)  # sampling goes back
        True
    """

    def __init__(self, min_scale: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        if not min_scale > 0:
            raise ValueError(f"ActNorm: expected min_scale > 0; got {min_scale}.")
        self.min_scale = float(min_scale)
        # Whether the initialisation is known done in Python (read from the weight
        # outside a graph): a step traced after it holds no initialisation code.
        self._known_initialized = False

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(f"ActNorm: expected a known channel axis; got {tuple(input_shape)}.")
        self.event_ndims = len(input_shape) - 1
        self.loc = self.add_weight(name="loc", shape=(channels,), initializer="zeros",
                                   aggregation="mean")
        self.log_scale = self.add_weight(name="log_scale", shape=(channels,),
                                         initializer="zeros", aggregation="mean")
        self.initialized = self.add_weight(name="initialized", shape=(), initializer="zeros",
                                           trainable=False, aggregation="only_first_replica")

    def bijector(self, context=None, training=False):
        return bijectors.ActNorm(self.loc, self.log_scale, event_ndims=self.event_ndims)

    def data_initialized(self) -> bool:
        """Whether the data initialisation has run (the ``initialized`` weight), as last
        read outside a graph."""
        if tf.executing_eagerly() and self.built:
            self._known_initialized = float(self.initialized.numpy()) > 0.5
        return self._known_initialized

    def call(self, x, context=None, training=False):
        if training and not self.data_initialized():
            self._initialize_from(x)
        return super().call(x, context, training)

    def _initialize_from(self, x):
        """Data initialisation, done once: a select, so it compiles under XLA without a cond."""
        axes = list(range(x.shape.rank - 1))
        mean, variance = tf.nn.moments(tf.stop_gradient(x), axes)
        log_std = 0.5 * tf.math.log(tf.maximum(variance, self.min_scale ** 2))
        done = self.initialized > 0.5
        self.loc.assign(tf.where(done, self.loc, mean))
        self.log_scale.assign(tf.where(done, self.log_scale, log_std))
        self.initialized.assign(1.0)
        if tf.executing_eagerly():  # a step traced from now on needs no initialisation
            self._known_initialized = True

    def get_config(self):
        return {**super().get_config(), "min_scale": self.min_scale}
