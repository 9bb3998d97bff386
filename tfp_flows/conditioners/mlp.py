"""`MLP`: the conditioner for vector events."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfp_flows")
class MLP(keras.layers.Layer):
    """``theta = Dense_out(act(... act(Dense([x_a, context]))))`` for vector events.

    Cost: O(batch * sum of products of consecutive widths).

    Args:
        output_size: number of outputs (the coupling's parameters).
        hidden_units: widths of the hidden layers.
        activation: hidden activation (a Keras name).
        kernel_initializer: initializer of the hidden layers' kernels (a Keras name or
            object).
        output_initializer: initializer of the last layer's kernel.
    """

    def __init__(self, output_size: int, hidden_units=(64, 64), activation: str = "tanh",
                 kernel_initializer="glorot_uniform", output_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if int(output_size) < 1 or not hidden_units:
            raise ValueError(f"MLP: expected output_size >= 1 and at least one hidden layer; "
                             f"got output_size={output_size}, hidden_units={hidden_units}.")
        self.output_size = int(output_size)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.output_initializer = keras.initializers.get(output_initializer)
        self.hidden = [keras.layers.Dense(u, activation=activation,
                                          kernel_initializer=self.kernel_initializer,
                                          dtype=self.dtype_policy, name=f"dense_{i}")
                       for i, u in enumerate(self.hidden_units)]
        self.out = keras.layers.Dense(self.output_size, kernel_initializer=self.output_initializer,
                                      dtype=self.dtype_policy, name="out")

    def build(self, x_shape, context_shape=None):
        width = x_shape[-1] + (0 if context_shape is None else context_shape[-1])
        for layer in self.hidden:
            layer.build((None, width))
            width = layer.units
        self.out.build((None, width))

    def call(self, x, context=None):
        h = x if context is None else tf.concat([x, tf.cast(context, x.dtype)], axis=-1)
        for layer in self.hidden:
            h = layer(h)
        return self.out(h)

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size,
                "hidden_units": list(self.hidden_units), "activation": self.activation,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "output_initializer": keras.initializers.serialize(self.output_initializer)}
