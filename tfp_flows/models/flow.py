"""`Flow`: a Keras model that is a density."""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.distribute import is_multi_worker
from tfp_flows.layers.base import LayerChain, build_sequence
from tfp_flows.layers.dequantize import Dequantize
from tfp_flows.models.fused_steps import fused_train_function

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

    Mixed precision: under ``mixed_float16`` / ``mixed_bfloat16`` the conditioners
    compute in 16 bits while log-dets, the base density and the loss stay float32;
    ``log_prob`` then agrees with float32 weights to 5e-2 nats (float16) and 2e-1
    nats (bfloat16, 8 mantissa bits) on a small RealNVP (``tests/test_flow.py``).

    Args:
        flow_layers: `tfp_flows.layers` in normalizing order (data first).
        event_shape: shape of one example, e.g. ``(2,)`` or ``(8, 8, 1)``.
        context_shape: shape of a continuous context vector, e.g. ``(3,)``.
        num_classes: for a class-label context (integers), embedded in ``embedding_dim``.
        embedding_dim: size of the label embedding.

    Example:
        >>> import tfp_flows
        >>> flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(8,))
        >>> flow.log_prob(np.zeros((3, 2), np.float32)).shape
        TensorShape([3])
    """

    def __init__(self, flow_layers, event_shape, context_shape=None, num_classes=None,
                 embedding_dim: int = 16, name: str = "flow", **kwargs):
        super().__init__(name=name, **kwargs)
        self.flow_layers = [keras.saving.deserialize_keras_object(layer)
                            if isinstance(layer, dict) else layer for layer in flow_layers]
        self.event_shape = tuple(int(n) for n in event_shape)
        if context_shape is not None and num_classes is not None:
            raise ValueError("Flow: expected at most one of context_shape and num_classes; "
                             f"got context_shape={context_shape}, num_classes={num_classes}.")
        self.context_shape = None if context_shape is None else tuple(int(n) for n in context_shape)
        if self.context_shape is not None and len(self.context_shape) != 1:
            raise ValueError(f"Flow: expected a vector context_shape like (k,); "
                             f"got {self.context_shape}.")
        self.num_classes = None if num_classes is None else int(num_classes)
        self.embedding_dim = int(embedding_dim)
        self.embedding = (keras.layers.Embedding(self.num_classes, self.embedding_dim,
                                                 name="context_embedding")
                          if self.num_classes else None)
        self.latent_shape = build_sequence(self.flow_layers, (None,) + self.event_shape)[1:]
        self.discrete = bool(self.flow_layers) and isinstance(self.flow_layers[0], Dequantize)
        self._loss_tracker = keras.metrics.Mean(name="loss")
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

    def base(self) -> tfd.Distribution:
        """The standard-normal base over the latent shape."""
        return tfd.Sample(tfd.Normal(0.0, 1.0), sample_shape=self.latent_shape)

    def bijector(self, context=None) -> tfp.bijectors.Bijector:
        """The whole flow as one bijector: ``forward`` decodes (samples), ``inverse`` encodes."""
        return LayerChain(self.flow_layers, self._embed(self._check_context(context)))

    def distribution(self, context=None) -> tfd.TransformedDistribution:
        """``tfd.TransformedDistribution(base, bijector)`` over the data space.

        For a discrete (dequantized) flow it is the density of ``k + u`` in data units,
        and ``flow.log_prob(k) == distribution().log_prob(k + 0.5)``.
        """
        return tfd.TransformedDistribution(self.base(), self.bijector(context))

    def _normalize(self, x, context, training):
        chain = LayerChain(self.flow_layers, self._embed(context), training,
                           event_ndims=len(self.event_shape))
        return chain.inverse_and_log_det(x)

    def _log_prob(self, x, context, training):
        z, log_det = self._normalize(x, context, training)
        return self.base().log_prob(tf.cast(z, tf.float32)) + tf.cast(log_det, tf.float32)

    def call(self, x, context=None, training=False):
        """``log p(x | context)`` for a batch; the Keras entry point."""
        return self._log_prob(self._check_x(x), self._check_context(context, x), training)

    def _compiled(self, name: str, fn, jit_compile: bool = False):
        """``fn`` as a cached ``tf.function``: the graph the export serves, so in-memory
        and served numbers agree to float32 rounding, and fast after the first call.

        No autograph: the flow has no tensor-dependent Python control flow, and
        autograph re-reads source files (and fails on lambdas) at trace time.
        """
        functions = self.__dict__.setdefault("_graph_functions", {})
        if name not in functions:
            functions[name] = tf.function(fn, reduce_retracing=True, autograph=False,
                                          jit_compile=jit_compile)
        return functions[name]

    def log_prob(self, x, context=None):
        """``log p(x | context)`` in nats, one value per example."""
        x, context = self._check_x(x), self._check_context(context, x)
        return self._compiled("log_prob", lambda x, c: self._log_prob(x, c, False))(x, context)

    def export(self, path, version: int | None = 1, next_version: bool = False,
               overwrite: bool = False):
        """Writes a TensorFlow Serving SavedModel; see `tfp_flows.export.export`."""
        from tfp_flows.export import export

        return export(self, path, version, next_version, overwrite)

    def bits_per_dim(self, x, context=None):
        """``-log p(x) / (D log 2)``; for dequantized data this counts the scaling."""
        return -self.log_prob(x, context) / (self.event_size * math.log(2.0))

    def encode(self, x, context=None):
        """Data to latent (the normalizing direction, ``bijector.inverse``)."""
        x, context = self._check_x(x), self._check_context(context, x)
        return self._compiled("encode", lambda x, c: self._normalize(x, c, False)[0])(x, context)

    def decode(self, z, context=None):
        """Latent to data (the sampling direction, ``bijector.forward``)."""
        z = tf.convert_to_tensor(z, tf.float32)
        if tuple(z.shape[1:]) != self.latent_shape:
            raise ValueError(f"{self.name}: expected latents of shape (batch, "
                             f"{', '.join(map(str, self.latent_shape))}); got {tuple(z.shape)}.")
        return self._compiled("decode", self._decode)(z, self._check_context(context, z))

    def _decode(self, z, context):
        return LayerChain(self.flow_layers, self._embed(context)).forward(z)

    def sample(self, num_samples: int, context=None, temperature: float = 1.0, seed=None):
        """``num_samples`` draws ``decode(temperature * eps)``, ``eps ~ N(0, I)``.

        ``seed`` (an int) makes the draw repeatable; ``temperature < 1`` is Glow's
        reduced-temperature sampling. A single context is used for every sample.
        A dequantized flow's samples are clipped to the data range ``[0, levels]``.
        """
        num_samples = int(num_samples)
        if num_samples < 1:
            raise ValueError(f"sample: expected num_samples >= 1; got {num_samples}.")
        if seed is None:
            seed = np.random.randint(0, 2**31 - 1)
        if context is not None and self.conditional:
            context = tf.convert_to_tensor(context)
            if not self._is_single_context(context):
                self._check_context(context, tf.zeros((num_samples, 0)))
        else:
            self._check_context(context)  # a conditional flow without one, or the reverse
        return self._compiled("sample", self._sample)(
            tf.constant(num_samples, tf.int32), context, tf.constant(temperature, tf.float32),
            tf.constant(seed, tf.int64))

    def _is_single_context(self, context) -> bool:
        return context.shape.rank == (0 if self.num_classes is not None else 1)

    def _sample(self, num_samples, context, temperature, seed):
        """Graph-friendly sampling: stateless noise from ``seed``, one context or a batch."""
        shape = tf.concat([[num_samples], tf.constant(self.latent_shape, tf.int32)], 0)
        noise = tf.random.stateless_normal(shape, seed=tf.stack([tf.cast(seed, tf.int64), 0]))
        if context is not None and self._is_single_context(context):
            context = tf.repeat(context[None], num_samples, axis=0)
        x = self._decode(tf.cast(temperature, tf.float32) * noise, context)
        if self.discrete:
            x = tf.clip_by_value(x, 0.0, float(self.flow_layers[0].levels))
        return x

    # -- training -----------------------------------------------------------------------

    @property
    def metrics(self):
        return [self._loss_tracker]

    def _unpack(self, data):
        x, context, _ = keras.utils.unpack_x_y_sample_weight(data)
        return x, context

    def _nll_step(self, data, training):
        x, context = self._unpack(data)
        nll = -tf.reduce_mean(self._log_prob(x, context, training))
        return nll

    def _update_metrics(self, nll):
        self._loss_tracker.update_state(nll)
        return self.metrics_logs()

    def metrics_logs(self):
        """``{"loss", "bits_per_dim"}`` of the steps so far this epoch (read only)."""
        loss = self._loss_tracker.result()  # bits/dim is a fixed multiple: one tracker
        results = {"loss": loss, "bits_per_dim": loss / (self.event_size * math.log(2.0))}
        if is_multi_worker(tf.distribute.get_strategy()):
            # Keras 3 reduces metrics across workers with a mean over axis 0, which a
            # scalar does not have: hand it vectors of one element.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    def compile(self, optimizer="adam", *args, jit_compile="auto", **kwargs):
        """`keras.Model.compile`; no loss is needed (the loss is the NLL).

        Under a strategy with several replicas, ``jit_compile=True`` compiles each
        replica's gradient computation with XLA and leaves the cross-replica update to
        TensorFlow (XLA cannot compile the all-reduce of a multi-device step), and
        ``steps_per_execution`` is 1: Keras 3.15's multi-step loop fails under
        ``MirroredStrategy`` for any model ("You must feed a value for placeholder").
        """
        replicas = self.distribute_strategy.num_replicas_in_sync
        if replicas > 1 and kwargs.get("steps_per_execution", 1) != 1:
            warnings.warn(f"{self.name}: steps_per_execution={kwargs['steps_per_execution']} "
                          f"is set to 1 under a strategy with {replicas} replicas (Keras' "
                          "multi-step loop fails there).", stacklevel=2)
            kwargs["steps_per_execution"] = 1
        super().compile(optimizer, *args, jit_compile=jit_compile, **kwargs)
        self._replica_jit = bool(self.jit_compile) and \
            self.distribute_strategy.num_replicas_in_sync > 1
        if self._replica_jit:
            self.jit_compile = False

    def _gradients(self, data):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            nll = self._nll_step(data, training=True)
            # Keras sums gradients across replicas: divide so any optimizer sees the mean.
            loss = self.optimizer.scale_loss(nll / replicas)
        return nll, tape.gradient(loss, self.trainable_variables)

    def train_step(self, data):
        if getattr(self, "_replica_jit", False):
            nll, gradients = self._compiled("replica_step", self._gradients, jit_compile=True)(data)
        else:
            nll, gradients = self._gradients(data)
        self.optimizer.apply(gradients, self.trainable_variables)
        return self._update_metrics(nll)

    def make_train_function(self, force=False):
        """Keras' train function, but under XLA on one device all the
        ``steps_per_execution`` steps of an execution run in one XLA program, called
        from Python (`tfp_flows.models.fused_steps`): on a CPU that makes a small
        flow's step about 1.8x faster and a deep flow's first step start sooner. Other
        settings get Keras' own. The optimizer is built first, so the step is traced once.
        """
        if self.train_function is not None and not force:
            return self.train_function
        if isinstance(self.optimizer, keras.optimizers.Optimizer) and not self.optimizer.built:
            # Built here, not in the first traced step: a step that creates variables
            # is traced twice by tf.function, which doubles the time to the first step.
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)
        fuse = (self.jit_compile is True and not self.run_eagerly
                and self.distribute_strategy.num_replicas_in_sync == 1
                and not is_multi_worker(self.distribute_strategy))
        if not fuse:
            return super().make_train_function(force)
        self.train_function = fused_train_function(self, self.steps_per_execution)
        return self.train_function

    def test_step(self, data):
        return self._update_metrics(self._nll_step(data, training=False))

    def fit(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.fit`, with the data checked before the first step.

        ActNorm layers that have not been initialised are initialised here, in one
        normalizing pass over the first training batch, before the compiled steps run.
        """
        self._check_training_data(x, y, kwargs.get("validation_data"))
        self._initialize_actnorm(x, y, kwargs.get("batch_size") or 32)
        return super().fit(x, y, *args, **kwargs)

    def _actnorms(self):
        from tfp_flows.layers.actnorm import ActNorm

        stack, found = list(self.flow_layers), []
        while stack:
            layer = stack.pop()
            found += [layer] if isinstance(layer, ActNorm) else []
            stack += list(getattr(layer, "inner", []))
        return found

    def _initialize_actnorm(self, x, y, batch_size):
        actnorms = self._actnorms()
        if not actnorms:
            return
        if any(float(layer.initialized.numpy()) < 0.5 for layer in actnorms):
            if isinstance(x, tf.data.Dataset):
                first = next(iter(x))
                batch, context = self._unpack(first if isinstance(first, tuple) else (first,))
            elif isinstance(x, np.ndarray) or tf.is_tensor(x):
                # Rows drawn at random (seeded): data stored sorted by class or time
                # would give a biased first slice.
                rows = np.sort(np.random.default_rng(0).choice(
                    len(x), min(batch_size, len(x)), replace=False))
                batch = tf.gather(x, rows)
                context = None if y is None else tf.gather(y, rows)
            else:
                return  # other inputs (generators): layers initialise in the first step
            self._log_prob(tf.convert_to_tensor(batch), self._check_context(context), True)
        for layer in actnorms:
            layer.skip_initialization = True

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.evaluate`, with the data checked first."""
        self._check_training_data(x, y, None)
        return super().evaluate(x, y, *args, **kwargs)

    # -- checks -------------------------------------------------------------------------

    def _check_data_spec(self, shape, dtype):
        """ValueError unless ``shape``/``dtype`` describe a batch of this flow's events."""
        dtype = tf.as_dtype(dtype)
        if not (dtype.is_floating or dtype.is_integer):
            raise ValueError(f"{self.name}: expected numeric data; got dtype {dtype.name}.")
        if dtype.is_integer and not self.discrete:
            raise ValueError(
                f"{self.name}: got integer data ({dtype.name}) but this flow is continuous. "
                "Build it with a Dequantize layer first (Glow(..., levels=256) or "
                "levels=2**n_bits), or cast to float yourself.")
        shape = tuple(shape)
        if shape[1:] != self.event_shape:
            raise ValueError(f"{self.name}: expected data of shape (batch, "
                             f"{', '.join(map(str, self.event_shape))}); got {shape}.")

    def _check_x(self, x):
        if not tf.is_tensor(x):
            x = np.asarray(x)
        self._check_data_spec(x.shape, x.dtype)
        x = tf.convert_to_tensor(x)
        return x if self.discrete else tf.cast(x, tf.float32)

    def _context_spec(self) -> str:
        if self.num_classes is not None:
            return f"integer class labels in [0, {self.num_classes}) of shape (batch,)"
        return f"float vectors of shape (batch, {self.context_shape[0]})"

    def _check_context(self, context, x=None):
        if not self.conditional:
            if context is not None:
                raise ValueError(f"{self.name}: this flow is not conditional; got a context.")
            return None
        if context is None:
            raise ValueError(f"{self.name}: this flow is conditional and needs "
                             f"context=... ({self._context_spec()}).")
        context = tf.convert_to_tensor(context)
        if self.num_classes is not None:
            if context.shape.rank == 2 and context.shape[-1] == 1:
                context = tf.squeeze(context, -1)
            if context.shape.rank != 1 or not context.dtype.is_integer:
                raise ValueError(f"{self.name}: expected context as {self._context_spec()}; "
                                 f"got {context.dtype.name} of shape {tuple(context.shape)}.")
        elif context.shape.rank != 2 or context.shape[-1] != self.context_shape[0]:
            raise ValueError(f"{self.name}: expected context as {self._context_spec()}; "
                             f"got shape {tuple(context.shape)}.")
        if x is not None and x.shape[0] is not None and context.shape[0] is not None \
                and x.shape[0] != context.shape[0]:
            raise ValueError(f"{self.name}: expected one context per example; got "
                             f"{context.shape[0]} contexts for {x.shape[0]} examples.")
        return context

    def _embed(self, context):
        if context is None:
            return None
        if self.embedding is not None:
            return self.embedding(tf.cast(tf.reshape(context, [-1]), tf.int32))
        return tf.cast(context, tf.float32)

    def _dummy_context(self, batch):
        if self.num_classes is not None:
            return tf.zeros((batch,), tf.int32)
        if self.context_shape is not None:
            return tf.zeros((batch,) + self.context_shape)
        return None

    def _check_training_data(self, x, y, validation_data):
        if isinstance(x, np.ndarray) or isinstance(x, (list, tuple)) and not tf.is_tensor(x):
            array = np.asarray(x)
            self._check_data_spec(array.shape, array.dtype)
            if array.dtype.kind == "f":
                bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
                if bad.any():
                    raise ValueError(f"{self.name}: {int(bad.sum())} of {len(array)} training "
                                     "rows contain NaN or infinity; drop or impute them first.")
            if self.conditional or y is not None:
                self._check_context(None if y is None else np.asarray(y)[:1], array[:1])
                if y is not None and len(y) != len(array):
                    raise ValueError(f"{self.name}: expected one context per example; got "
                                     f"{len(y)} contexts for {len(array)} examples.")
        elif isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            x_spec = spec[0] if isinstance(spec, tuple) else spec
            self._check_data_spec(x_spec.shape, x_spec.dtype)
            if self.conditional and not isinstance(spec, tuple):
                raise ValueError(f"{self.name}: this flow is conditional; expected a dataset "
                                 f"of (x, context) pairs.")
        if isinstance(validation_data, tuple) and validation_data:
            self._check_training_data(validation_data[0], validation_data[1:2][0]
                                      if len(validation_data) > 1 else None, None)

    # -- saving -------------------------------------------------------------------------

    def get_config(self):
        return {"name": self.name,
                "flow_layers": [keras.saving.serialize_keras_object(layer)
                                for layer in self.flow_layers],
                "event_shape": list(self.event_shape),
                "context_shape": None if self.context_shape is None else list(self.context_shape),
                "num_classes": self.num_classes, "embedding_dim": self.embedding_dim}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
