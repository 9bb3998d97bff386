"""Picking a ``tf.distribute`` strategy by name, as the command line does."""

from __future__ import annotations

import contextlib

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multiworker")


def make_strategy(name: str = "default") -> tf.distribute.Strategy:
    """``default`` (one device), ``mirrored`` (all local devices) or ``multiworker``
    (hosts listed in ``TF_CONFIG``).

    Args:
        name: one of ``STRATEGIES``.

    Returns:
        The ``tf.distribute.Strategy``: for ``default``, the current one.

    Raises:
        ValueError: an unknown name.

    Examples:
        >>> make_strategy().num_replicas_in_sync
        1
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"expected a strategy in {list(STRATEGIES)}; got {name!r}.")


def is_chief(strategy: tf.distribute.Strategy | None = None) -> bool:
    """True unless this process is a non-chief worker of a multi-worker strategy.

    Only the chief should write models, pictures and exports; the others hold the
    same weights.

    Args:
        strategy: a strategy; None reads the current one.

    Returns:
        Whether this process should write outputs.

    Examples:
        >>> is_chief()
        True
    """
    strategy = strategy or tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (
        task_type == "worker" and task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """True for a collective all-reduce strategy spanning several workers.

    Args:
        strategy: a ``tf.distribute.Strategy``.

    Returns:
        Whether the strategy runs on several workers.

    Examples:
        >>> is_multi_worker(make_strategy("default"))
        False
    """
    extended = getattr(strategy, "extended", None)
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


@contextlib.contextmanager
def strategy_scope(name: str = "default"):
    """Enters ``make_strategy(name).scope()`` and yields the strategy.

    Args:
        name: as in `make_strategy`.

    Yields:
        The strategy, whose scope is entered: models built inside it are replicated.

    Examples:
        >>> with strategy_scope("default") as strategy:
        ...     print(strategy.num_replicas_in_sync)
        1
    """
    strategy = make_strategy(name)
    with strategy.scope():
        yield strategy
