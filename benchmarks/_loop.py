"""The hand-written training step used for baselines (and for ours, to compare with fit).

It mirrors what ``keras.Model.fit(jit_compile=True, steps_per_execution=S)`` does:
the step (loss, gradient, optimizer update) is one XLA cluster, and an outer
``tf.function`` runs ``S`` steps per Python call.
"""

from __future__ import annotations

import functools

import tensorflow as tf

from benchmarks import _common


def in_graph_loop(fn):
    """A ``tf.function`` ``xs -> fn(xs[-1])`` that calls ``fn`` on every leading slice of ``xs``."""

    @tf.function
    def run(xs):
        out = tf.constant(0.0)
        for i in tf.range(tf.shape(xs)[0]):
            out = fn(xs[i])
        return out

    return run


def in_xla_loop(fn):
    """Like `in_graph_loop`, but the loop itself is XLA-compiled: all slices in one XLA
    program, as ``tfp_flows`` runs ``fit`` with ``steps_per_execution``."""

    @tf.function(jit_compile=True)
    def run(xs):
        return tf.while_loop(lambda i, out: i < tf.shape(xs)[0],
                             lambda i, out: (i + 1, fn(xs[i])),
                             (tf.constant(0), tf.constant(0.0)))[1]

    return run


def make_trainer(loss_fn, variables, optimizer, jit_compile: bool = True, fused: bool = False):
    """Returns ``run(xs)``: one step per leading slice of ``xs`` ``[S, batch, ...]``; last loss.

    ``fused``: all ``S`` steps in one XLA program (`in_xla_loop`).
    """
    variables = list(variables)
    optimizer.build(variables)

    def step_fn(x):
        with tf.GradientTape() as tape:
            loss = loss_fn(x)
        gradients = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(gradients, variables))
        return loss

    step = tf.function(step_fn, jit_compile=jit_compile)
    run = in_xla_loop(step_fn) if fused else in_graph_loop(step)
    run.step = step
    return run


def batches(x, num_steps, batch, rng):
    """``[num_steps, batch, d]`` random batches (the same for every side)."""
    return x[rng.integers(0, len(x), (num_steps, batch))]


def time_chunks(x_train, flow, trainers: dict, *, chunk: int, spe: int, batch: int,
                repeats: int, rng) -> tuple[dict, dict]:
    """Times ``flow.fit`` (side ``ours_fit``) and each of ``trainers`` (name -> a
    `make_trainer` run, given ``spe`` steps a call) on the same random batches.

    The sides take turns chunk by chunk, ``chunk`` steps of ``batch`` rows each, fresh
    batches for every chunk; the first chunk (tracing and XLA compilation) is timed
    apart. Returns ``(first_chunk_s, stats)`` per side, ``stats`` the
    `_common.summary` of the ``repeats`` later chunks.
    """
    state = {}

    def run_fit():
        flow.fit(state["xs"].reshape(-1, *x_train.shape[1:]), batch_size=batch, epochs=1,
                 shuffle=False, verbose=0)

    def run_in_slices(trainer):
        xs = tf.constant(state["xs"])
        loss = None
        for start in range(0, chunk, spe):
            loss = trainer(xs[start:start + spe])
        return loss

    sides = {"ours_fit": run_fit}
    sides.update({name: functools.partial(run_in_slices, trainer)
                  for name, trainer in trainers.items()})
    state["xs"] = batches(x_train, chunk, batch, rng)
    first = {name: _common.timed(fn)[0] for name, fn in sides.items()}
    times = {name: [] for name in sides}
    for _ in range(repeats):
        state["xs"] = batches(x_train, chunk, batch, rng)
        for name, fn in sides.items():
            times[name].append(_common.timed(fn)[0])
    return first, {name: _common.summary(t) for name, t in times.items()}
