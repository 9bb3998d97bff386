"""`ViT`: a Vision Transformer conditioner for couplings of token sequences (Jet)."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


class PreNormBlock(keras.layers.Layer):
    """Pre-LayerNorm Transformer block: ``h += MHA(LN(h)); h += MLP(LN(h))``, each branch
    followed by dropout at rate ``dropout`` while training (none by default); with the
    class attribute ``causal`` each position attends to itself and earlier ones only.

    Built and serialised by its `ViT` or `CausalTransformer` (which pass every argument),
    never alone.
    """

    def __init__(self, width: int, num_heads: int, mlp_ratio: int, dropout: float = 0.0,
                 **kwargs):
        super().__init__(**kwargs)
        policy = self.dtype_policy
        self.drop = keras.layers.Dropout(dropout, dtype=policy, name="dropout")
        self.norm_attention = keras.layers.LayerNormalization(epsilon=1e-6, dtype=policy,
                                                              name="norm_attention")
        self.attention = keras.layers.MultiHeadAttention(num_heads, width // num_heads,
                                                         dtype=policy, name="attention")
        self.norm_mlp = keras.layers.LayerNormalization(epsilon=1e-6, dtype=policy,
                                                        name="norm_mlp")
        self.mlp_in = keras.layers.Dense(mlp_ratio * width, activation="gelu", dtype=policy,
                                         name="mlp_in")
        self.mlp_out = keras.layers.Dense(width, dtype=policy, name="mlp_out")

    def build(self, sequence_shape):
        self.norm_attention.build(sequence_shape)
        self.attention.build(sequence_shape, sequence_shape)
        self.norm_mlp.build(sequence_shape)
        self.mlp_in.build(sequence_shape)
        self.mlp_out.build(tuple(sequence_shape[:-1]) + (self.mlp_in.units,))

    causal = False  # attention to earlier positions only (`CausalTransformer`'s blocks)

    def call(self, h, training=False):
        y = self.norm_attention(h)
        h = h + self.drop(self.attention(y, y, use_causal_mask=self.causal), training=training)
        return h + self.drop(self.mlp_out(self.mlp_in(self.norm_mlp(h))), training=training)


class TransformerTrunk(keras.layers.Layer):
    """What `ViT` and `CausalTransformer` share: the checked sizes, a linear token
    embedding, a context projection, ``depth`` blocks of ``block`` (`PreNormBlock` or a
    subclass), a final LayerNorm and a zero-initialised head (each map starts as the
    identity). Subclasses build and call them."""

    block = PreNormBlock

    def __init__(self, output_size: int, width: int = 64, depth: int = 2, num_heads: int = 4,
                 mlp_ratio: int = 4, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"{name}: expected 0 <= dropout < 1; got {dropout}.")
        self.dropout = float(dropout)
        if int(output_size) < 1 or int(depth) < 1 or int(num_heads) < 1 or int(mlp_ratio) < 1:
            raise ValueError(f"{name}: expected output_size, depth, num_heads and mlp_ratio "
                             f">= 1; got {output_size}, {depth}, {num_heads}, {mlp_ratio}.")
        if int(width) < 1 or int(width) % int(num_heads):
            raise ValueError(f"{name}: expected a width divisible by num_heads={num_heads}; "
                             f"got width={width}.")
        self.output_size = int(output_size)
        self.width = int(width)
        self.depth = int(depth)
        self.num_heads = int(num_heads)
        self.mlp_ratio = int(mlp_ratio)
        policy = self.dtype_policy
        self.embed = keras.layers.Dense(self.width, dtype=policy, name="embed")
        self.context_projection = keras.layers.Dense(self.width, dtype=policy, name="context")
        self.blocks = [self.block(self.width, self.num_heads, self.mlp_ratio, self.dropout,
                                  dtype=policy, name=f"block_{i}") for i in range(self.depth)]
        self.norm_out = keras.layers.LayerNormalization(epsilon=1e-6, dtype=policy,
                                                        name="norm_out")
        self.head = keras.layers.Dense(self.output_size, kernel_initializer="zeros",
                                       dtype=policy, name="head")

    def _tokens(self, x_shape):
        """``(T, d)`` of tokens ``[..., T, d]``, both known."""
        tokens, size = x_shape[-2], x_shape[-1]
        if tokens is None or size is None:
            raise ValueError(f"{type(self).__name__}: expected tokens [..., T, d] with known "
                             f"T and d; got shape {tuple(x_shape)}.")
        return int(tokens), int(size)

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size, "width": self.width,
                "depth": self.depth, "num_heads": self.num_heads, "mlp_ratio": self.mlp_ratio,
                "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="tfp_flows")
class ViT(TransformerTrunk):
    """``theta = Head(LN(Blocks(Dense(x_a) + pos [+ Dense(context)])))`` on tokens ``[T, d]``.

    A linear embedding of each token of the kept part to ``width``, learned position
    embeddings, ``depth`` pre-LayerNorm Transformer blocks
    (``h += MHA(LN(h)); h += MLP(LN(h))``, MLP ratio 4, GELU), a final LayerNorm and
    a zero-initialised linear head giving ``output_size`` values per token, so a
    coupling starts as the identity. One output token per input token: with a token
    partition (`bijectors.TokenCheckerboard`) the kept tokens predict the changed
    ones; with `bijectors.HalfSplit` on the last axis each token predicts its own
    other half.

    Context: a vector per example (the `Flow` embeds class labels into one), projected
    to ``width`` and added to every token, or, with ``context_as_token``, put in front
    of the sequence as an extra token (dropped before the head).

    Cost per example: O(depth (T width^2 (4 + 8) + T^2 width)), the first term the
    projections and MLP, the second attention; T tokens (plus one with a context token).
    Any number of leading batch axes (folded into one). Follows the Keras dtype policy:
    under ``mixed_bfloat16`` it computes in bfloat16 (LayerNorm statistics in float32).

    Kolesnikov et al., "Jet", arXiv:2412.15129; Dosovitskiy et al., "An Image is
    Worth 16x16 Words", arXiv:2010.11929.

    Examples:
        >>> net = ViT(8, width=16, depth=1, num_heads=2)
        >>> net(tf.zeros((2, 4, 3))).shape
        TensorShape([2, 4, 8])

    Args:
        output_size: values per token (the coupling's parameters for one token).
        width: embedding size; a multiple of ``num_heads``.
        depth: number of Transformer blocks.
        num_heads: attention heads.
        mlp_ratio: hidden size of the MLP over ``width``.
        context_as_token: give the context as an extra token instead of adding it.

    Raises:
        ValueError: a size below 1, a width not divisible by ``num_heads``, or inputs
            that are not tokens ``[..., T, d]`` of known sizes.
    """

    def __init__(self, output_size: int, width: int = 64, depth: int = 2, num_heads: int = 4,
                 mlp_ratio: int = 4, context_as_token: bool = False, **kwargs):
        super().__init__(output_size, width, depth, num_heads, mlp_ratio, **kwargs)
        if self.dropout:
            raise ValueError(f"ViT: dropout is not used by Jet's couplings; expected 0; got "
                             f"{self.dropout}.")
        self.context_as_token = bool(context_as_token)

    def build(self, x_shape, context_shape=None):
        tokens, size = self._tokens(x_shape)
        self.embed.build((None, tokens, size))
        self.position = self.add_weight(
            name="position", shape=(tokens, self.width),
            initializer=keras.initializers.RandomNormal(stddev=1.0 / np.sqrt(self.width)))
        if context_shape is not None:
            self.context_projection.build((None, context_shape[-1]))
        length = tokens + (1 if context_shape is not None and self.context_as_token else 0)
        sequence = (None, length, self.width)
        for block in self.blocks:
            block.build(sequence)
        self.norm_out.build(sequence)
        self.head.build(sequence)

    def call(self, x, context=None):
        batch_shape = tf.shape(x)[:-2]  # any number of batch axes, folded into one
        tokens = x.shape[-2]
        h = tf.reshape(x, [-1, tokens, x.shape[-1]])
        h = self.embed(h) + tf.cast(self.position, self.compute_dtype)
        if context is not None:
            context = tf.reshape(tf.cast(context, self.compute_dtype), [-1, tf.shape(context)[-1]])
            c = self.context_projection(context)[:, None, :]
            h = tf.concat([c, h], axis=1) if self.context_as_token else h + c
        for block in self.blocks:
            h = block(h)
        h = self.norm_out(h)
        if context is not None and self.context_as_token:
            h = h[:, 1:]
        out = self.head(h)
        return tf.reshape(out, tf.concat([batch_shape, [tokens, self.output_size]], 0))

    def get_config(self):
        return {**super().get_config(), "context_as_token": self.context_as_token}
