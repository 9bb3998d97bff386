"""`MADE`: the masked autoencoder conditioner of autoregressive flows."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from tfp_flows.conditioners.mlp import FAN_IN_UNIFORM, hidden_activations, hidden_initializers

ORDERINGS = ("natural", "reversed", "random")


def _input_degrees(size: int, ordering, rng) -> np.ndarray:
    """Degree ``1..d`` of each input: entry ``i`` may depend on entries of lower degree."""
    if isinstance(ordering, str):
        if ordering == "natural":
            order = np.arange(size)
        elif ordering == "reversed":
            order = np.arange(size)[::-1]
        elif ordering == "random":
            order = rng.permutation(size)
        else:
            raise ValueError(f"MADE: expected ordering in {list(ORDERINGS)} or a permutation of "
                             f"range(d); got {ordering!r}.")
    else:
        order = np.asarray(ordering, dtype=np.int64)
        if order.shape != (size,) or sorted(order.tolist()) != list(range(size)):
            raise ValueError(f"MADE: expected ordering to be a permutation of range({size}) (the "
                             f"order in which entries are generated); got {list(ordering)}.")
    degrees = np.empty(size, np.int64)
    degrees[order] = np.arange(1, size + 1)
    return degrees


def made_degrees(size: int, hidden_units, ordering="natural", seed: int | None = 0,
                 context: bool = False) -> list[np.ndarray]:
    """Degrees of the inputs and of each hidden layer (Germain et al., section 4).

    A hidden unit of degree ``m`` sees the inputs of degree ``<= m``; an output of
    input degree ``m`` sees the hidden units of degree ``< m``. Hidden degrees are
    spread evenly over ``[low, d - 1]`` (random draws for ``ordering="random"``), where
    ``low`` is 0 when a context is given (degree-0 units see the context only, so the
    first entry's parameters depend on it) or ``d = 1``, and 1 otherwise.
    """
    rng = np.random.default_rng(seed)
    degrees = [_input_degrees(size, ordering, rng)]
    low = 0 if context or size == 1 else 1
    for units in hidden_units:
        if isinstance(ordering, str) and ordering == "random":
            previous = max(low, int(degrees[-1].min()))
            degrees.append(rng.integers(previous, max(previous, size - 1) + 1, units))
        else:
            degrees.append(low + np.arange(units) % max(1, size - low))
    return degrees


def made_masks(degrees, params_per_dim: int) -> list[np.ndarray]:
    """0/1 masks of the hidden kernels and of the output kernel ``[H, P * d]``.

    The output is parameter-major: column ``j * d + i`` is parameter ``j`` of entry ``i``.
    """
    masks = [(later[None, :] >= earlier[:, None]).astype(np.float32)
             for earlier, later in zip(degrees[:-1], degrees[1:])]
    output = (degrees[0][None, :] > degrees[-1][:, None]).astype(np.float32)
    masks.append(np.tile(output, (1, params_per_dim)))
    return masks


@keras.saving.register_keras_serializable(package="tfp_flows")
class MADE(keras.layers.Layer):
    """``theta = MADE(x[, context])`` where the parameters of entry ``i`` depend on ``x_{<i}`` only.

    Dense layers whose kernels are multiplied by 0/1 masks built from degrees
    (Germain et al., "MADE", arXiv:1502.03509): entry ``i`` has degree ``m(i)``, the
    rank of ``i`` in ``ordering``; the Jacobian ``d theta / dx`` is then strictly
    triangular in that order. A context vector enters the first hidden layer
    unmasked. The output layer starts at zero, so a flow step starts as the identity.

    Output: ``params_per_dim * d`` values, parameter-major (parameter ``j`` of entry
    ``i`` at ``j * d + i``), the layout the transforms of `MaskedAutoregressive` split.

    Cost: one pass is O(batch * (d H_1 + sum H_l H_{l+1} + H_L P d)), as a dense MLP
    of the same widths (the masks cost one elementwise product per kernel).

    Args:
        params_per_dim: ``P``, the transform's parameters per entry.
        hidden_units: widths of the hidden layers.
        ordering: ``"natural"`` (``x_0`` first), ``"reversed"``, ``"random"`` (seeded
            order and hidden degrees) or a permutation of ``range(d)``.
        seed: seed of the random ordering (None: drawn once and saved in the config).
        activation: hidden activation: a Keras name, or one name per hidden layer
            (``("relu", "gelu")``: ReLU, then a smooth last hidden layer).
        initializer: of the hidden kernels and biases: ``"fan_in_uniform"`` (PyTorch's
            ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for both, as `MLP`) or a Keras name for
            the kernels with zero biases (``"glorot_uniform"``: TFP's MADE). The last
            layer starts at zero either way (the flow starts at the identity).

    Raises:
        ValueError: ``params_per_dim < 1``, no hidden layer, an unknown ordering or one
            that is not a permutation of the inputs, or not one activation for each
            hidden layer.

    Examples:
        >>> import numpy as np
        >>> made = MADE(2, hidden_units=(8,))
        >>> made(np.ones((4, 3), np.float32)).shape  # 2 parameters for each of 3 entries
        TensorShape([4, 6])
    """

    def __init__(self, params_per_dim: int, hidden_units: Sequence[int] = (64, 64),
                 ordering: str | Sequence[int] = "natural", seed: int | None = 0,
                 activation: str = "relu", initializer: str = FAN_IN_UNIFORM, **kwargs):
        super().__init__(**kwargs)
        if int(params_per_dim) < 1 or not hidden_units or min(hidden_units) < 1:
            raise ValueError(f"MADE: expected params_per_dim >= 1 and at least one hidden layer "
                             f"of positive width; got params_per_dim={params_per_dim}, "
                             f"hidden_units={hidden_units}.")
        if isinstance(ordering, str) and ordering not in ORDERINGS:
            raise ValueError(f"MADE: expected ordering in {list(ORDERINGS)} or a permutation of "
                             f"range(d); got {ordering!r}.")
        self.params_per_dim = int(params_per_dim)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.ordering = ordering if isinstance(ordering, str) else [int(i) for i in ordering]
        # A seed is drawn and kept when none is given: saved models rebuild the same masks.
        self.seed = int(np.random.default_rng().integers(2**31 - 1)) if seed is None else int(seed)
        self._activation_name = activation if isinstance(activation, str) else list(activation)
        self.activations = [keras.activations.get(name) for name in
                            hidden_activations(activation, self.hidden_units, "MADE")]
        self.initializer = initializer

    def build(self, x_shape, context_shape=None):
        size = x_shape[-1]
        if size is None:
            raise ValueError(f"MADE: expected a known last axis; got input shape {tuple(x_shape)}.")
        self.event_size = int(size)
        context = context_shape is not None
        self.degrees = made_degrees(self.event_size, self.hidden_units, self.ordering, self.seed,
                                    context)
        self._masks = made_masks(self.degrees, self.params_per_dim)
        widths = [self.event_size, *self.hidden_units, self.params_per_dim * self.event_size]
        self.kernels, self.biases = [], []
        for index, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:])):
            last = index == len(widths) - 2
            kernel_init, bias_init = (("zeros", "zeros") if last
                                      else hidden_initializers(self.initializer, fan_in))
            self.kernels.append(self.add_weight(name=f"kernel_{index}", shape=(fan_in, fan_out),
                                                initializer=kernel_init))
            self.biases.append(self.add_weight(name=f"bias_{index}", shape=(fan_out,),
                                               initializer=bias_init))
        self.context_kernel = (self.add_weight(name="context_kernel",
                                               shape=(int(context_shape[-1]), widths[1]),
                                               initializer="glorot_uniform")
                               if context else None)

    @property
    def order(self) -> np.ndarray:
        """The entries in the order they are generated (``x[order[0]]`` first)."""
        return np.argsort(self.degrees[0], kind="stable")

    def call(self, x, context=None):
        if (context is None) != (self.context_kernel is None):
            raise ValueError(f"MADE: built {'with' if self.context_kernel is not None else 'without'}"
                             f" a context; got {'none' if context is None else 'one'}.")
        dtype = self.compute_dtype
        batch_shape = tf.shape(x)[:-1]
        h = tf.reshape(tf.cast(x, dtype), [-1, self.event_size])
        last = len(self.kernels) - 1
        for index, (kernel, bias, mask) in enumerate(zip(self.kernels, self.biases, self._masks)):
            kernel = tf.cast(kernel, dtype) * tf.constant(mask, dtype)
            out = tf.matmul(h, kernel) + tf.cast(bias, dtype)
            if index == 0 and context is not None:
                flat = tf.reshape(tf.cast(context, dtype), [-1, self.context_kernel.shape[0]])
                out = out + tf.matmul(flat, tf.cast(self.context_kernel, dtype))
            h = out if index == last else self.activations[index](out)
        return tf.reshape(h, tf.concat([batch_shape, [self.params_per_dim * self.event_size]], 0))

    def compute_output_shape(self, x_shape, context_shape=None):
        return tuple(x_shape[:-1]) + (self.params_per_dim * x_shape[-1],)

    def get_config(self):
        return {**super().get_config(), "params_per_dim": self.params_per_dim,
                "hidden_units": list(self.hidden_units), "ordering": self.ordering,
                "seed": self.seed, "activation": self._activation_name,
                "initializer": self.initializer}
