"""`MLP`: the conditioner for vector events."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

FAN_IN_UNIFORM = "fan_in_uniform"


def hidden_initializers(name, fan_in: int):
    """``(kernel, bias)`` initializers of a hidden layer with ``fan_in`` inputs.

    ``"fan_in_uniform"``: both ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (PyTorch's
    ``nn.Linear``); any other name: that Keras initializer for the kernel, zero biases.
    """
    if name == FAN_IN_UNIFORM:
        bound = 1.0 / math.sqrt(fan_in)
        return (keras.initializers.RandomUniform(-bound, bound),
                keras.initializers.RandomUniform(-bound, bound))
    return keras.initializers.get(name), keras.initializers.Zeros()


def hidden_activations(activation, hidden_units, owner: str) -> tuple:
    """One activation name per hidden layer: ``activation`` is one name for all of them
    or a sequence with one per layer (``("relu", "gelu")``: a smooth last layer)."""
    if isinstance(activation, str):
        names = (activation,) * len(hidden_units)
    else:
        names = tuple(activation)
        if len(names) != len(hidden_units) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{owner}: expected activation to be one name or a name for each "
                             f"of the {len(hidden_units)} hidden layers; got {activation!r}.")
    return names


def _kernel_initializer(name):
    """``"fan_in_uniform"``: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, PyTorch's ``nn.Linear``."""
    if name == FAN_IN_UNIFORM:
        return keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")
    return keras.initializers.get(name)


@keras.saving.register_keras_serializable(package="tfp_flows")
class MLP(keras.layers.Layer):
    """``theta = Dense_out(act(... act(Dense([x_a, context]))))`` for vector events.

    Defaults: ReLU, every hidden kernel and bias ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
    (PyTorch's ``nn.Linear``), a zero last layer (the flow starts at the identity).
    Random biases matter when the input is narrow: with zero biases and a 1-D input
    every first-layer unit has its kink at the same point, so the layer is two
    functions repeated, and Adam moves a kink by about the learning rate per step
    (the ablation in ``docs/ablation.md``: two moons, mean test NLL 0.40 -> 0.33).

    Cost: O(batch * sum of products of consecutive widths).

    Args:
        output_size: number of outputs (the coupling's parameters).
        hidden_units: widths of the hidden layers.
        activation: hidden activation: a Keras name, or one name per hidden layer.
        kernel_initializer: initializer of the hidden layers' kernels: a Keras name or
            object, or ``"fan_in_uniform"``.
        bias_initializer: initializer of the hidden layers' biases: a Keras name or
            object, or ``"fan_in_uniform"`` (the bound uses each layer's fan-in).
        output_initializer: initializer of the last layer's kernel (its bias is zero).

    Raises:
        ValueError: ``output_size < 1``, no hidden layer, or not one activation for each
            hidden layer.

    Examples:
        >>> import numpy as np
        >>> mlp = MLP(4, hidden_units=(8,))
        >>> mlp(np.ones((2, 3), np.float32)).numpy()  # the last layer starts at zero
        array([[0., 0., 0., 0.],
               [0., 0., 0., 0.]], dtype=float32)
    """

    def __init__(self, output_size: int, hidden_units=(64, 64), activation: str = "relu",
                 kernel_initializer=FAN_IN_UNIFORM, bias_initializer=FAN_IN_UNIFORM,
                 output_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if int(output_size) < 1 or not hidden_units:
            raise ValueError(f"MLP: expected output_size >= 1 and at least one hidden layer; "
                             f"got output_size={output_size}, hidden_units={hidden_units}.")
        self.output_size = int(output_size)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.activation = activation if isinstance(activation, str) else list(activation)
        activations = hidden_activations(activation, self.hidden_units, "MLP")
        self.kernel_initializer = _serializable(kernel_initializer)
        self.bias_initializer = _serializable(bias_initializer)
        self.output_initializer = _serializable(output_initializer)
        self.hidden = [keras.layers.Dense(u, activation=name,
                                          kernel_initializer=_kernel_initializer(
                                              self.kernel_initializer),
                                          dtype=self.dtype_policy, name=f"dense_{i}")
                       for i, (u, name) in enumerate(zip(self.hidden_units, activations))]
        self.out = keras.layers.Dense(self.output_size,
                                      kernel_initializer=_kernel_initializer(
                                          self.output_initializer),
                                      dtype=self.dtype_policy, name="out")

    def build(self, x_shape, context_shape=None):
        width = x_shape[-1] + (0 if context_shape is None else context_shape[-1])
        for layer in self.hidden:
            if self.bias_initializer == FAN_IN_UNIFORM:
                layer.bias_initializer = hidden_initializers(FAN_IN_UNIFORM, width)[1]
            else:
                layer.bias_initializer = keras.initializers.get(self.bias_initializer)
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
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer,
                "output_initializer": self.output_initializer}


def _serializable(initializer):
    """A name stays a name; an object becomes its Keras config (so ``get_config`` is JSON)."""
    if isinstance(initializer, (str, dict)):
        return initializer
    return keras.initializers.serialize(keras.initializers.get(initializer))
