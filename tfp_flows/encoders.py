"""Context encoders: Keras models from raw observations to the vector a flow's conditioners see.

Any Keras layer or model that maps ``[batch, *context_shape]`` to ``[batch, k]`` is a
context encoder (``Flow(..., context_shape=..., context_encoder=...)`` and every builder
that takes a ``context_shape``): a ``keras.Sequential`` of 1-D convolutions and a global
pooling over a time series, a small CNN over images. This module holds the one the
package's examples need, `DeepSet`, for a set of i.i.d. observations.
"""

from __future__ import annotations

import keras
import tensorflow as tf

POOLINGS = ("mean", "sum", "max")


@keras.saving.register_keras_serializable(package="tfp_flows")
class DeepSet(keras.layers.Layer):
    """A permutation-invariant summary of a set: ``rho(pool_j phi(x_j))``.

    ``phi`` (an MLP applied to each element ``x_j`` of the set, the last axis its
    features) maps every element to ``hidden_units[-1]`` features, ``pool`` averages
    (``"mean"``), adds (``"sum"``) or takes the maximum (``"max"``) over the elements, and
    ``rho`` (an MLP) maps the pooled features to ``output_size``. Any order of the
    elements gives the same output. Mean pooling also takes sets of any size (build the
    flow with ``context_shape=(None, features)``); a sum lets the summary count them.

    Zaheer et al., "Deep Sets", arXiv:1703.06114.

    Cost: O(batch * n * sum of products of consecutive widths of ``phi``) for sets of
    ``n`` elements, plus ``rho`` once per set.

    Examples:
        >>> import numpy as np
        >>> encoder = DeepSet(4, hidden_units=(8,))
        >>> sets = np.random.default_rng(0).normal(size=(3, 10, 2)).astype(np.float32)
        >>> encoder(sets).shape
        TensorShape([3, 4])
        >>> bool(np.allclose(encoder(sets), encoder(sets[:, ::-1]), atol=1e-6))
        True

    Args:
        output_size: ``k``, the size of the summary (the context the conditioners see).
        hidden_units: widths of ``phi``'s layers (the last is the pooled width).
        rho_units: widths of ``rho``'s hidden layers (default: ``hidden_units[-1:]``,
            one layer); its last layer is linear, of width ``output_size``.
        pooling: ``"mean"``, ``"sum"`` or ``"max"``.
        activation: hidden activation (a Keras name).

    Raises:
        ValueError: ``output_size`` below 1, no positive hidden width, an unknown
            ``pooling``, or inputs that are not sets ``(batch, elements, features)``.
    """

    def __init__(self, output_size: int, hidden_units=(64, 64), rho_units=None,
                 pooling: str = "mean", activation: str = "relu", **kwargs):
        super().__init__(**kwargs)
        hidden_units = tuple(int(u) for u in hidden_units)
        rho_units = hidden_units[-1:] if rho_units is None else tuple(int(u) for u in rho_units)
        if int(output_size) < 1 or not hidden_units or min(hidden_units + rho_units, default=1) < 1:
            raise ValueError(f"DeepSet: expected output_size >= 1 and at least one positive "
                             f"hidden width; got output_size={output_size}, "
                             f"hidden_units={hidden_units}, rho_units={rho_units}.")
        if pooling not in POOLINGS:
            raise ValueError(f"DeepSet: expected pooling in {list(POOLINGS)}; got {pooling!r}.")
        self.output_size = int(output_size)
        self.hidden_units, self.rho_units = hidden_units, rho_units
        self.pooling, self.activation = pooling, activation
        policy = self.dtype_policy
        self.phi = [keras.layers.Dense(u, activation=activation, dtype=policy, name=f"phi_{i}")
                    for i, u in enumerate(hidden_units)]
        self.rho = [keras.layers.Dense(u, activation=activation, dtype=policy, name=f"rho_{i}")
                    for i, u in enumerate(rho_units)]
        self.out = keras.layers.Dense(self.output_size, dtype=policy, name="out")

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(f"DeepSet: expected sets of shape (batch, elements, features) "
                             f"with known features; got {tuple(input_shape)}.")
        width = input_shape[-1]
        for layer in self.phi + self.rho:
            layer.build((None, width))
            width = layer.units
        self.out.build((None, width))

    def call(self, x):
        h = x
        for layer in self.phi:
            h = layer(h)
        pool = {"mean": tf.reduce_mean, "sum": tf.reduce_sum, "max": tf.reduce_max}[self.pooling]
        h = pool(h, axis=-2)
        for layer in self.rho:
            h = layer(h)
        return self.out(h)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_size)

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size,
                "hidden_units": list(self.hidden_units), "rho_units": list(self.rho_units),
                "pooling": self.pooling, "activation": self.activation}
