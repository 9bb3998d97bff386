"""Keras layers for `bijectors.LULinear` and `bijectors.Invertible1x1Conv`."""

from __future__ import annotations

import keras
import numpy as np

from tfp_flows import bijectors
from tfp_flows.bijectors import random_rotation_lu, reversal_lu
from tfp_flows.layers.linear import SeededLinear


@keras.saving.register_keras_serializable(package="tfp_flows")
class LULinear(SeededLinear):
    """Owns ``W = P L (U + diag(sign * exp(log_scale)))`` and a shift over the last axis.

    Starts from a random rotation (QR of a Gaussian, then LU), as Glow does, or from the
    reversal of the entries (``start="reversal"``); ``permutation`` and ``sign`` are
    fixed, the rest is trained. See `tfp_flows.bijectors.LULinear` for the maths and
    costs.

    Args:
        seed: seed of the initial rotation (None: random).
        start: ``"rotation"`` (`bijectors.random_rotation_lu`) or ``"reversal"``
            (`bijectors.reversal_lu`: the couplings first see the data's own
            coordinates; ``RealNVP(linear="lu_reversal")``).

    Raises:
        ValueError: an unknown ``start``.

    Examples:
        >>> import numpy as np
        >>> layer = LULinear(seed=0)
        >>> x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
        >>> z, log_det = layer(x)  # normalizing: x -> z and log|det dz/dx|
        >>> tuple(z.shape)
        (4, 3)
        >>> np.allclose(layer.bijector().forward(z), x, atol=1e-4)  # sampling goes back
        True
    """

    bijector_class = bijectors.LULinear
    STARTS = ("rotation", "reversal")

    def __init__(self, seed: int | None = None, start: str = "rotation", **kwargs):
        super().__init__(seed=seed, **kwargs)
        if start not in self.STARTS:
            raise ValueError(f"{type(self).__name__}: expected start in {list(self.STARTS)}; "
                             f"got {start!r}.")
        self.start = start

    def build(self, input_shape):
        size = self._size(input_shape)
        permutation, lower, upper, log_scale, sign = (
            reversal_lu(size) if self.start == "reversal" else random_rotation_lu(size, self.seed))
        self.permutation = self._constant("permutation", permutation, False, "int32")
        self.lower = self._constant("lower", lower)
        self.upper = self._constant("upper", upper)
        self.log_scale = self._constant("log_scale", log_scale)
        self.sign = self._constant("sign", sign, False)
        self.shift = self._constant("shift", np.zeros(size))

    def bijector(self, context=None, training=False):
        return self.bijector_class(self.permutation, self.lower, self.upper, self.log_scale,
                                   self.sign, self.shift)

    def get_config(self):
        return {**super().get_config(), "start": self.start}


@keras.saving.register_keras_serializable(package="tfp_flows")
class Invertible1x1Conv(LULinear):
    """Glow's invertible 1x1 convolution over the channels of ``[H, W, C]`` events.

    Examples:
        >>> import numpy as np
        >>> layer = Invertible1x1Conv(seed=0)
        >>> x = np.random.default_rng(0).normal(size=(2, 4, 4, 3)).astype("float32")
        >>> z, log_det = layer(x)  # normalizing: x -> z and log|det dz/dx|
        >>> tuple(z.shape)
        (2, 4, 4, 3)
        >>> np.allclose(layer.bijector().forward(z), x, atol=1e-4)  # sampling goes back
        True
    """

    bijector_class = bijectors.Invertible1x1Conv


@keras.saving.register_keras_serializable(package="tfp_flows")
class TokenLULinear(LULinear):
    """A learned LU-form mixing of each token's values, over tokens ``[T, d]`` (TarFlow's
    ``mixing="lu"``); see `tfp_flows.bijectors.TokenLULinear`.

    Examples:
        >>> import numpy as np
        >>> layer = TokenLULinear(seed=0)
        >>> x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
        >>> z, log_det = layer(x)  # normalizing: x -> z and log|det dz/dx|
        >>> tuple(z.shape)
        (2, 5, 3)
        >>> np.allclose(layer.bijector().forward(z), x, atol=1e-4)  # sampling goes back
        True
    """

    bijector_class = bijectors.TokenLULinear
