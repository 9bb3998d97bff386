"""``steps_per_execution`` training steps in one XLA program.

Keras runs ``steps_per_execution`` steps as a graph loop that launches one XLA
program per step. Each launch hands every variable to XLA (weights, optimizer
slots, metrics: about 170 for an 8-coupling RealNVP) and takes them back, and on
a CPU that costs as much as a small flow's step itself: the Adam update alone of
an 8-coupling RealNVP's 35k parameters in 56 variables takes about 1.1 ms per
launched step and 0.04 ms inside one compiled loop (``python -m benchmarks
moons_profile``, "Adam only" rows). Here the ``S`` batches of an execution are
stacked and one XLA program runs all ``S`` steps in a ``tf.while_loop``, so
variables cross the boundary once per execution. The price: the ``S`` batches are
held in memory at once (``S * batch`` examples).

Semantics are Keras': up to ``S`` batches per call, callbacks every ``S`` steps,
the same ``train_step`` and the same logs. A group that is short (the end of an
epoch) or holds a smaller last batch runs one compiled step per batch instead of
compiling a loop for one odd shape; so does ``S = 1``.

The compiled step is called straight from Python, not from inside a graph function
as Keras does: TensorFlow then has no outer graph to optimise, and for a deep flow
that optimisation costs seconds before the first step (about 10 s of the 46 s a
3-level, 48-step 32x32x3 Glow took to start; ``python -m benchmarks glow_compile``).
"""

from __future__ import annotations

import tensorflow as tf

from tfp_flows import _conv


def _stack(batches):
    return tf.nest.map_structure(lambda *parts: tf.stack(parts), *batches)


def _shapes(batch):
    return tuple(tuple(part.shape) for part in tf.nest.flatten(batch))


def fused_train_function(model, steps: int):
    """A Keras ``train_function(iterator) -> logs`` running ``steps`` steps per XLA call.

    ``steps`` is ``steps_per_execution`` (1 or more).

    ``model`` needs ``train_step(data)`` (updates weights and metrics) and
    ``metrics_logs()`` (the logs, read without updating).
    """
    single = tf.function(model.train_step, jit_compile=True, reduce_retracing=True,
                         autograph=False)

    @tf.function(jit_compile=True, autograph=False)
    def loop(stacked):
        def body(i):  # convolution gradients as forward convolutions: see tfp_flows._conv
            model.train_step(tf.nest.map_structure(lambda part: part[i], stacked))
            return (i + 1,)

        with _conv.canonical_gradients():
            tf.while_loop(lambda i: i < steps, body, (tf.constant(0),))
        return model.metrics_logs()

    @tf.function(autograph=False)
    def fetch(iterator):
        return [iterator.get_next_as_optional() for _ in range(steps)]

    def next_batches(iterator):
        if isinstance(iterator, (tf.data.Iterator, tf.distribute.DistributedIterator)):
            batches = []
            for optional in fetch(iterator):
                if not optional.has_value():
                    break
                batches.append(optional.get_value())
            return batches
        return [batch for _, batch in zip(range(steps), iterator)]  # train_on_batch

    def function(iterator):
        batches = next_batches(iterator)
        if not batches:
            raise StopIteration
        if steps > 1 and len(batches) == steps and len({_shapes(b) for b in batches}) == 1:
            return loop(_stack(batches))
        for batch in batches:
            logs = single(batch)
        return logs

    return function
