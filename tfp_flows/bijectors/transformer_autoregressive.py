"""A TarFlow block: an affine autoregressive map over a token sequence with a causal Transformer."""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf

from tfp_flows.bijectors._base import FlowBijector, check_floating
from tfp_flows.bijectors._coupling import soft_bound
from tfp_flows.bijectors.affine_coupling import check_affine_args


class Guidance(NamedTuple):
    """The context of classifier-free guidance: ``theta = theta_c + w (theta_c - theta_u)``
    from the conditioner given ``context`` (``theta_c``) and given ``null`` (``theta_u``),
    both ``[B, k]``; ``weight`` is the scalar ``w``."""

    context: tf.Tensor
    null: tf.Tensor
    weight: tf.Tensor


class TransformerAutoregressive(FlowBijector):
    """``z_t = (x_t - mu_t) * exp(-alpha_t)``, ``(mu_t, alpha_t) = f(x_<t)``, on tokens ``[T, d]``.

    ``f`` is a causal conditioner (`tfp_flows.conditioners.CausalTransformer`): its
    outputs for token ``t`` depend on tokens ``< t`` only, so the Jacobian is block
    triangular with diagonal blocks ``diag(exp(-alpha_t))``. The log-scale is bounded
    smoothly, ``alpha = c tanh(r / c)`` (`AffineTransform`), so no conditioner output
    can overflow ``exp``. With ``reverse=True`` the map runs over the tokens in
    reverse order (TarFlow's blocks alternate, so that every token is conditioned on
    every other one somewhere in the flow).

    Inverse (normalizing, training): one parallel conditioner pass over all ``T``
        tokens: O(cost of f + T d).
    Forward (sampling): token by token, ``x_t = z_t exp(alpha_t) + mu_t``, inside a
        ``tf.while_loop`` of ``T`` steps. With ``use_cache=True`` (default) each step
        runs the conditioner on one position against a key/value cache
        (``f.step``): O(cost of f) for all ``T`` steps together. ``use_cache=False``
        runs the whole conditioner once per step (the reference the cache is tested
        against): O(T * cost of f).
    log|det J| of the forward: ``sum_t sum_d alpha_t``, O(T d).

    Zhai et al., "Normalizing Flows are Capable Generative Models" (TarFlow),
    arXiv:2412.06329; Kingma et al., "Improved Variational Inference with Inverse
    Autoregressive Flow", arXiv:1606.04934.

    Examples:
        >>> from tfp_flows.conditioners import CausalTransformer
        >>> net = CausalTransformer(2 * 3, width=8, depth=1, num_heads=2)
        >>> TransformerAutoregressive(net).inverse(tf.ones((2, 4, 3))).shape
        TensorShape([2, 4, 3])

    Args:
        conditioner: ``x -> theta`` ``[..., T, 2 d]`` (``(x, context) -> theta`` with a
            context), shift first, then the raw log-scale; causal, with
            ``initial_cache(batch)`` and ``step(previous, index, cache[, context])`` for
            cached sampling.
        context: optional ``[B, k]`` tensor handed to the conditioner, or a `Guidance`:
            both maps then use the guided shift and log-scale,
            ``(mu, alpha) = (1 + w) (mu, alpha)_c - w (mu, alpha)_u`` (twice the
            conditioner cost; still one invertible map with its exact log-det).
        reverse: run over the tokens in reverse order.
        log_scale_bound: ``c > 0`` of the bounded log-scale; default 3.
        use_cache: sample with the key/value cache (default) or without it.
        training: run the conditioner's parallel pass in training mode (its dropout).

    Raises:
        ValueError: a conditioner that is not callable, inputs that are not tokens
            ``[..., T, d]`` of known sizes, or conditioner outputs of the wrong shape.
    """

    def __init__(self, conditioner, context=None, reverse: bool = False,
                 log_scale_bound: float = 3.0, use_cache: bool = True, training: bool = False,
                 validate_args: bool = False, name: str = "TransformerAutoregressive"):
        parameters = dict(locals())
        if not callable(conditioner):
            raise ValueError(f"TransformerAutoregressive: expected a callable causal "
                             f"conditioner; got {type(conditioner).__name__}.")
        self._conditioner = conditioner
        self._context = context
        self._reverse = bool(reverse)
        self._bound = check_affine_args(name, log_scale_bound, "tanh")[0]
        self._use_cache = bool(use_cache)
        self._training = bool(training)
        super().__init__(forward_min_event_ndims=2, validate_args=validate_args,
                         parameters=parameters, name=name)

    def _ordered(self, x):
        return tf.reverse(x, axis=[-2]) if self._reverse else x

    def _flat(self, x):
        """``x`` ``[..., T, d]`` with its batch axes folded into one, and those axes."""
        check_floating(x, "TransformerAutoregressive")
        if x.shape.rank is None or x.shape.rank < 2 or None in x.shape[-2:]:
            raise ValueError(f"TransformerAutoregressive: expected tokens [..., T, d] with "
                             f"known T and d; got shape {x.shape}.")
        return tf.reshape(x, [-1, *x.shape[-2:]]), tf.shape(x)[:-2]

    def _unflat(self, x, batch_shape):
        return tf.reshape(x, tf.concat([batch_shape, tf.shape(x)[1:]], 0))

    def _shift_log_scale(self, theta, size, dtype):
        """``(mu, alpha)`` from conditioner outputs ``theta`` ``[..., 2 size]``."""
        theta = tf.cast(theta, dtype)  # the conditioner may compute in bfloat16 / float16
        if theta.shape[-1] != 2 * size:
            raise ValueError(f"TransformerAutoregressive: expected the conditioner to return "
                             f"2 * {size} = {2 * size} values per token (shift, log-scale); "
                             f"got shape {tuple(theta.shape)}.")
        shift, raw = tf.split(theta, 2, axis=-1)
        return shift, soft_bound(raw, self._bound)

    @property
    def _guided(self) -> bool:
        return isinstance(self._context, Guidance)

    def _twice(self, x):
        """Under `Guidance` the conditioner runs on the batch twice over (given the label,
        then given the null label): ``[x; x]``; else ``x``."""
        return tf.concat([x, x], 0) if self._guided else x

    def _context_kwargs(self) -> dict:
        if self._context is None:
            return {}
        if self._guided:
            return {"context": tf.concat([self._context.context, self._context.null], 0)}
        return {"context": self._context}

    def _params(self, theta, size, dtype):
        """``(mu, alpha)`` from the conditioner's outputs; under `Guidance`, of the
        doubled batch, ``(1 + w) (mu, alpha)_c - w (mu, alpha)_u``."""
        shift, alpha = self._shift_log_scale(theta, size, dtype)
        if not self._guided:
            return shift, alpha
        w = tf.cast(self._context.weight, dtype)
        return tuple(c + w * (c - u) for c, u in (tf.split(shift, 2), tf.split(alpha, 2)))

    def _theta(self, x):
        training = {"training": True} if self._training else {}
        return self._conditioner(self._twice(x), **training, **self._context_kwargs())

    def _inverse_and_log_det(self, x):
        x, batch_shape = self._flat(x)
        x = self._ordered(x)
        shift, alpha = self._params(self._theta(x), x.shape[-1], x.dtype)
        z = (x - shift) * tf.exp(-alpha)
        return (self._unflat(self._ordered(z), batch_shape),
                tf.reshape(-tf.reduce_sum(alpha, axis=[-2, -1]), batch_shape))

    def _forward_and_log_det(self, z):
        z, batch_shape = self._flat(z)
        z = self._ordered(z)
        sample = self._cached if self._use_cache else self._uncached
        x, log_det = sample(z)
        return self._unflat(self._ordered(x), batch_shape), tf.reshape(log_det, batch_shape)

    def _cached(self, z):
        """``T`` steps of one position each against the conditioner's key/value cache."""
        tokens, size = z.shape[-2], z.shape[-1]
        batch = tf.shape(z)[0]
        z_steps = tf.transpose(z, [1, 0, 2])  # [T, B, d]: step t reads row t
        context = self._context_kwargs()

        def body(index, previous, cache, xs, log_det):
            theta, cache = self._conditioner.step(self._twice(previous), index, cache,
                                                  **context)
            shift, alpha = self._params(theta, size, z.dtype)
            x_t = z_steps[index] * tf.exp(alpha) + shift
            return (index + 1, x_t, cache, xs.write(index, x_t),
                    log_det + tf.reduce_sum(alpha, axis=-1))

        start = (tf.constant(0), tf.zeros([batch, size], z.dtype),
                 self._conditioner.initial_cache(2 * batch if self._guided else batch),
                 tf.TensorArray(z.dtype, size=tokens, element_shape=[None, size]),
                 tf.zeros([batch], z.dtype))
        _, _, _, xs, log_det = tf.while_loop(lambda index, *_: index < tokens, body, start,
                                             maximum_iterations=tokens)
        return tf.transpose(xs.stack(), [1, 0, 2]), log_det

    def _uncached(self, z):
        """``T`` whole conditioner passes: pass ``t`` fixes token ``t`` (MAF's sampling)."""
        tokens = z.shape[-2]

        def body(step, x, _):
            shift, alpha = self._params(self._theta(x), z.shape[-1], z.dtype)
            return step + 1, z * tf.exp(alpha) + shift, tf.reduce_sum(alpha, axis=[-2, -1])

        _, x, log_det = tf.while_loop(
            lambda step, *_: step < tokens, body,
            (tf.constant(0), tf.zeros_like(z), tf.zeros(tf.shape(z)[:1], z.dtype)),
            maximum_iterations=tokens)
        return x, log_det

    def _forward(self, z):
        return self._forward_and_log_det(z)[0]

    def _inverse(self, x):
        return self._inverse_and_log_det(x)[0]

    def _forward_log_det_jacobian(self, z):
        # One parallel pass at x = forward(z) (TFP's cache serves forward(z) when it was
        # just computed) gives the log-det, instead of its own sequential run.
        return -self._inverse_and_log_det(self.forward(z))[1]

    def _inverse_log_det_jacobian(self, x):
        return self._inverse_and_log_det(x)[1]
