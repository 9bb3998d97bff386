"""Keras layers for the couplings: they own the conditioner and pick the partition."""

from __future__ import annotations

import keras

from tfp_flows import bijectors
from tfp_flows.bijectors import check_spline_args, num_spline_params
from tfp_flows.bijectors.affine_coupling import check_affine_args
from tfp_flows.bijectors.partitions import HalfSplit, partition_from_config
from tfp_flows.conditioners import MLP, ConvNet
from tfp_flows.layers.base import FlowLayer


def default_conditioner(owner, event_rank: int, output_size: int, hidden_units, hidden_channels,
                        name: str, activation: str = "relu"):
    """An `MLP` for vector events, a `ConvNet` for ``[H, W, C]`` events.

    It follows the global dtype policy (mixed precision) unless ``owner``, the flow
    layer, was given a dtype other than float32 (float64 for checks).
    """
    dtype = None if owner.dtype_policy.name == "float32" else owner.dtype_policy
    if event_rank == 1:
        return MLP(output_size, hidden_units, activation, name=name, dtype=dtype)
    if event_rank == 3:
        return ConvNet(output_size, hidden_channels, name=name, dtype=dtype)
    raise ValueError(f"expected vector (batch, d) or image (batch, H, W, C) inputs; "
                     f"got an event of rank {event_rank}.")


class _CouplingLayer(FlowLayer):
    """Builds the conditioner for ``x_a`` and hands out the coupling bijector.

    Args:
        partition: `HalfSplit` (default) or `Checkerboard`.
        conditioner: a Keras layer ``(x_a, context=None) -> theta``; default an `MLP`
            (vectors) or `ConvNet` (images) made in ``build``.
        hidden_units: widths of the default `MLP`.
        hidden_channels: width of the default `ConvNet`.
        activation: hidden activation of the default `MLP` (a Keras name).
    """

    bijector_class = bijectors.Coupling

    def backward(self, walker, y, grad_y, known=None):
        """Inverse backprop (`FlowLayer.backward`): the conditioner runs once, for the
        recomputed ``x_b`` and for the gradients; ``x_a`` is ``y_a``."""
        return walker.coupling(self.bijector(walker.context, True), self.trainable_variables,
                               y, grad_y, known)

    def __init__(self, partition=None, conditioner=None, hidden_units=(64, 64),
                 hidden_channels: int = 128, activation: str = "relu", **kwargs):
        super().__init__(**kwargs)
        if isinstance(partition, dict):
            partition = partition_from_config(partition)
        self.partition = partition if partition is not None else HalfSplit()
        self.conditioner = conditioner
        self._own_conditioner = conditioner is None
        self.hidden_units = tuple(hidden_units)
        self.hidden_channels = int(hidden_channels)
        self.activation = activation

    def num_params(self) -> int:
        """Conditioner outputs per transformed entry (2 for an affine coupling, ``3K - 1``
        for a spline of ``K`` bins): the conditioner's width is this times ``C_b``."""
        return self.bijector_class.num_params

    def build(self, input_shape):
        event_shape = tuple(input_shape[1:])
        _, shape_b = self.partition.shapes(event_shape)
        self.event_ndims = len(event_shape)
        if self.conditioner is None:
            self.conditioner = default_conditioner(
                self, self.event_ndims, self.num_params() * shape_b[-1], self.hidden_units,
                self.hidden_channels, name="conditioner", activation=self.activation)

    def _bijector_kwargs(self) -> dict:
        return {}

    def bijector(self, context=None, training=False):
        return self.bijector_class(self.conditioner, self.partition, context,
                                   event_ndims=self.event_ndims, **self._bijector_kwargs())

    def get_config(self):
        config = {**super().get_config(), "partition": self.partition.get_config(),
                  "hidden_units": list(self.hidden_units),
                  "hidden_channels": self.hidden_channels, "activation": self.activation,
                  "conditioner": None}
        if not self._own_conditioner:
            config["conditioner"] = keras.saving.serialize_keras_object(self.conditioner)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        # Files saved before the default became ReLU (and the key was saved) used tanh.
        config.setdefault("activation", "tanh")
        if config.get("conditioner") is not None:
            config["conditioner"] = keras.saving.deserialize_keras_object(config["conditioner"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="tfp_flows")
class AffineCoupling(_CouplingLayer):
    """Affine coupling with a bounded log-scale; see `bijectors.AffineCoupling`.

    Args: those of `_CouplingLayer`, and
        log_scale_bound: ``c``: ``s = c tanh(r / c)`` (``scale="tanh"``).
        scale: ``"tanh"`` or ``"sigmoid"`` (Glow's: the normalizing direction
            multiplies by ``sigmoid(r + 2)``; `Glow`'s default).

    Examples:
        >>> import numpy as np
        >>> layer = AffineCoupling(hidden_units=(8,))
        >>> x = np.random.default_rng(0).normal(size=(4, 2)).astype("float32")
        >>> z, log_det = layer(x)  # normalizing: x -> z and log|det dz/dx|
        >>> tuple(z.shape)
        (4, 2)
        >>> np.allclose(layer.bijector().forward(z), x, atol=1e-4)  # sampling goes back
        True
    """

    bijector_class = bijectors.AffineCoupling

    def __init__(self, partition=None, conditioner=None, log_scale_bound: float = 2.0,
                 scale: str = "tanh", **kwargs):
        super().__init__(partition, conditioner, **kwargs)
        self.log_scale_bound, self.scale = check_affine_args("AffineCoupling", log_scale_bound,
                                                             scale)

    def _bijector_kwargs(self):
        return {"log_scale_bound": self.log_scale_bound, "scale": self.scale}

    def get_config(self):
        return {**super().get_config(), "log_scale_bound": self.log_scale_bound,
                "scale": self.scale}


@keras.saving.register_keras_serializable(package="tfp_flows")
class AdditiveCoupling(_CouplingLayer):
    """NICE's additive coupling; see `bijectors.AdditiveCoupling`.

    Examples:
        >>> import numpy as np
        >>> layer = AdditiveCoupling(hidden_units=(8,))
        >>> x = np.random.default_rng(0).normal(size=(4, 2)).astype("float32")
        >>> z, log_det = layer(x)  # normalizing: x -> z and log|det dz/dx|
        >>> tuple(z.shape)
        (4, 2)
        >>> np.allclose(layer.bijector().forward(z), x, atol=1e-4)  # sampling goes back
        True
    """

    bijector_class = bijectors.AdditiveCoupling


@keras.saving.register_keras_serializable(package="tfp_flows")
class PReLUCoupling(_CouplingLayer):
    """PReLU coupling with a conditioner-given slope and shift; see `bijectors.PReLUCoupling`.

    Its default `MLP` keeps tanh (``activation``): on two moons (16 steps with ActNorm,
    3,000 steps of ``Adam(1e-3)``) a ReLU conditioner reached 4.33 nats, tanh 0.48.

    Args:
        partition: `HalfSplit` (default) or `Checkerboard`.
        conditioner: a Keras layer ``(x_a, context=None) -> theta``; default an `MLP`
            (vectors) or `ConvNet` (images) made in ``build``.
        with_shift: add a shift ``t`` after the PReLU (see `bijectors.PReLUCoupling`).
        log_slope_bound: ``c``: the slope is ``exp(c tanh(r / c))``.
        activation: hidden activation of the default `MLP`.
        **kwargs: ``hidden_units``, ``hidden_channels`` and Keras' layer arguments.

    Examples:
        >>> import numpy as np
        >>> layer = PReLUCoupling(hidden_units=(8,))
        >>> x = np.random.default_rng(0).normal(size=(4, 2)).astype("float32")
        >>> z, log_det = layer(x)  # normalizing: x -> z and log|det dz/dx|
        >>> tuple(z.shape)
        (4, 2)
        >>> np.allclose(layer.bijector().forward(z), x, atol=1e-4)  # sampling goes back
        True
    """

    bijector_class = bijectors.PReLUCoupling

    def __init__(self, partition=None, conditioner=None, with_shift: bool = True,
                 log_slope_bound: float = 2.0, activation: str = "tanh", **kwargs):
        super().__init__(partition, conditioner, activation=activation, **kwargs)
        self.with_shift = bool(with_shift)
        self.log_slope_bound = float(log_slope_bound)

    def num_params(self):
        return 2 if self.with_shift else 1

    def _bijector_kwargs(self):
        return {"with_shift": self.with_shift, "log_slope_bound": self.log_slope_bound}

    def get_config(self):
        return {**super().get_config(), "with_shift": self.with_shift,
                "log_slope_bound": self.log_slope_bound}


@keras.saving.register_keras_serializable(package="tfp_flows")
class SplineCoupling(_CouplingLayer):
    """Rational-quadratic spline coupling (neural spline flows); see `bijectors.SplineCoupling`.

    Args: those of `_CouplingLayer`, and
        num_bins: ``K``, bins of each spline; the conditioner gives ``3K - 1`` values per entry.
        bound: ``B``: the splines cover ``[-B, B]``, the identity outside.

    Examples:
        >>> import numpy as np
        >>> layer = SplineCoupling(hidden_units=(8,), num_bins=4)
        >>> x = np.random.default_rng(0).normal(size=(4, 2)).astype("float32")
        >>> z, log_det = layer(x)  # normalizing: x -> z and log|det dz/dx|
        >>> tuple(z.shape)
        (4, 2)
        >>> np.allclose(layer.bijector().forward(z), x, atol=1e-4)  # sampling goes back
        True
    """

    bijector_class = bijectors.SplineCoupling

    def __init__(self, partition=None, conditioner=None, num_bins: int = 8, bound: float = 3.0,
                 **kwargs):
        super().__init__(partition, conditioner, **kwargs)
        self.num_bins, self.bound = check_spline_args("SplineCoupling", num_bins, bound)

    def num_params(self):
        return num_spline_params(self.num_bins)

    def _bijector_kwargs(self):
        return {"num_bins": self.num_bins, "bound": self.bound}

    def get_config(self):
        return {**super().get_config(), "num_bins": self.num_bins, "bound": self.bound}
