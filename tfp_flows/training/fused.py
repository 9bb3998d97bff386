"""``steps_per_execution`` training steps in one XLA program, and how many to run.

Keras runs ``steps_per_execution`` steps as a graph loop that launches one XLA
program per step. Each launch hands every variable to XLA (weights, optimizer
slots, metrics: about 170 for an 8-coupling RealNVP) and takes them back, and on
a CPU that costs as much as a small flow's step itself: the Adam update alone of
an 8-coupling RealNVP's 35k parameters in 56 variables takes about 1.1 ms per
launched step and 0.04 ms inside one compiled loop (``python -m benchmarks
moons_profile``, "Adam only" rows). Here one XLA program runs the steps of an
execution in a ``tf.while_loop``, so variables cross the boundary once per launch.

Fixed cost per execution (two moons, 8 couplings, batch 256, process CPU time on a
loaded 2-core machine). Most of it is the launch itself: an XLA program that reads
and updates the flow's 211 variables (81 of the model, 130 of Adam) costs 2.7 ms
with no step in it, and a bare XLA function of 170 small variables 1.3 to 2 ms
against 0.6 ms as a plain graph function, so about 10 us per variable per launch:
fewer, larger variables would lower it. The batches come from Keras' ``tf.data``
iterator through one graph function (a ``tf.while_loop`` over
``get_next_as_optional``, one trace for every count) that concatenates them, one
call from Python; the loop reads batch ``i`` as a slice of that block. Keras'
pipeline itself costs about 0.08 ms per batch (a cost per step, whatever the
grouping). The earlier version unpacked ``tf.data`` optionals in Python and
stacked them eagerly, about 0.2 ms per batch, 3 ms of an execution of 16 steps.
The loop takes the number of steps as a tensor, so one compiled program runs any
number of steps up to its capacity: a short group at the end of an epoch runs in
the same program (the block is padded; padding is never read) instead of one
launch per batch. Only a smaller last batch gets its own one-step program.

The compiled step is called straight from Python, not from inside a graph function
as Keras does: TensorFlow then has no outer graph to optimise, and for a deep flow
that optimisation costs seconds before the first step (about 10 s of the 46 s a
3-level, 48-step 32x32x3 Glow took to start; ``python -m benchmarks glow_compile``).

Steps per execution when ``compile`` is not given one (`AUTO`): Keras fixes the
grouping of batches (callbacks and the progress bar run once per execution) when
``fit`` starts, before any step has run. So the first ``fit`` groups `FIRST_STEPS`
batches per execution and times its executions; from the next ``fit`` on, the flow
runs ``TARGET_SECONDS / (seconds per step)`` steps per execution. A launch holds
at most `MEMORY_BYTES` of batches: a bigger group runs as several launches.

If XLA cannot compile the step (an operation without an XLA kernel), the trainer
warns once and trains on without XLA (and the flow sets ``jit_compile`` False).
"""

from __future__ import annotations

import re
import statistics
import time
import warnings

import numpy as np
import tensorflow as tf

AUTO = "auto"
"""``compile(steps_per_execution=AUTO)``: the flow chooses (the default)."""

FIRST_STEPS = 32
"""Steps per execution of the first ``fit`` under `AUTO`, before any step was timed:
about 40 ms of a small flow's steps, against 2 to 3 ms of fixed cost per execution."""

TARGET_SECONDS = 0.25
"""What one execution should take under `AUTO`: callbacks and the progress bar run
about this often, and the fixed cost per execution (the launch, Keras' callbacks and
logs: a few to about 25 ms) stays within a few % of it. At 0.1 s the digits Glow (19 ms
steps then) chose 5 steps and trained at 1.26x TFP's step, against 1.45x with 50; at
0.25 s (10.5 ms steps now) it chooses about 20 and reads 2.3x against 2.5x with 50
(``python -m benchmarks defaults``, ``glow_digits``)."""

MAX_STEPS = 128
"""At most this many steps per execution under `AUTO`."""

MEMORY_BYTES = 16 * 2**20
"""At most this many bytes of batches in one launch under `AUTO` (``S * batch``)."""

TIMED_LAUNCHES = 3
"""Launches timed (after the one that compiles) before `AUTO` chooses."""

_XLA_FAILURE = re.compile(r"XLA_\w+_JIT|tf2xla|Detected unsupported operations|"
                          r"XLA compilation|Failed to compile|not supported by XLA")


def is_xla_compile_error(error: BaseException) -> bool:
    """True for the errors TensorFlow raises when XLA cannot compile a function.

    Args:
        error: an exception raised by a compiled function.

    Returns:
        Whether it says that XLA could not compile the function.

    Examples:
        >>> is_xla_compile_error(ValueError("bad shape"))
        False
    """
    return isinstance(error, (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError,
                              tf.errors.InternalError)) and bool(_XLA_FAILURE.search(str(error)))


class FusedTrainer:
    """A Keras ``train_function(iterator) -> logs`` that runs an execution's steps in one
    XLA program: compiled programs, their capacity and the timings of `AUTO`.

    It calls ``train_step(batch)`` and ``metrics_logs()`` (a `tfp_flows.Flow`'s), owns
    its compiled programs and changes nothing else: what it chose (``chosen``) and
    whether it fell back from XLA (``jit``) are read by the model that owns it.

    Args:
        train_step: one optimizer step on a batch; updates the weights and metrics.
        metrics_logs: the logs of the steps so far, read without updating.
        name: the model's name, for the warning of an XLA fallback.
        steps: batches per execution, Keras' ``steps_per_execution`` (an int), or
            `AUTO`: launches then hold at most `MEMORY_BYTES` and the first launches
            are timed to choose ``chosen`` for the next ``fit``.
        guarded: an execution ends at a step whose loss is not finite (a ``fit`` whose
            callbacks stop there; `tfp_flows.training.engine.GUARDS`).

    Examples:
        >>> trainer = FusedTrainer(train_step=None, metrics_logs=None, name="flow", steps=7)
        >>> trainer.steps, trainer.auto
        (7, False)
    """

    def __init__(self, train_step, metrics_logs, name: str, steps=AUTO, guarded: bool = False):
        self.train_step = train_step
        self.metrics_logs = metrics_logs
        self.name = name
        self.guarded = bool(guarded)
        self.auto = steps == AUTO
        self.steps = FIRST_STEPS if self.auto else int(steps)
        # Batches per launch: the compiled loop's block holds this many. Explicit
        # steps: exactly ``steps``. AUTO: set from the first batch's size.
        self.capacity = None if self.auto else self.steps
        self.jit = True
        self.timings = []       # (steps, seconds) of timed launches, under AUTO
        self.chosen = None      # steps per execution chosen from the timings
        self.epoch_steps = None  # see `new_fit`
        self._epoch_done = 0
        self._launches = 0
        self._counts = {}
        self._false = tf.constant(False)
        self._fetcher = None
        self._batch = None      # batch size of the loop's launches
        self._build(jit=True)

    def new_fit(self, steps: int, epoch_steps: int | None = None):
        """A ``fit`` starts: at most ``steps`` batches per execution, and where
        ``epoch_steps`` is given no execution runs past the end of an epoch of that many
        batches (Keras' loop with one step per execution, grouped)."""
        self.steps, self.epoch_steps, self._epoch_done = int(steps), epoch_steps, 0

    # -- compiled programs ----------------------------------------------------------

    def _build(self, jit: bool):
        self.jit = jit
        self.single = tf.function(self._single, jit_compile=jit, reduce_retracing=True,
                                  autograph=False)
        self.loop = tf.function(self._loop, jit_compile=jit, autograph=False)

    def retrace(self, guarded: bool):
        """The guard changed: the programs are traced again (the step changed too)."""
        self.guarded = bool(guarded)
        self._build(self.jit)

    def _loss_finite(self):
        """Whether the epoch's mean loss so far is finite (a scalar boolean)."""
        return tf.math.is_finite(tf.reshape(self.metrics_logs()["loss"], []))

    def _poisoned(self):
        """Whether the epoch's loss is already not finite (read only when guarded: a few
        eager operations per execution otherwise spared)."""
        return tf.logical_not(self._loss_finite()) if self.guarded else self._false

    def _may_go_on(self, poisoned):
        """False once a step of this execution made the epoch's mean loss not finite;
        True all along if it was not finite when the execution began (``poisoned``):
        then nothing new went wrong."""
        return self._loss_finite() | poisoned

    def _single(self, batch, poisoned):
        """One step, unless (guarded) an earlier step of this execution went bad."""
        if not self.guarded:
            return self.train_step(batch)
        return tf.cond(self._may_go_on(poisoned), lambda: self.train_step(batch),
                       self.metrics_logs)

    def _loop(self, block, count, poisoned):
        """Up to ``count`` steps on the first ``count`` batches of ``block``
        (``capacity`` batches, concatenated on the batch axis). Guarded, the loop ends
        after a step that makes the epoch's mean loss not finite (that step changed no
        weight: see `tfp_flows.Flow.train_step`), so that a callback sees the state after
        the last finite step; with ``poisoned`` (the loss was not finite when the
        execution began) it runs every step."""
        capacity = self.capacity

        def split(leaf):
            return tf.reshape(leaf, tf.concat([[capacity, -1], tf.shape(leaf)[1:]], 0))

        batches = tf.nest.map_structure(split, block)

        def body(i):
            self.train_step(tf.nest.map_structure(lambda part: part[i], batches))
            return (i + 1,)

        if self.guarded:
            tf.while_loop(lambda i: (i < count) & self._may_go_on(poisoned), body,
                          (tf.constant(0),))
        else:
            tf.while_loop(lambda i: i < count, body, (tf.constant(0),))
        return self.metrics_logs()

    def _fetch(self, iterator, count: int, rows_of: int):
        """Up to ``count`` batches from ``iterator``: ``(sizes, block)``, their sizes and
        all of them concatenated, padded with zeros to ``rows_of`` first batches."""
        if self._fetcher is None:
            self._fetcher = tf.function(_fetch_batches, autograph=False)
        return self._fetcher(iterator, self._count(count), self._count(rows_of))

    def _count(self, n: int):
        if n not in self._counts:
            self._counts[n] = tf.constant(n, tf.int32)
        return self._counts[n]

    # -- one execution ---------------------------------------------------------------

    def __call__(self, iterator):
        if not isinstance(iterator, (tf.data.Iterator, tf.distribute.DistributedIterator)) \
                or not _dense_batches(iterator.element_spec):
            return self._python_batches(iterator)
        steps = self.steps
        if self.epoch_steps:  # never past an epoch's last batch
            steps = min(steps, self.epoch_steps - self._epoch_done)
        remaining, logs, exhausted = steps, None, False
        poisoned = self._poisoned()
        if self.capacity is None:  # AUTO, first call: size the launches from one batch
            sizes, block = self._fetch(iterator, 1, 1)
            if sizes.shape[0] == 0:
                raise StopIteration
            bytes_per_batch = sum(int(np.prod(leaf.shape)) * leaf.dtype.size
                                  for leaf in tf.nest.flatten(block))
            self.capacity = int(np.clip(MEMORY_BYTES // max(bytes_per_batch, 1), 1, MAX_STEPS))
            rows = (self.capacity - 1) * int(sizes[0])
            self._batch = int(sizes[0])
            logs = self._launch(tf.nest.map_structure(lambda leaf: _pad(leaf, rows), block), 1,
                                poisoned)
            remaining -= 1
        while remaining > 0:
            count = min(remaining, self.capacity)
            sizes, block = self._fetch(iterator, count, self.capacity)
            sizes = sizes.numpy()
            fetched = int(np.count_nonzero(sizes))
            if fetched == 0:
                exhausted = True
                break
            logs = self._run_block(sizes[:fetched], block, poisoned)
            remaining -= fetched
            if fetched < count:
                exhausted = True
                break
        if self.epoch_steps:  # an epoch ends at its last batch or where the data ran out
            done = self._epoch_done + steps - remaining
            self._epoch_done = 0 if exhausted or done >= self.epoch_steps else done
        if logs is None:
            raise StopIteration
        return logs

    def _run_block(self, sizes, block, poisoned):
        full = int(sizes[0])
        same = int(np.argmin(sizes == full)) if (sizes != full).any() else len(sizes)
        regular = same == len(sizes) or same == len(sizes) - 1 and sizes[-1] < full
        # A lone batch of another size (the last of an epoch) would compile another loop.
        if regular and (full == self._batch or same > 1 or self._batch is None):
            self._batch = full
            logs = self._launch(block, same, poisoned)
            if same < len(sizes):  # a smaller last batch: its own one-step program
                start = same * full
                logs = self._call(self.single, _rows(block, start, start + int(sizes[-1])),
                                  poisoned)
            return logs
        offsets = np.concatenate([[0], np.cumsum(sizes)])  # other sizes: one by one
        logs = None
        for begin, end in zip(offsets[:-1], offsets[1:]):
            logs = self._call(self.single, _rows(block, int(begin), int(end)), poisoned)
        return logs

    def _launch(self, block, count: int, poisoned):
        timed = self.auto and self.chosen is None and self._launches > 0
        start = time.perf_counter()
        logs = self._call(self.loop, block, self._count(count), poisoned)
        if timed:
            tf.nest.flatten(logs)[0].numpy()  # wait for the result: a launch may be async
            self._record(count, time.perf_counter() - start)
        self._launches += 1
        return logs

    def _record(self, count: int, seconds: float):
        self.timings.append((count, seconds))
        if len(self.timings) < TIMED_LAUNCHES:
            return
        per_step = statistics.median(s / n for n, s in self.timings)
        self.chosen = int(np.clip(round(TARGET_SECONDS / max(per_step, 1e-9)), 1, MAX_STEPS))

    def _python_batches(self, iterator):
        """Batches from a Python iterator (``train_on_batch``) or a dataset whose
        batches are not dense tensors: one compiled step each."""
        logs = None
        poisoned = self._poisoned()
        for _, batch in zip(range(self.steps), iterator):
            logs = self._call(self.single, batch, poisoned)
        if logs is None:
            raise StopIteration
        return logs

    def _call(self, function, *args):
        if not self.jit:
            return function(*args)
        is_loop = function is self.loop
        try:
            return function(*args)
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError,
                tf.errors.InternalError) as error:
            if not is_xla_compile_error(error):
                raise
            self._fall_back(error)
        # Nothing ran (XLA failed before running): the same batches, without XLA.
        return (self.loop if is_loop else self.single)(*args)

    def _fall_back(self, error):
        reason = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
        warnings.warn(f"{self.name}: XLA cannot compile the training step, so it "
                      f"trains without XLA (jit_compile=False). XLA said: {reason[:300]}",
                      RuntimeWarning, stacklevel=4)
        self._build(jit=False)


def _fetch_batches(iterator, count, rows_of):
    """The graph of `FusedTrainer._fetch`: a ``tf.while_loop``, so one trace serves every
    ``count`` (unrolled, 128 batches took seconds to trace and optimise)."""
    specs = tf.nest.flatten(iterator.element_spec)
    arrays = [tf.TensorArray(spec.dtype, size=0, dynamic_size=True, infer_shape=False,
                             element_shape=tf.TensorShape([None]).concatenate(spec.shape[1:]))
              for spec in specs]
    sizes = tf.TensorArray(tf.int32, size=0, dynamic_size=True)

    def body(i, more, sizes, *arrays):
        optional = iterator.get_next_as_optional()
        has = optional.has_value()

        def take():
            value = tf.nest.flatten(optional.get_value())
            return ([sizes.write(i, tf.shape(value[0])[0])]
                    + [array.write(i, leaf) for array, leaf in zip(arrays, value)])

        out = tf.cond(has, take, lambda: [sizes] + list(arrays))
        return (i + 1, has, *out)

    _, _, sizes, *arrays = tf.while_loop(
        lambda i, more, *_: tf.logical_and(i < count, more), body,
        (tf.constant(0), tf.constant(True), sizes, *arrays))
    sizes = sizes.stack()
    rows = tf.maximum(rows_of * tf.reduce_sum(sizes[:1]) - tf.reduce_sum(sizes), 0)
    leaves = [_pad(array.concat(), rows) for array in arrays]
    return sizes, tf.nest.pack_sequence_as(iterator.element_spec, leaves)


def _rows(block, begin: int, end: int):
    """Rows ``begin:end`` (one batch) of every tensor of ``block``."""
    return tf.nest.map_structure(lambda leaf: leaf[begin:end], block)


def _pad(leaf, rows):
    """``leaf`` with ``rows`` rows of zeros appended on the batch axis."""
    zeros = tf.zeros(tf.concat([[rows], tf.shape(leaf)[1:]], 0), leaf.dtype)
    return tf.concat([leaf, zeros], 0)


def _dense_batches(spec) -> bool:
    """Dense tensors with a batch axis: what the fetcher concatenates."""
    return all(isinstance(s, tf.TensorSpec) and s.shape.rank for s in tf.nest.flatten(spec))
