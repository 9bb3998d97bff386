"""Keras layers for `bijectors.LULinear` and `bijectors.Invertible1x1Conv`."""

from __future__ import annotations

import keras
import numpy as np

from tfp_flows import bijectors
from tfp_flows.bijectors._lu import random_rotation_lu
from tfp_flows.layers.base import FlowLayer


@keras.saving.register_keras_serializable(package="tfp_flows")
class LULinear(FlowLayer):
    """Owns ``W = P L (U + diag(sign * exp(log_scale)))`` and a shift over the last axis.

    Starts from a random rotation (QR of a Gaussian, then LU), as Glow does;
    ``permutation`` and ``sign`` are fixed, the rest is trained. See
    `tfp_flows.bijectors.LULinear` for the maths and costs.

    Args:
        seed: seed of the initial rotation (None: random).
    """

    bijector_class = bijectors.LULinear

    def __init__(self, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed

    def build(self, input_shape):
        size = input_shape[-1]
        if size is None:
            raise ValueError(f"{type(self).__name__}: expected a known last axis; "
                             f"got input shape {tuple(input_shape)}.")
        permutation, lower, upper, log_scale, sign = random_rotation_lu(size, self.seed)

        def weight(name, value, trainable=True, dtype=None):
            return self.add_weight(name=name, shape=value.shape, trainable=trainable,
                                   dtype=dtype or self.variable_dtype,
                                   initializer=keras.initializers.Constant(value))

        self.permutation = weight("permutation", permutation, False, "int32")
        self.lower = weight("lower", lower)
        self.upper = weight("upper", upper)
        self.log_scale = weight("log_scale", log_scale)
        self.sign = weight("sign", sign, False)
        self.shift = weight("shift", np.zeros(size))

    def bijector(self, context=None, training=False):
        return self.bijector_class(self.permutation, self.lower, self.upper, self.log_scale,
                                   self.sign, self.shift)

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="tfp_flows")
class Invertible1x1Conv(LULinear):
    """Glow's invertible 1x1 convolution over the channels of ``[H, W, C]`` events."""

    bijector_class = bijectors.Invertible1x1Conv
