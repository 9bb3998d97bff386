"""`CausalTransformer`: the conditioner of a TarFlow block, parameters of token t from tokens < t."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfp_flows.conditioners.vit import PreNormBlock, TransformerTrunk


class _CausalBlock(PreNormBlock):
    """`ViT`'s pre-LayerNorm block with causal attention, run whole or one token at a time.

    ``call``: ``h += MHA(LN(h), causal); h += MLP(LN(h))`` over the whole sequence.
    ``step``: the same for the one token at position ``index``, its key and value
    written into the cache and its query attending to cached positions ``<= index``
    (Keras' own projections and attention kernel, so both paths are one map).
    """

    causal = True

    def step(self, h, index, keys, values):
        """``h``: ``[B, 1, width]`` at position ``index``; ``keys``, ``values``: this
        block's cache ``[B, T, heads, head_size]``. Returns ``(h, keys, values)``."""
        attention = self.attention
        y = self.norm_attention(h)
        tokens = keys.shape[1]
        here = tf.cast(tf.equal(tf.range(tokens), index), keys.dtype)[None, :, None, None]
        keys = keys + here * (attention._key_dense(y) - keys)
        values = values + here * (attention._value_dense(y) - values)
        seen = tf.range(tokens) <= index  # causal: later positions of the cache are not yet set
        mask = tf.broadcast_to(seen[None, None, :], [tf.shape(h)[0], 1, tokens])
        out, _ = attention._compute_attention(attention._query_dense(y), keys, values, mask)
        h = h + attention._output_dense(out)
        return h + self.mlp_out(self.mlp_in(self.norm_mlp(h))), keys, values


@keras.saving.register_keras_serializable(package="tfp_flows")
class CausalTransformer(TransformerTrunk):
    """``theta_t = Head(LN(Blocks([s, Dense(x_0), ..., Dense(x_{T-2})] + pos [+ Dense(c)])_t))``.

    The conditioner of a TarFlow block (`bijectors.TransformerAutoregressive`): for
    tokens ``x`` ``[T, d]`` it returns ``output_size`` values per token, those of token
    ``t`` a function of tokens ``< t`` only. The input sequence is shifted by one:
    position 0 holds a learned start token ``s`` and position ``t`` the linear
    embedding of token ``t - 1``; then learned position embeddings, an optional
    context (a vector per example, projected to ``width`` and added to every position),
    ``depth`` pre-LayerNorm blocks with causal attention
    (``h += MHA(LN(h), causal); h += MLP(LN(h))``, MLP ratio 4, GELU), a final LayerNorm
    and a zero-initialised head, so that a block starts as the identity.

    Two ways to run, one map:

    - ``call(x)``: all ``T`` positions in one parallel pass (density, training).
      Cost per example O(depth (12 T width^2 + T^2 width)).
    - ``step(token, index, cache)``: position ``index`` alone, from the previous token
      and a key/value cache of the earlier positions (sampling, token by token). Cost
      per step O(depth (12 width^2 + T width)), so all ``T`` steps cost what one
      parallel pass does, not ``T`` passes. Static shapes: it runs inside a
      ``tf.while_loop`` under XLA.

    Follows the Keras dtype policy (bfloat16 compute under ``mixed_bfloat16``).

    Zhai et al., "Normalizing Flows are Capable Generative Models" (TarFlow),
    arXiv:2412.06329; Vaswani et al., "Attention Is All You Need", arXiv:1706.03762.

    Examples:
        >>> net = CausalTransformer(8, width=16, depth=1, num_heads=2)
        >>> net(tf.zeros((2, 4, 3))).shape
        TensorShape([2, 4, 8])

    Args:
        output_size: values per token (the parameters of one token).
        width: embedding size; a multiple of ``num_heads``.
        depth: number of Transformer blocks.
        num_heads: attention heads.
        mlp_ratio: hidden size of the MLP over ``width``.
        dropout: rate of the dropout after each attention and MLP branch while training
            (``call(..., training=True)``); ``step`` (sampling) never drops.
    """

    block = _CausalBlock

    def build(self, x_shape, context_shape=None):
        tokens, size = self._tokens(x_shape)
        self.tokens, self.token_size = tokens, size
        self.embed.build((None, tokens, size))
        scale = keras.initializers.RandomNormal(stddev=1.0 / np.sqrt(self.width))
        self.start = self.add_weight(name="start", shape=(self.width,), initializer=scale)
        self.position = self.add_weight(name="position", shape=(tokens, self.width),
                                        initializer=scale)
        if context_shape is not None:
            self.context_projection.build((None, context_shape[-1]))
        sequence = (None, tokens, self.width)
        for block in self.blocks:
            block.build(sequence)
        self.norm_out.build(sequence)
        self.head.build(sequence)

    @property
    def head_size(self) -> int:
        return self.width // self.num_heads

    def _context(self, context):
        """``[B, 1, width]`` to add to every position, or 0 without a context."""
        if context is None:
            return 0.0
        context = tf.reshape(tf.cast(context, self.compute_dtype), [-1, tf.shape(context)[-1]])
        return self.context_projection(context)[:, None, :]

    def call(self, x, context=None, training=False):
        batch_shape = tf.shape(x)[:-2]  # any number of batch axes, folded into one
        tokens, size = x.shape[-2], x.shape[-1]
        x = tf.reshape(tf.cast(x, self.compute_dtype), [-1, tokens, size])
        start = tf.broadcast_to(tf.cast(self.start, self.compute_dtype),
                                [tf.shape(x)[0], 1, self.width])
        h = tf.concat([start, self.embed(x[:, :-1])], axis=1)  # position t sees token t - 1
        h = h + tf.cast(self.position, self.compute_dtype) + self._context(context)
        for block in self.blocks:
            h = block(h, training=training)
        out = self.head(self.norm_out(h))
        return tf.reshape(out, tf.concat([batch_shape, [tokens, self.output_size]], 0))

    def initial_cache(self, batch) -> list:
        """An empty key/value cache for ``batch`` sequences: per block, keys and values
        ``[batch, T, heads, head_size]`` of zeros (only positions already stepped are read)."""
        shape = [batch, self.tokens, self.num_heads, self.head_size]
        return [(tf.zeros(shape, self.compute_dtype), tf.zeros(shape, self.compute_dtype))
                for _ in self.blocks]

    def step(self, previous, index, cache, context=None):
        """The outputs of position ``index`` alone: ``(theta [B, output_size], cache)``.

        Args:
            previous: token ``index - 1``, ``[B, d]`` (not read at ``index = 0``, where
                the start token stands).
            index: scalar int32 tensor, ``0 <= index < T``.
            cache: from `initial_cache` or the previous step (positions ``< index`` set).
            context: ``[B, k]`` or None, as in ``call``.
        """
        previous = tf.cast(previous, self.compute_dtype)[:, None, :]
        embedded = tf.where(index > 0, self.embed(previous),
                            tf.cast(self.start, self.compute_dtype)[None, None, :])
        position = tf.gather(tf.cast(self.position, self.compute_dtype), index)
        h = embedded + position[None, None, :] + self._context(context)
        new_cache = []
        for block, (keys, values) in zip(self.blocks, cache):
            h, keys, values = block.step(h, index, keys, values)
            new_cache.append((keys, values))
        return self.head(self.norm_out(h))[:, 0, :], new_cache
