"""Picking a ``tf.distribute`` strategy by name, as the command line does."""

from __future__ import annotations

import contextlib

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker")


def make_strategy(name: str = "default") -> tf.distribute.Strategy:
    """``default`` (one device), ``mirrored`` (all local devices) or ``multiworker``
    (hosts listed in ``TF_CONFIG``)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"expected a strategy in {list(STRATEGIES)}; got {name!r}.")


@contextlib.contextmanager
def strategy_scope(name: str = "default"):
    """Enters ``make_strategy(name).scope()`` and yields the strategy."""
    strategy = make_strategy(name)
    with strategy.scope():
        yield strategy
