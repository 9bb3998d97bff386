"""`Flow`: a Keras model that is a density."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows import metrics
from tfp_flows.bijectors.transformer_autoregressive import Guidance
from tfp_flows.distribute import is_multi_worker
from tfp_flows.layers.base import LayerChain, build_sequence, walk
from tfp_flows.layers.dequantize import Dequantize
from tfp_flows.models import inputs
from tfp_flows.models.adaptation import adapt_flow, adapt_for_fit
from tfp_flows.models.graphs import GraphFunctions
from tfp_flows.training import (
    Engine,
    check_backprop,
    initialize_actnorm,
    initialize_for_fit,
    inverse_gradients,
    weights,
)

tfd = tfp.distributions


@keras.saving.register_keras_serializable(package="tfp_flows")
class Flow(keras.Model):
    """A normalizing flow: flow layers (data first) on a standard-normal base.

    ``log p(x) = log N(z; 0, I) + log|det dz/dx|`` with ``z = encode(x)``. The model
    trains with plain ``compile(optimizer=...)`` and ``fit``: no loss is needed;
    ``fit`` minimises the negative log-likelihood and logs it as ``loss`` (nats
    per example) beside ``bits_per_dim``. A conditional flow takes its context
    where Keras puts targets: ``fit(x, context)`` or a dataset of pairs, and
    one context reaches every conditioner.

    Discrete data (a `Dequantize` layer first, e.g. ``Glow(..., num_values=256)``): the flow
    is a density of ``k + u`` and ``log_prob(k)`` estimates ``log P(k)`` by the
    uniform-dequantization bound ``E_u[log p(k + u)]``, ``u ~ U(0, 1)^D``, over fresh
    seeded draws (or Flow++'s importance-weighted bound); ``bits_per_dim``,
    ``evaluate`` and validation logs report that bound, the figure of the Glow,
    RealNVP and Flow++ papers. ``score(k)`` is the deterministic midpoint value
    ``log p(k + 1/2)``, for anomaly scores; it is not a bound.

    Eager and graph-level methods: `log_prob`, `score`, `encode`, `decode` and
    `sample` take NumPy arrays or tensors, check them in Python (a ``ValueError`` that
    names what is wrong), repeat a single context for every example, and run as cached
    ``tf.function`` graphs. Each has a graph-level twin, `graph_log_prob`,
    `graph_score`, `graph_encode`, `graph_decode` and `graph_sample`: tensors in,
    tensors out, no Python-side checks, traceable inside your own ``tf.function``
    (XLA included). They are what the eager methods, `evaluate` and
    `tfp_flows.export` run, so the numbers agree; give them tensors checked by
    ``tfp_flows.models.inputs.check_x(flow, x)`` and ``check_context(flow, context, x)``
    (in-graph assertions for symbolic tensors) and one context per example.

    Precision: the flow computes in its layers' dtype: float32, or float64 when built
    under ``keras.config.set_floatx("float64")`` (or with ``dtype="float64"`` in the
    builders), end to end: training, saving, loading and export.

    Mixed precision: under ``mixed_float16`` / ``mixed_bfloat16`` the conditioners
    compute in 16 bits while log-dets, the base density and the loss stay float32;
    ``log_prob`` then agrees with float32 weights to 5e-2 nats (float16) and 2e-1
    nats (bfloat16, 8 mantissa bits) on a small RealNVP (``tests/test_flow.py``).

    Args:
        flow_layers: `tfp_flows.layers` in normalizing order (data first).
        event_shape: shape of one example, e.g. ``(2,)`` or ``(8, 8, 1)``.
        context_shape: shape of one continuous context: a vector ``(k,)``, or with a
            ``context_encoder`` the shape of one raw observation that it takes, e.g.
            ``(10, 2)`` for a set of 10 points in 2-D, ``(None, 2)`` for sets of any
            size (the last entry must be known).
        num_classes: for a class-label context (integers), embedded in ``embedding_dim``.
        embedding_dim: size of the label embedding.
        label_dropout: with ``num_classes``, the probability that a training label is
            replaced by a learned null label (``embed_context``), for classifier-free
            guidance (`sample`'s ``guidance``); 0 (default) adds no null label.
        standardize_context: whether `adapt` (or the first `fit`) sets the context's
            statistics (below); False leaves the context as it comes.
        context_encoder: a Keras layer or model (a `tfp_flows.encoders.DeepSet`, a
            ``keras.Sequential`` of 1-D convolutions over a series, a small CNN) that
            maps a batch of raw observations ``[batch, *context_shape]`` to vectors
            ``[batch, k]``; every conditioner sees its output. Its weights are the
            flow's: ``fit`` trains them with the flow's, ``save`` / ``load_model`` and
            `export` carry them, and every method takes raw observations. Cost: one
            encoder pass per batch of contexts.

    Raises:
        ValueError: both ``context_shape`` and ``num_classes``, a context shape that is
            not a vector shape, or flow layers of different dtypes.

    Standardisation: a flow with a continuous context holds non-trainable
    ``context_mean`` and ``context_std`` weights of shape ``(context_shape[-1],)``
    (saved and exported with it; the identity until set): per feature of the last
    axis, pooled over the others (the elements of a set, the steps of a series, the
    pixels of an image), so the same map applies to every element and a
    permutation-invariant encoder stays invariant. The conditioners (or the context
    encoder) see ``(context - context_mean) / context_std``; an encoder's output is
    used as it comes. `adapt` sets them, and every `tfp_flows.layers.Standardize` layer
    of the target, from the training data; the first ``fit`` does it on its training
    rows when `adapt` has not been called (a dataset: its first batch). Every method,
    the export included, takes raw values, and ``log_prob`` stays the density of the
    raw ``x``.

    Examples:
        >>> import numpy as np
        >>> import tfp_flows
        >>> flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(8,))
        >>> flow.log_prob(np.zeros((3, 2), np.float32)).shape
        TensorShape([3])
    """

    def __init__(self, flow_layers, event_shape, context_shape=None, num_classes=None,
                 embedding_dim: int = 16, standardize_context: bool = True,
                 context_encoder=None, label_dropout: float = 0.0, name: str = "flow",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        self.flow_layers = [keras.saving.deserialize_keras_object(layer)
                            if isinstance(layer, dict) else layer for layer in flow_layers]
        self.event_shape = tuple(int(n) for n in event_shape)
        if context_shape is not None and num_classes is not None:
            raise ValueError("Flow: expected at most one of context_shape and num_classes; "
                             f"got context_shape={context_shape}, num_classes={num_classes}.")
        self.context_shape = None if context_shape is None else tuple(
            None if n is None else int(n) for n in context_shape)
        if isinstance(context_encoder, dict):
            context_encoder = keras.saving.deserialize_keras_object(context_encoder)
        self.context_encoder = inputs.checked_encoder(context_encoder, self.context_shape,
                                                      num_classes)
        if self.context_shape is not None and context_encoder is None and (
                len(self.context_shape) != 1 or None in self.context_shape):
            raise ValueError(f"Flow: expected a vector context_shape like (k,) (or a "
                             f"context_encoder for observations of another shape); "
                             f"got {self.context_shape}.")
        self.num_classes = None if num_classes is None else int(num_classes)
        self.embedding_dim = int(embedding_dim)
        self.label_dropout = inputs.checked_label_dropout(label_dropout, self.num_classes)
        # With label dropout, row ``num_classes`` of the embedding is the null label.
        self.embedding = (keras.layers.Embedding(
            self.num_classes + (1 if self.label_dropout else 0), self.embedding_dim,
            name="context_embedding") if self.num_classes else None)
        self._label_noise = (keras.random.SeedGenerator(0, name="label_noise")
                             if self.label_dropout else None)
        self.latent_shape = build_sequence(self.flow_layers, (None,) + self.event_shape)[1:]
        self.discrete = bool(self.flow_layers) and isinstance(self.flow_layers[0], Dequantize)
        dtypes = {layer.dtype for layer in self.flow_layers} or {keras.config.floatx()}
        if len(dtypes) > 1:
            raise ValueError(f"Flow: expected flow layers of one dtype; got {sorted(dtypes)}.")
        self.float_dtype = tf.as_dtype(dtypes.pop())
        self.standardize_context = bool(standardize_context)
        self.context_mean = self.context_std = None
        if self.context_shape is not None:
            # Not trainable, not autocast (mixed precision): statistics that `adapt` sets.
            self.context_mean, self.context_std = (
                self.add_weight(name=weight, shape=self.context_shape[-1:],
                                initializer=initializer,
                                dtype=self.float_dtype, trainable=False, autocast=False,
                                aggregation="only_first_replica")
                for weight, initializer in (("context_mean", "zeros"), ("context_std", "ones")))
        # The epoch's mean NLL, logged as "loss" (Keras' own loss tracker is not used).
        self.nll_tracker = keras.metrics.Mean(name="loss")
        # Noise of the evaluation bound: reset by every evaluate(), so it is repeatable.
        self._evaluation_noise = keras.random.SeedGenerator(0, name="evaluation_noise")
        self._functions = GraphFunctions()
        # Set by compile: how fit runs its steps (tfp_flows.training) and the gradients.
        self.engine = Engine()
        self.backprop = "store"
        self._replica_jit = False
        # One pass on zeros builds the lazily-built parts (conditioners, embedding).
        self._normalize(tf.zeros((1,) + self.event_shape), self._dummy_context(1), False)
        self.built = True

    # -- the density --------------------------------------------------------------------

    @property
    def conditional(self) -> bool:
        return self.context_shape is not None or self.num_classes is not None

    @property
    def event_size(self) -> int:
        return int(np.prod(self.event_shape))

    @property
    def num_values(self) -> int | None:
        """Number of discrete values per dimension of a dequantized flow (256 for 8-bit
        pixels); None if continuous."""
        return self.flow_layers[0].num_values if self.discrete else None

    def layers_tree(self) -> list:
        """Every flow layer, nested ones (a multiscale flow's deeper levels) included."""
        return list(walk(self.flow_layers))

    def base(self) -> tfd.Distribution:
        """The standard-normal base over the latent shape, in the flow's dtype."""
        zero, one = tf.constant(0.0, self.float_dtype), tf.constant(1.0, self.float_dtype)
        return tfd.Sample(tfd.Normal(zero, one), sample_shape=self.latent_shape)

    def bijector(self, context=None) -> tfp.bijectors.Bijector:
        """The whole flow as one bijector: ``forward`` decodes (samples), ``inverse`` encodes."""
        return LayerChain(self.flow_layers, self.embed_context(self._check_context(context)),
                          event_ndims=len(self.event_shape))

    def distribution(self, context=None) -> tfd.TransformedDistribution:
        """``tfd.TransformedDistribution(base, bijector)`` over the data space.

        For a discrete (dequantized) flow it is the density of ``k + u`` in data units:
        ``flow.score(k) == distribution().log_prob(k + 0.5)``.
        """
        return tfd.TransformedDistribution(self.base(), self.bijector(context))

    def _normalize(self, x, context, training, noise=None):
        chain = LayerChain(self.flow_layers, self.embed_context(context, training), training,
                           event_ndims=len(self.event_shape), noise=noise)
        return chain.inverse_and_log_det(x)

    def _log_prob(self, x, context, training, noise=None):
        z, log_det = self._normalize(x, context, training, noise)
        dtype = self.float_dtype
        return self.base().log_prob(tf.cast(z, dtype)) + tf.cast(log_det, dtype)

    # -- graph-level methods: checked tensors in, tensors out ----------------------------
    # The seam that the eager methods, the evaluation step, `tfp_flows.export` and
    # hand-written training loops share; see "Eager and graph-level methods" above.

    def graph_log_prob(self, x, context=None, *, seed=None, training: bool = False):
        """``log p(x | context)`` per example, as a graph function (no Python checks).

        Continuous flows: the exact log-density (``seed`` is not used). Discrete
        (dequantized) flows: one draw of the uniform-dequantization bound,
        ``log p(k + u)`` with ``u ~ U(0, 1)^D`` from the stateless ``seed``; `log_prob`
        averages such draws. ``training=True`` gives the training step's density
        instead: layers run in training mode (ActNorm's data initialisation) and a
        `Dequantize` layer draws ``u`` from its own Keras ``SeedGenerator``.

        Args:
            x: ``[batch, *event_shape]`` data, already checked (`tfp_flows.models.inputs`).
            context: None, or one checked context per example.
            seed: for a discrete flow's evaluation draw, two integers (an int64 tensor of
                shape ``[2]``): the same seed gives the same ``u``. Not with ``training``.
            training: the training-mode density (see above).

        Returns:
            ``[batch]`` log-densities in nats, in the flow's float dtype.
        """
        if training:
            if seed is not None:
                raise ValueError(f"{self.name}: expected seed=None with training=True (the "
                                 f"training noise has its own generator); got seed={seed}.")
            return self._log_prob(x, context, True)
        if not self.discrete:
            return self._log_prob(x, context, False)
        if seed is None:
            raise ValueError(f"{self.name}: expected a seed (two integers) for the "
                             "dequantization draw of a discrete flow; got None "
                             "(graph_score is the deterministic midpoint).")
        seed = tf.cast(tf.math.floormod(seed, 2**31 - 1), tf.int32)
        noise = tf.random.stateless_uniform(tf.shape(x), seed=seed, dtype=self.float_dtype,
                                            alg="philox")
        return self._log_prob(x, context, False, noise)

    def graph_score(self, x, context=None):
        """`score` as a graph function: ``log p(k + 1/2)`` per example for a discrete
        flow (the deterministic midpoint), the exact ``log p(x)`` for a continuous one.
        Arguments as `graph_log_prob`'s."""
        return self._log_prob(x, context, False)

    def graph_encode(self, x, context=None):
        """`encode` as a graph function: checked data ``[batch, *event_shape]`` (and one
        context per example) to latents ``[batch, *latent_shape]``; ``bijector.inverse``."""
        return self._normalize(x, context, False)[0]

    def graph_decode(self, z, context=None, guidance=None):
        """`decode` as a graph function: latents ``[batch, *latent_shape]`` (and one
        context per example) to data; ``bijector.forward``, no clipping. ``guidance``:
        a weight ``w`` of classifier-free guidance (see `sample`), or None."""
        embedded = self.embed_context(context)
        if guidance is not None:
            null = tf.fill(tf.shape(context)[:1], self.num_classes)
            embedded = Guidance(embedded, self.embed_context(null),
                                tf.cast(guidance, self.float_dtype))
        return LayerChain(self.flow_layers, embedded).forward(z)

    def graph_sample(self, num_samples, context=None, *, seed, temperature=1.0,
                     guidance=None):
        """`sample` as a graph function: ``graph_decode(temperature * eps)`` with
        stateless ``eps ~ N(0, I)``.

        Args:
            num_samples: scalar int32 tensor (or int).
            context: None, one checked context for every sample (a vector, one raw
                observation, or a scalar label), or one per sample (the eager `sample`
                given a batch of contexts draws ``num_samples`` per context instead).
            seed: scalar integer tensor (or int); the same seed gives the same samples.
            temperature: scalar; below 1 is Glow's reduced-temperature sampling.
            guidance: None, or the weight of classifier-free guidance (see `sample`).

        Returns:
            ``[num_samples, *event_shape]`` samples; a dequantized flow's are clipped to
            the data range ``[0, num_values]``.
        """
        shape = tf.concat([[num_samples], tf.constant(self.latent_shape, tf.int32)], 0)
        noise = tf.random.stateless_normal(shape, seed=tf.stack([tf.cast(seed, tf.int64), 0]),
                                           dtype=self.float_dtype)
        if context is not None and self._is_single_context(context):
            context = tf.repeat(context[None], num_samples, axis=0)
        x = self.graph_decode(tf.cast(temperature, self.float_dtype) * noise, context, guidance)
        if self.discrete:
            x = tf.clip_by_value(x, tf.constant(0.0, x.dtype), tf.cast(self.num_values, x.dtype))
        return x

    def _is_single_context(self, context) -> bool:
        return context.shape.rank == (0 if self.num_classes is not None
                                      else len(self.context_shape))

    # -- eager methods: checked in Python, run as cached graphs ---------------------------

    def call(self, x, context=None, training=False):
        """``log p(x | context)`` for a batch (one bound draw, seed 0, if discrete)."""
        x, context = self._check_x(x), self._check_context(context, x)
        if training:
            return self.graph_log_prob(x, context, training=True)
        return self.graph_log_prob(x, context, seed=tf.constant([0, 0], tf.int64))

    def _compiled(self, name: str, fn):
        """``fn`` as a cached ``tf.function``: the graph the export serves, so in-memory
        and served numbers agree to float32 rounding, and fast after the first call."""
        return self._functions.get(name, fn)

    def log_prob(self, x, context=None, *, num_draws: int = 1, seed: int = 0,
                 importance_weighted: bool = False):
        """``log p(x | context)`` in nats, one value per example.

        Continuous flows: the exact log-density (the keywords do nothing). Discrete
        (dequantized) flows: an estimate of ``log P(k)`` from ``num_draws`` fresh draws
        ``u_i ~ U(0, 1)^D``, repeatable for ``seed``: the uniform-dequantization bound
        ``mean_i log p(k + u_i)``, whose expectation is the figure papers report, or
        with ``importance_weighted=True`` Flow++'s bound ``log mean_i p(k + u_i)``
        (Ho et al., arXiv:1902.00275), tighter as ``num_draws`` grows. Each draw costs
        one normalizing pass.
        """
        x, context = self._check_x(x), self._check_context(context, x)
        if not self.discrete:
            return self._compiled("log_prob", self.graph_score)(x, context)
        if int(num_draws) < 1:
            raise ValueError(f"{self.name}: expected num_draws >= 1; got {num_draws}.")
        draw = self._compiled("log_prob_draw",
                              lambda x, c, seed: self.graph_log_prob(x, c, seed=seed))
        draws = tf.stack([draw(x, context, tf.constant([seed, k], tf.int64))
                          for k in range(int(num_draws))])
        if importance_weighted:
            return tf.reduce_logsumexp(draws, 0) - math.log(int(num_draws))
        return tf.reduce_mean(draws, 0)

    def score(self, x, context=None):
        """A deterministic log-density score: ``log p(k + 1/2)`` for a discrete flow
        (the midpoint of each bin, for anomaly scores and serving; not a bound, and not
        what papers call bits/dim), ``log p(x)`` itself for a continuous one."""
        x, context = self._check_x(x), self._check_context(context, x)
        return self._compiled("score", self.graph_score)(x, context)

    def export(self, path, version: int | None = 1, next_version: bool = False,
               overwrite: bool = False):
        """Writes a TensorFlow Serving SavedModel; see `tfp_flows.export.export`."""
        from tfp_flows.export import export

        return export(self, path, version, next_version, overwrite)

    def bits_per_dim(self, x, context=None, *, num_draws: int = 1, seed: int = 0,
                     importance_weighted: bool = False):
        """``-log p(x) / (D log 2)`` per example; for discrete data the
        uniform-dequantization bound of `log_prob` (same keywords), in data units."""
        log_p = self.log_prob(x, context, num_draws=num_draws, seed=seed,
                              importance_weighted=importance_weighted)
        return metrics.bits_per_dim(-log_p, self.event_size)

    def encode(self, x, context=None):
        """Data to latent (the normalizing direction, ``bijector.inverse``)."""
        x, context = self._check_x(x), self._check_context(context, x)
        return self._compiled("encode", self.graph_encode)(x, context)

    def decode(self, z, context=None):
        """Latent to data (the sampling direction, ``bijector.forward``)."""
        z = tf.convert_to_tensor(z, self.float_dtype)
        if tuple(z.shape[1:]) != self.latent_shape:
            raise ValueError(f"{self.name}: expected latents of shape (batch, "
                             f"{', '.join(map(str, self.latent_shape))}); got {tuple(z.shape)}.")
        return self._compiled("decode", self.graph_decode)(z, self._check_context(context, z))

    def sample(self, num_samples: int, context=None, temperature: float = 1.0, seed=None,
               *, batch_size: int = 65536, guidance: float = 0.0):
        """``num_samples`` draws ``decode(temperature * eps)``, ``eps ~ N(0, I)``.

        ``seed`` (an int) makes the draw repeatable; ``temperature < 1`` is Glow's
        reduced-temperature sampling. A dequantized flow's samples are clipped to the
        data range ``[0, num_values]``.

        Context: none, or a single one (a label, a vector, one raw observation): returns
        ``[num_samples, *event_shape]``. A batch of ``B`` contexts (one posterior per
        observation, as in simulation-based calibration): ``num_samples`` draws given
        each, ``[B, num_samples, *event_shape]``, decoded ``max(1, batch_size //
        num_samples)`` contexts at a time, so a pass holds at most ``max(batch_size,
        num_samples)`` rows; the draws given context ``i`` depend on ``seed`` and ``i``
        alone, not on ``batch_size``. Cost: one sampling pass per row.

        Classifier-free guidance (Ho & Salimans, arXiv:2207.12598; TarFlow's, Zhai et al.
        arXiv:2412.06329): with ``guidance = w != 0`` every conditioner's outputs given
        the label, ``theta_c``, and given the null label, ``theta_u``, are combined as
        ``theta_c + w (theta_c - theta_u)`` (for TarFlow the shift and the bounded
        log-scale of each token), which sharpens the samples towards their class. Needs
        a class-label flow trained with ``label_dropout > 0`` whose conditional layers
        all support it (`layers.TransformerAutoregressive`); twice the conditioner cost.
        The guided samples are not draws from ``p(x | label)``.
        """
        num_samples = int(num_samples)
        if num_samples < 1:
            raise ValueError(f"sample: expected num_samples >= 1; got {num_samples}.")
        if seed is None:
            seed = np.random.randint(0, 2**31 - 1)
        guidance = inputs.checked_guidance(self, guidance, context)
        if context is not None and self.conditional:
            context = self._check_context(context)
            if not self._is_single_context(context):
                return self._sample_per_context(num_samples, context, temperature, seed,
                                                int(batch_size), guidance)
        context = self._check_context(context, tf.zeros((num_samples, 0)))
        arguments = (tf.constant(num_samples, tf.int32), context,
                     tf.constant(temperature, self.float_dtype), tf.constant(seed, tf.int64))
        if guidance is not None:
            return self._compiled("sample_guided", lambda n, c, t, s, g: self.graph_sample(
                n, c, seed=s, temperature=t, guidance=g))(*arguments, guidance)
        return self._compiled("sample", lambda n, c, t, s: self.graph_sample(
            n, c, seed=s, temperature=t))(*arguments)

    def _sample_per_context(self, num_samples, contexts, temperature, seed, batch_size,
                            guidance=None):
        """``[B, num_samples, *event]``: ``num_samples`` draws given each of ``B`` contexts,
        in chunks of contexts; context ``i``'s noise has the stateless seed ``(seed, i + 1)``."""
        if batch_size < 1:
            raise ValueError(f"sample: expected batch_size >= 1; got {batch_size}.")
        latent = tf.constant(self.latent_shape, tf.int32)

        def draw(n, chunk, first, t, s, g=None):
            def noise(i):
                shape = tf.concat([[n], latent], 0)
                return tf.random.stateless_normal(shape, tf.stack([s, i + 1]),
                                                  dtype=self.float_dtype)

            eps = tf.map_fn(noise, first + tf.range(tf.shape(chunk, tf.int64)[0]),
                            fn_output_signature=self.float_dtype)
            eps = tf.reshape(eps, tf.concat([[-1], latent], 0))
            x = self.graph_decode(t * eps, tf.repeat(chunk, n, axis=0), g)
            if self.discrete:
                x = tf.clip_by_value(x, tf.constant(0.0, x.dtype),
                                     tf.cast(self.num_values, x.dtype))
            return tf.reshape(x, tf.concat([[-1, n], tf.shape(x)[1:]], 0))

        guided = () if guidance is None else (guidance,)
        function = self._compiled("sample_per_context" + ("_guided" if guided else ""), draw)
        step = max(1, batch_size // num_samples)
        arguments = (tf.constant(num_samples, tf.int32), tf.constant(temperature,
                                                                     self.float_dtype),
                     tf.constant(seed, tf.int64), *guided)
        chunks = [function(arguments[0], contexts[start:start + step],
                           tf.constant(start, tf.int64), *arguments[1:])
                  for start in range(0, int(contexts.shape[0]), step)]
        return tf.concat(chunks, 0)

    # -- training -----------------------------------------------------------------------
    # Keras' hooks; how the steps of a fit run is the engine's (`tfp_flows.training`).

    @property
    def metrics(self):
        return [self.nll_tracker]

    def _unpack(self, data):
        """``(x, context, sample_weight)`` of a batch; an unconditional flow ignores the
        empty placeholder context that carries its weights (see `fit`)."""
        x, context, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        return x, context if self.conditional else None, sample_weight

    def _nll_step(self, data, training):
        x, context, sample_weight = self._unpack(data)
        return metrics.nll(self._log_prob(x, context, training), sample_weight)

    def _update_metrics(self, nll, data):
        # As Keras' own loss tracker: the epoch's loss is the mean over examples.
        batch = tf.shape(tf.nest.flatten(data)[0])[0]
        self.nll_tracker.update_state(nll, sample_weight=batch)
        return self.metrics_logs()

    def metrics_logs(self):
        """``{"loss", "bits_per_dim"}`` of the steps so far this epoch (read only)."""
        loss = self.nll_tracker.result()  # bits/dim is a fixed multiple: one tracker
        results = {"loss": loss, "bits_per_dim": metrics.bits_per_dim(loss, self.event_size)}
        if is_multi_worker(tf.distribute.get_strategy()):
            # Keras 3 reduces metrics across workers with a mean over axis 0, which a
            # scalar does not have: hand it vectors of one element.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    def compile(self, optimizer="adam", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution="auto",
                jit_compile="auto", auto_scale_loss=True, *, backprop: str = "store",
                engine: str = "fused"):
        """`keras.Model.compile`; no loss is needed (the loss is the NLL).

        The defaults are the fast path. ``jit_compile="auto"`` is XLA on one device, a
        CPU included (Keras' own "auto" leaves a CPU without XLA), unless ``run_eagerly``;
        where XLA cannot compile the step the flow warns once and trains without it.

        ``engine="fused"`` (default) runs the steps of an execution in one XLA program
        and lets ``steps_per_execution="auto"`` choose their number: 32 in the first
        ``fit``, which times them, then about 0.25 s of steps per execution (at most
        128); an integer is used as given. ``engine="keras"`` is Keras' own train
        function ("auto" is then 1). Both mean the same by every ``fit`` argument
        (`tfp_flows.training.engine`); callbacks and the progress bar run once per
        execution.

        ``backprop="inverse"`` trains without storing activations: the backward pass
        recomputes each layer's input from its output through the flow's own inverse,
        so memory does not grow with depth, for about one more normalizing pass per
        step (`tfp_flows.training.inverse_backprop`). ``"store"`` (default) is autodiff.

        Under a strategy with several replicas, ``jit_compile=True`` compiles each
        replica's gradient computation with XLA and leaves the cross-replica update to
        TensorFlow (XLA cannot compile the all-reduce of a multi-device step), and
        ``steps_per_execution`` is 1: Keras 3.15's multi-step loop fails under
        ``MirroredStrategy`` for any model ("You must feed a value for placeholder").
        """
        replicas = self.distribute_strategy.num_replicas_in_sync
        one_device = replicas == 1 and not is_multi_worker(self.distribute_strategy)
        if jit_compile == "auto" and one_device and not run_eagerly:
            jit_compile = True
        if steps_per_execution not in ("auto", None, 1) and not one_device:
            warnings.warn(f"{self.name}: steps_per_execution={steps_per_execution} "
                          f"is set to 1 under a strategy with {replicas} replicas (Keras' "
                          "multi-step loop fails there).", stacklevel=2)
            steps_per_execution = 1
        self.backprop = check_backprop(self, backprop)
        super().compile(optimizer, loss, loss_weights, metrics, weighted_metrics, run_eagerly,
                        1, jit_compile, auto_scale_loss)
        self.engine = Engine(engine, steps_per_execution, fuses=one_device
                             and self.jit_compile is True and not self.run_eagerly)
        self.steps_per_execution = self.engine.steps_per_execution
        self._replica_jit = bool(self.jit_compile) and replicas > 1
        self._functions.clear("replica_step")  # traced per mode
        if self._replica_jit:
            self.jit_compile = False

    def get_compile_config(self):
        """Keras' compile config with the flow's own arguments (engine, backprop, "auto")."""
        config = super().get_compile_config()
        if config is not None:
            config = {**config, **self.engine.config(), "backprop": self.backprop}
        return config

    def nll_and_gradients(self, data) -> tuple:
        """The batch's NLL and the gradients of ``trainable_variables``: what `train_step` uses.

        ``data`` is a batch as `fit` hands it (``x``, ``(x, context)`` or ``(x, context,
        sample_weight)``). The NLL is `tfp_flows.metrics.nll`: with weights Keras'
        reduction ``-sum_i w_i log p(x_i) / N``. The gradients are those of
        ``optimizer.scale_loss(nll / replicas)`` (Keras sums them across replicas, so
        any optimizer sees the mean), in the mode that ``compile(backprop=...)`` chose:
        ``"store"`` by autodiff through the stored activations, ``"inverse"`` by
        recomputing each layer's input from its output
        (`tfp_flows.training.inverse_backprop`); the two agree to float rounding. Needs
        a compiled flow (its optimizer); runs eagerly or inside a traced step alike.

        Returns:
            ``(nll, gradients)``: the NLL in nats per example (a scalar) and one
            gradient per trainable variable, in their order (None for one the loss
            does not reach), as ``GradientTape.gradient`` gives them.
        """
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if self.backprop == "inverse":
            x, context, sample_weight = self._unpack(data)
            return inverse_gradients(self, x, context,
                                     lambda nll: self.optimizer.scale_loss(nll / replicas),
                                     sample_weight)
        with tf.GradientTape() as tape:
            nll = self._nll_step(data, training=True)
            # Keras sums gradients across replicas: divide so any optimizer sees the mean.
            loss = self.optimizer.scale_loss(nll / replicas)
        return nll, tape.gradient(loss, self.trainable_variables)

    def train_step(self, data):
        """One optimizer step on a batch: its NLL and gradients, applied.

        Guarded (a ``fit`` with `tfp_flows.callbacks.StopOnNonFiniteLoss` or
        ``keras.callbacks.TerminateOnNaN``; `tfp_flows.training.Engine.guarded`): a step
        whose loss or gradients are NaN or infinite changes no weight and no optimizer
        slot (as Keras' ``LossScaleOptimizer`` skips a step) and its loss enters the logs,
        so the callback stops with the state of the last finite step. Unguarded, the
        step is Keras' own (the check costs XLA a conditional: about 2x the compile time
        of a small Glow's step). Under a strategy with several replicas the update is
        always applied (a skipped update cannot synchronise replicas there).
        """
        if self._replica_jit:
            nll, gradients = self._functions.get("replica_step", self.nll_and_gradients,
                                                 jit_compile=True)(data)
        else:
            nll, gradients = self.nll_and_gradients(data)
        variables = self.trainable_variables
        if not self.engine.guarded or tf.distribute.get_strategy().num_replicas_in_sync > 1:
            self.optimizer.apply(gradients, variables)
            return self._update_metrics(nll, data)
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(value)) for value in
                                [nll] + [g for g in gradients if g is not None]])

        def apply():
            self.optimizer.apply(gradients, variables)
            return tf.constant(True)

        tf.cond(finite, apply, lambda: tf.constant(False))
        return self._update_metrics(nll, data)

    def make_train_function(self, force=False):
        """The engine's train function for the ``fit`` that starts, or Keras' own
        (`tfp_flows.training.engine`). The optimizer is built first, so the step is
        traced once."""
        if isinstance(self.optimizer, keras.optimizers.Optimizer) and not self.optimizer.built:
            # Built here, not in the first traced step: a step that creates variables
            # is traced twice by tf.function, which doubles the time to the first step.
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)
        function = self.engine.train_function(self, on_fallback=self._without_xla)
        if function is None:  # Keras' own, traced again where the guard changed
            return super().make_train_function(force or self.engine.retrace)
        self.train_function = function
        return function

    def _without_xla(self):
        """The engine could not compile the step with XLA: nor will evaluation."""
        self.jit_compile = False
        self.test_function = self.predict_function = None

    def test_step(self, data):
        """The NLL of a batch; for discrete data the dequantization bound, one fresh draw
        of ``u`` per example from a generator that every ``evaluate`` call restarts."""
        x, context, sample_weight = self._unpack(data)
        if self.discrete:
            log_p = self.graph_log_prob(x, context, seed=self._evaluation_noise.next())
        else:
            log_p = self._log_prob(x, context, False)
        return self._update_metrics(metrics.nll(log_p, sample_weight), data)

    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """`keras.Model.fit`, every argument as Keras means it, with the data checked first.

        ``y`` is the context of a conditional flow. ``sample_weight`` weights each
        example's NLL (Keras' reduction, `tfp_flows.metrics.nll`; negative weights
        allowed), for an unconditional flow too (Keras itself would drop weights given
        without ``y``). Standardisation not yet set by `adapt` is set first, by `adapt`
        on the training rows (a dataset's first batch), unless the optimizer has taken
        a step (`tfp_flows.models.adaptation.adapt_for_fit`). ActNorm layers not yet
        initialised are then initialised, by
        `initialize` on ``batch_size`` rows of the training data drawn at random
        (seeded), or a dataset's first batch. The steps run on the compiled engine
        (`tfp_flows.training.engine`).
        """
        self._check_training_data(x, y, validation_data)
        y, validation_data = weights.placed(self, x, y, sample_weight, validation_data)
        split = validation_split if validation_data is None else 0.0  # Keras ignores it then
        adapt_for_fit(self, x, y, split)
        initialize_for_fit(self, x, y, batch_size or 32, split)
        if isinstance(validation_data, tf.data.Dataset):
            validation_data = self._checked_dataset(validation_data)
        kwargs = dict(batch_size=batch_size, epochs=epochs, verbose=verbose, callbacks=callbacks,
                      validation_split=validation_split, validation_data=validation_data,
                      shuffle=shuffle, class_weight=class_weight, sample_weight=sample_weight,
                      initial_epoch=initial_epoch, steps_per_epoch=steps_per_epoch,
                      validation_steps=validation_steps,
                      validation_batch_size=validation_batch_size,
                      validation_freq=validation_freq)
        x, y, kwargs = self.engine.plan(self, self._checked_dataset(x), y, kwargs)
        if self.steps_per_execution != self.engine.steps_per_execution:
            self.steps_per_execution = self.engine.steps_per_execution
            self.test_function = None  # Keras traces its grouping into the function
        try:
            return super().fit(x, y, **kwargs)
        finally:
            self.engine.end_fit()

    def initialize(self, x, context=None, *, row_ids=None) -> None:
        """Glow's data-dependent initialisation of every ActNorm layer not yet initialised,
        from the batch ``x``, now: one normalizing pass in training mode.

        `fit` calls it before its first step. Refuses data it cannot use before any
        weight changes: non-finite values, or values whose scale overflows the flow's
        dtype (the initial scale would be infinite), with a ``ValueError`` naming the rows
        (``row_ids``: their names in the data the batch was drawn from; default their
        positions). Cost: one normalizing pass over the batch
        (`tfp_flows.training.initialization`).
        """
        x = self._check_x(x)
        initialize_actnorm(self, x, self._check_context(context, x), row_ids)

    def adapt(self, x, context=None, *, batch_size: int = 4096) -> None:
        """Sets the flow's standardisation from training data, as Keras' preprocessing
        layers' ``adapt`` does: every `tfp_flows.layers.Standardize` layer of the top level
        to the mean and standard deviation of its input (the data pushed through the
        layers before it), and, for a continuous context with ``standardize_context``,
        ``context_mean`` and ``context_std`` to the contexts' per feature of the last axis
        (pooled over a set's elements, a series' steps; a constant feature keeps
        ``std = 1``). A flow with neither is left as it is.

        ``fit`` calls it on its training rows when nothing has set the statistics (and
        the optimizer has taken no step); call it yourself to set them from other data,
        or from every batch of a dataset, before ``fit`` (adapting a trained flow changes
        the map it learned). Refuses rows with
        NaN or infinity, naming their positions, before any weight changes. Cost: a
        pass over the data per `Standardize` layer, in batches of ``batch_size``.

        Args:
            x: the training data, an array ``[n, *event_shape]``, or a ``tf.data``
                dataset of batches of ``x`` or ``(x, context)`` pairs.
            context: the training contexts (arrays only; one per row, or one for all).
        """
        adapt_flow(self, x, context, batch_size)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False, **kwargs):
        """`keras.Model.evaluate`, with the data checked first. For discrete data the
        loss and bits/dim are the dequantization bound over one fresh draw of ``u`` per
        example; the draws restart with every call, so a call is repeatable.
        ``sample_weight`` weights the NLL as in `fit`."""
        self._check_training_data(x, None if weights.is_no_context(self, y) else y, None)
        y, _ = weights.placed(self, x, y, sample_weight, None)
        self._evaluation_noise.state.assign(tf.zeros_like(self._evaluation_noise.state))
        return super().evaluate(self._checked_dataset(x), y, batch_size, verbose, sample_weight,
                                steps, callbacks, return_dict, **kwargs)

    # -- checks (tfp_flows.models.inputs) ------------------------------------------------

    def _check_x(self, x):
        return inputs.check_x(self, x)

    def _check_context(self, context, x=None):
        return inputs.check_context(self, context, x)

    def _checked_dataset(self, data):
        return inputs.checked_dataset(self, data)

    def embed_context(self, context, training=False):
        """The context the conditioners see (a graph-level method): a class label's
        learned embedding, ``[batch, embedding_dim]``, or a continuous context cast to
        the flow's dtype and standardised (``(context - context_mean) / context_std``,
        the identity until `adapt`), then mapped by the ``context_encoder`` if there is
        one; None for None. Takes one checked context per example.

        With ``label_dropout = p`` and ``training``, each label is replaced by the null
        label ``num_classes`` with probability ``p`` (Philox draws from the flow's seed
        state), so the flow also learns ``p(x)`` without a label: classifier-free
        guidance (`sample`'s ``guidance``) needs both."""
        if context is None:
            return None
        if self.embedding is not None:
            labels = tf.cast(tf.reshape(context, [-1]), tf.int32)
            if training and self.label_dropout:
                seed = tf.cast(tf.math.floormod(self._label_noise.next(), 2**31 - 1), tf.int32)
                drop = tf.random.stateless_uniform(tf.shape(labels), seed=seed,
                                                   alg="philox") < self.label_dropout
                labels = tf.where(drop, self.num_classes, labels)
            return tf.cast(self.embedding(labels), self.float_dtype)
        context = (tf.cast(context, self.float_dtype) - self.context_mean) / self.context_std
        if self.context_encoder is None:
            return context
        return tf.cast(self.context_encoder(context), self.float_dtype)

    def _dummy_context(self, batch):
        if self.num_classes is not None:
            return tf.zeros((batch,), tf.int32)
        if self.context_shape is not None:
            shape = tuple(1 if n is None else n for n in self.context_shape)
            return tf.zeros((batch,) + shape, self.float_dtype)
        return None

    def _check_training_data(self, x, y, validation_data):
        inputs.check_training_data(self, x, y, validation_data)

    # -- saving -------------------------------------------------------------------------

    def get_config(self):
        return {"name": self.name,
                "flow_layers": [keras.saving.serialize_keras_object(layer)
                                for layer in self.flow_layers],
                "event_shape": list(self.event_shape),
                "context_shape": None if self.context_shape is None else list(self.context_shape),
                "num_classes": self.num_classes, "embedding_dim": self.embedding_dim,
                "standardize_context": self.standardize_context,
                "label_dropout": self.label_dropout,
                "context_encoder": None if self.context_encoder is None
                else keras.saving.serialize_keras_object(self.context_encoder)}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def load_own_variables(self, store):
        """Keras' loading of the flow's own weights (the context statistics); a file
        saved before the flow had them loads with the identity (no standardisation),
        which is the map it was trained with."""
        if self.context_mean is not None and len(list(store.keys())) == 0:
            return
        super().load_own_variables(store)

    def compile_from_config(self, config):
        """Compiles a loaded flow as it was saved: optimizer (whose state Keras then
        restores), XLA, steps per execution and ``backprop``."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)
