"""In-memory arrays as one stream of shuffled epochs: one ``tf.data`` iterator per ``fit``.

Keras' ``fit`` on arrays builds a ``tf.data`` pipeline (a permutation per epoch,
batches gathered by index) and creates an iterator of it twice per epoch: one for
the epoch and one that the next epoch throws away. Each creation instantiates the
pipeline's functions and starts its prefetching threads, about 40 ms per epoch on
a 2-core CPU, against 80 ms of compiled steps for an epoch of two moons (79 batches
of 256, 8 couplings).

Here the same pipeline repeats: epoch ``e`` is a fresh permutation (the identity
with ``shuffle=False``) cut into ``ceil(n / batch_size)`` batches, the last one
smaller, as in Keras. ``fit`` gets it with ``steps_per_epoch``, so Keras keeps one
iterator for the whole ``fit``, and the fused trainer
(`tfp_flows.training.fused`) ends every execution at an epoch's last batch, so
each epoch trains on exactly the batches it would in Keras. Used where the fused
trainer runs and ``fit`` gets arrays (data, contexts, sample weights) and nothing
that changes how Keras slices them (no ``class_weight``, ``validation_split`` or
``steps_per_epoch``, ``shuffle`` True or False); other calls go to Keras as given.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

_KERAS_SLICES = ("class_weight", "validation_split", "steps_per_epoch")


def _array(value) -> bool:
    return isinstance(value, np.ndarray) or isinstance(value, tf.Tensor) and \
        tf.executing_eagerly() and not isinstance(value, (tf.RaggedTensor, tf.SparseTensor))


def applies(x, y, kwargs) -> bool:
    """Whether ``fit(x, y, **kwargs)`` can run on `repeated_epochs`."""
    weights = kwargs.get("sample_weight")
    return (_array(x) and (y is None or _array(y)) and len(x) > 0
            and (weights is None or _array(weights))
            and all(_unset(kwargs.get(name)) for name in _KERAS_SLICES)
            and kwargs.get("shuffle", True) in (True, False))


def _unset(value) -> bool:
    """None, or a number 0 (``validation_split=0.0``, Keras' default)."""
    return value is None or isinstance(value, (int, float)) and value == 0


def training_rows(rows: int, validation_split: float = 0.0) -> int:
    """How many leading rows Keras trains on: all but the ``validation_split`` it keeps
    from the end (``floor(rows (1 - split))``, as its ``train_validation_split``)."""
    return int(math.floor(rows * (1.0 - validation_split))) if validation_split else int(rows)


def steps_per_epoch(rows: int, batch_size: int) -> int:
    """Batches per epoch of ``rows`` rows, the last one smaller where ``batch_size`` does
    not divide ``rows``."""
    return math.ceil(int(rows) / int(batch_size))


class EpochStream:
    """Batches ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` of ``epochs`` epochs, each
    a new permutation of the rows (the identity with ``shuffle=False``) cut into
    ``ceil(n / batch_size)`` batches, the last one smaller, as in Keras; floats as Keras'
    ``floatx``, as Keras' own adapter gives them. Keras packs data the same way (``y``
    None drops the weights).

    Built once per structure (the parts' dtypes and trailing shapes, ``batch_size``,
    ``shuffle``, ``epochs``) and fed anew by each ``fit``: the rows and a seed live in
    variables the pipeline reads, so a second ``fit`` traces no ``tf.data`` function
    (building the pipeline costs about 25 ms, a sixteenth of a 4-epoch ``fit`` of two
    moons on a 2-core CPU). Epoch ``e`` of a ``fit`` is the stateless permutation of
    seed ``(s, e)``, ``s`` drawn from TensorFlow's global generator by `feed` (so
    ``keras.utils.set_random_seed`` repeats a run and two fits see different epochs).
    Finite: an endless stream's prefetching threads made deleting its iterator take
    0.5 s. Cost per batch: one gather of its rows from each part.
    """

    def __init__(self, parts, batch_size: int, shuffle: bool, epochs: int):
        self.key = _key(parts, batch_size, shuffle, epochs)
        with tf.device("/cpu:0"):  # where tf.data reads them
            self._parts = tuple(
                tf.Variable(tf.zeros([0, *part.shape[1:]], part.dtype), trainable=False,
                            shape=tf.TensorShape([None, *part.shape[1:]]))
                for part in parts)
            self._seed = tf.Variable(tf.zeros([2], tf.int64), trainable=False)
        self.dataset = self._batches(int(batch_size), bool(shuffle), int(epochs))

    def _batches(self, batch_size, shuffle, epochs):
        parts, seed = self._parts, self._seed

        def permutation(epoch):
            n = tf.shape(parts[0], out_type=tf.int64)[0]
            order = tf.range(n)
            if shuffle:
                order = tf.random.experimental.stateless_shuffle(
                    order, seed + epoch * tf.constant([0, 1], tf.int64))
            full = n // batch_size * batch_size
            last = tf.data.Dataset.from_tensors(order[full:])
            return tf.data.Dataset.from_tensor_slices(
                tf.reshape(order[:full], [-1, batch_size])).concatenate(
                last.take(tf.cast(full < n, tf.int64)))

        stream = tf.data.Dataset.range(epochs).flat_map(permutation).map(
            lambda rows: tuple(tf.gather(part, rows) for part in parts),
            num_parallel_calls=tf.data.AUTOTUNE)
        options = tf.data.Options()
        # As Keras' adapter: no graph rewrites.
        options.experimental_optimization.apply_default_optimizations = False
        options.experimental_external_state_policy = \
            tf.data.experimental.ExternalStatePolicy.IGNORE
        # No autotuning thread: deleting an iterator waits for it (10 to 100 ms at the
        # end of a fit on a 2-core CPU); AUTOTUNE then means tf.data's defaults.
        options.autotune.enabled = False
        return stream.with_options(options).prefetch(tf.data.AUTOTUNE)

    def fits(self, parts, batch_size, shuffle, epochs) -> bool:
        return self.key == _key(parts, batch_size, shuffle, epochs)

    def feed(self, parts) -> tf.data.Dataset:
        """The stream of this ``fit``'s rows and a new seed."""
        for variable, part in zip(self._parts, parts):
            variable.assign(part)
        self._seed.assign(tf.random.uniform([2], maxval=tf.int64.max, dtype=tf.int64))
        return self.dataset

    @property
    def rows(self) -> int:
        """How many rows the stream holds now (0 after `release`)."""
        return int(tf.shape(self._parts[0])[0])

    def release(self) -> None:
        """Drops the rows (the stream keeps its structure for the next ``fit``)."""
        for variable in self._parts:
            variable.assign(tf.zeros([0, *variable.shape[1:]], variable.dtype))


def repeated_epochs(x, y=None, batch_size: int = 32, shuffle: bool = True, epochs: int = 1,
                    sample_weight=None, stream: EpochStream | None = None):
    """The `EpochStream` of these arrays (``stream`` where it fits them, else a new one)
    and its dataset, fed with them."""
    parts = (x,) if y is None else (x, y) if sample_weight is None else (x, y, sample_weight)
    parts = tuple(_tensor(a) for a in parts)
    if stream is None or not stream.fits(parts, batch_size, shuffle, epochs):
        stream = EpochStream(parts, batch_size, shuffle, epochs)
    return stream, stream.feed(parts)


def _key(parts, batch_size, shuffle, epochs):
    return (tuple((part.dtype, tuple(part.shape[1:])) for part in parts), int(batch_size),
            bool(shuffle), int(epochs))


def _tensor(array):
    tensor = tf.convert_to_tensor(array)
    if tensor.dtype.is_floating and tensor.dtype != keras.config.floatx():
        tensor = tf.cast(tensor, keras.config.floatx())
    return tensor
