"""Keras layer for `bijectors.MaskedAutoregressive`: it owns the MADE."""

from __future__ import annotations

import keras

from tfp_flows import bijectors
from tfp_flows.bijectors.masked_autoregressive import transform_from_config
from tfp_flows.conditioners import MADE
from tfp_flows.layers.base import FlowLayer


@keras.saving.register_keras_serializable(package="tfp_flows")
class MaskedAutoregressive(FlowLayer):
    """One MAF (or IAF) step on vectors; see `bijectors.MaskedAutoregressive`.

    Training (``call``, the normalizing direction) costs one MADE pass for MAF and
    ``d`` sequential passes for IAF; sampling the reverse.

    Args:
        transform: `bijectors.AffineTransform` (default) or `bijectors.SplineTransform`
            (or its ``get_config()``).
        hidden_units: widths of the MADE.
        ordering: the MADE's ordering: ``"natural"``, ``"reversed"``, ``"random"`` or a
            permutation of ``range(d)``. Stacked steps alternate orderings so that every
            entry is conditioned on every other one somewhere.
        seed: seed of a random ordering.
        activation: the MADE's hidden activation (a name, or one per hidden layer).
        inverse_autoregressive: the IAF arrangement (fast sampling, slow density).

    Raises:
        ValueError: ``transform`` is neither an `AffineTransform` nor a
            `SplineTransform`, or inputs are not vectors ``(batch, d)``.

    Examples:
        >>> import numpy as np
        >>> layer = MaskedAutoregressive(hidden_units=(8,))
        >>> x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
        >>> z, log_det = layer(x)  # normalizing: x -> z and log|det dz/dx|
        >>> tuple(z.shape)
        (4, 3)
        >>> np.allclose(layer.bijector().forward(z), x, atol=1e-4)  # sampling goes back
        True
    """

    def __init__(self, transform=None, hidden_units=(64, 64), ordering="natural",
                 seed: int | None = 0, activation: str = "relu",
                 inverse_autoregressive: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.transform = (bijectors.AffineTransform() if transform is None
                          else transform_from_config(transform))
        if not isinstance(self.transform, (bijectors.AffineTransform, bijectors.SplineTransform)):
            raise ValueError(f"MaskedAutoregressive: expected an AffineTransform or "
                             f"SplineTransform; got {type(self.transform).__name__}.")
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.ordering = ordering if isinstance(ordering, str) else [int(i) for i in ordering]
        self.seed = seed
        self.activation = activation if isinstance(activation, str) else list(activation)
        self.inverse_autoregressive = bool(inverse_autoregressive)
        self.made = None

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(f"MaskedAutoregressive: expected vector inputs (batch, d); "
                             f"got input shape {tuple(input_shape)}.")
        if self.made is None:
            # Follows the global (mixed precision) policy unless this layer was given
            # another dtype than float32 (float64 for checks).
            dtype = None if self.dtype_policy.name == "float32" else self.dtype_policy
            self.made = MADE(self.transform.num_params, self.hidden_units, self.ordering,
                             self.seed, self.activation, dtype=dtype, name="made")

    def bijector(self, context=None, training=False):
        return bijectors.MaskedAutoregressive(
            self.made, self.transform, context,
            inverse_autoregressive=self.inverse_autoregressive)

    def get_config(self):
        return {**super().get_config(), "transform": self.transform.get_config(),
                "hidden_units": list(self.hidden_units), "ordering": self.ordering,
                "seed": self.seed, "activation": self.activation,
                "inverse_autoregressive": self.inverse_autoregressive}
