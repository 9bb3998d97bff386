"""Keras layer for `bijectors.TransformerAutoregressive` (a TarFlow block): it owns the Transformer."""

from __future__ import annotations

import keras

from tfp_flows import bijectors
from tfp_flows.bijectors.affine_coupling import check_affine_args
from tfp_flows.conditioners import CausalTransformer
from tfp_flows.layers.base import FlowLayer


@keras.saving.register_keras_serializable(package="tfp_flows")
class TransformerAutoregressive(FlowLayer):
    """One TarFlow block on tokens ``[T, d]``: ``z_t = (x_t - mu_t) exp(-alpha_t)``,
    ``(mu_t, alpha_t)`` from a `conditioners.CausalTransformer` of tokens ``< t``;
    see `bijectors.TransformerAutoregressive`.

    Training (``call``, the normalizing direction) is one parallel Transformer pass;
    sampling is ``T`` cached steps in a ``tf.while_loop``.

    Args:
        width, depth, num_heads, mlp_ratio: of the `conditioners.CausalTransformer`
            (``depth``: its number of attention layers, TarFlow's layers per block).
        reverse: run over the tokens in reverse order (stacked blocks alternate).
        log_scale_bound: ``c`` of the bounded log-scale ``alpha = c tanh(r / c)``.
        use_cache: sample with the key/value cache (default); False runs the whole
            Transformer once per token (slower; the same numbers).
        dropout: rate of the Transformer's dropout while training (`CausalTransformer`).

    Raises:
        ValueError: a dropout rate outside ``[0, 1)``, a log-scale bound that is not
            positive, or inputs that are not tokens ``(batch, T, d)`` of known sizes.

    Examples:
        >>> import numpy as np
        >>> layer = TransformerAutoregressive(width=16, depth=1, num_heads=2)
        >>> x = np.random.default_rng(0).normal(size=(2, 4, 3)).astype("float32")
        >>> z, log_det = layer(x)  # normalizing: one parallel pass
        >>> tuple(z.shape), tuple(log_det.shape)
        ((2, 4, 3), (2,))
    """

    guidable = True  # takes a `bijectors.transformer_autoregressive.Guidance` context

    def __init__(self, width: int = 64, depth: int = 2, num_heads: int = 4, mlp_ratio: int = 4,
                 reverse: bool = False, log_scale_bound: float = 3.0, use_cache: bool = True,
                 dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.width, self.depth, self.num_heads = int(width), int(depth), int(num_heads)
        self.mlp_ratio = int(mlp_ratio)
        self.reverse = bool(reverse)
        self.log_scale_bound = check_affine_args("TransformerAutoregressive",
                                                 log_scale_bound, "tanh")[0]
        self.use_cache = bool(use_cache)
        self.dropout = float(dropout)
        # Follows the global (mixed precision) policy unless this layer was given another
        # dtype than float32 (float64 for checks).
        dtype = None if self.dtype_policy.name == "float32" else self.dtype_policy
        self.conditioner = None
        self._conditioner_args = (self.width, self.depth, self.num_heads, self.mlp_ratio, dtype)
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"TransformerAutoregressive: expected 0 <= dropout < 1; got "
                             f"{dropout}.")

    def build(self, input_shape):
        if len(input_shape) != 3 or None in tuple(input_shape[1:]):
            raise ValueError(f"TransformerAutoregressive: expected tokens (batch, T, d) with "
                             f"known T and d; got input shape {tuple(input_shape)}.")
        if self.conditioner is None:
            width, depth, heads, ratio, dtype = self._conditioner_args
            self.conditioner = CausalTransformer(2 * int(input_shape[-1]), width, depth, heads,
                                                 ratio, self.dropout, dtype=dtype,
                                                 name="transformer")

    def bijector(self, context=None, training=False):
        return bijectors.TransformerAutoregressive(
            self.conditioner, context, reverse=self.reverse,
            log_scale_bound=self.log_scale_bound, use_cache=self.use_cache,
            training=training and self.dropout > 0)

    def get_config(self):
        return {**super().get_config(), "width": self.width, "depth": self.depth,
                "num_heads": self.num_heads, "mlp_ratio": self.mlp_ratio,
                "reverse": self.reverse, "log_scale_bound": self.log_scale_bound,
                "use_cache": self.use_cache, "dropout": self.dropout}
