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


def repeated_epochs(x, y=None, batch_size: int = 32, shuffle: bool = True, epochs: int = 1,
                    sample_weight=None) -> tf.data.Dataset:
    """Batches ``(x,)``, ``(x, y)`` or ``(x, y, sample_weight)`` of ``epochs`` epochs, each
    a new permutation of the rows (floats as Keras' ``floatx``, as Keras' own adapter
    gives them). Finite: an endless stream's prefetching threads made deleting its
    iterator take 0.5 s. Keras packs data the same way (``y`` None drops the weights)."""
    parts = (x,) if y is None else (x, y) if sample_weight is None else (x, y, sample_weight)
    arrays = tuple(_tensor(a) for a in parts)
    n, batch_size = int(arrays[0].shape[0]), int(batch_size)
    full = n // batch_size

    def permutation(_):
        order = tf.range(n, dtype=tf.int64)
        return tf.random.shuffle(order) if shuffle else order

    def batches(order):
        out = tf.data.Dataset.from_tensor_slices(
            tf.reshape(order[:full * batch_size], [full, batch_size]))
        if n % batch_size:
            out = out.concatenate(tf.data.Dataset.from_tensors(order[full * batch_size:]))
        return out

    indices = tf.data.Dataset.from_tensors(0).repeat(int(epochs)).map(permutation).prefetch(1)
    data = tf.data.Dataset.from_tensors(arrays).repeat()
    stream = tf.data.Dataset.zip((indices.flat_map(batches), data)).map(
        lambda rows, arrays: tuple(tf.gather(a, rows) for a in arrays),
        num_parallel_calls=tf.data.AUTOTUNE)
    options = tf.data.Options()
    # As Keras' adapter: no graph rewrites (they would serialize the captured arrays).
    options.experimental_optimization.apply_default_optimizations = False
    options.experimental_external_state_policy = tf.data.experimental.ExternalStatePolicy.IGNORE
    return stream.with_options(options).prefetch(tf.data.AUTOTUNE)


def _tensor(array):
    tensor = tf.convert_to_tensor(array)
    if tensor.dtype.is_floating and tensor.dtype != keras.config.floatx():
        tensor = tf.cast(tensor, keras.config.floatx())
    return tensor
