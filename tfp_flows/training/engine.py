"""`Engine`: how `tfp_flows.Flow.fit` runs its steps, behind one small seam.

The flow keeps Keras' hooks (``compile``, ``fit``, ``train_step``); the engine decides
how the steps of a ``fit`` are executed, and nothing else:

- ``engine="keras"``: Keras' own train function (``keras.Model.make_train_function``),
  ``steps_per_execution`` as Keras takes it ("auto" is 1).
- ``engine="fused"`` (the default): where the step is compiled with XLA on one device,
  all the steps of an execution run in one XLA program (`FusedTrainer`), arrays are
  batched through one ``tf.data`` iterator per ``fit`` (`array_epochs`), and
  ``steps_per_execution="auto"`` lets the engine choose the grouping. Elsewhere it is
  Keras' own train function.

The contract, proven by ``tests/test_fit_contract.py`` against Keras' own loop with the
same ``train_step``: every ``fit`` argument means what it means in Keras. With an
explicit ``steps_per_execution`` the two loops run the same optimizer steps on the
same batches with the same logs. With "auto" they run what Keras' loop runs with one
step per execution (``steps_per_epoch`` steps an epoch, never more); only callbacks and
the progress bar run once per execution of grouped steps.

How the flow uses it, per ``fit``::

    x, y, kwargs = engine.plan(flow, x, y, kwargs)   # the batches Keras will iterate
    flow.steps_per_execution = engine.steps_per_execution
    try:
        super().fit(x, y, **kwargs)                   # make_train_function asks
    finally:                                          # engine.train_function(flow,
        engine.end_fit()                              #     on_fallback) for its function
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfp_flows.callbacks import StopOnNonFiniteLoss
from tfp_flows.training import array_epochs
from tfp_flows.training.fused import AUTO, FIRST_STEPS, FusedTrainer

ENGINES = ("fused", "keras")

GUARDS = (StopOnNonFiniteLoss, keras.callbacks.TerminateOnNaN)
"""Callbacks that stop at a non-finite loss: a ``fit`` with one trains guarded."""


class Engine:
    """The training engine of one compiled flow (made by `tfp_flows.Flow.compile`).

    Args:
        kind: ``"fused"`` (the fast path, default) or ``"keras"`` (Keras' own loop).
        steps_per_execution: an int, or ``"auto"``: the engine chooses (32 in the first
            ``fit``, which times them, then about 0.25 s of steps; `tfp_flows.training.
            fused`); with ``kind="keras"`` or without XLA "auto" is 1.
        fuses: whether the flow's step runs under XLA on one device, not eagerly: the
            fused trainer runs only then.

    Raises:
        ValueError: an unknown ``kind``, or ``steps_per_execution`` neither "auto" nor an
            integer of at least 1.

    Examples:
        >>> Engine("fused", "auto").steps_per_execution  # timed in the first fit
        32
        >>> Engine("keras", "auto").steps_per_execution
        1
    """

    def __init__(self, kind: str = "fused", steps_per_execution=AUTO, fuses: bool = True):
        if kind not in ENGINES:
            raise ValueError(f"compile: expected engine in {list(ENGINES)}; got {kind!r}.")
        auto = steps_per_execution in (AUTO, None)
        if not auto and not (isinstance(steps_per_execution, (int, np.integer))
                             and steps_per_execution >= 1):
            raise ValueError("compile: expected steps_per_execution to be 'auto' or an "
                             f"integer >= 1; got {steps_per_execution!r}.")
        self.kind = kind
        self.requested = AUTO if auto else int(steps_per_execution)
        self.fuses = kind == "fused" and bool(fuses)
        self.auto = auto and self.fuses
        self.trainer = None
        self.steps_per_execution = (FIRST_STEPS if self.auto else
                                    1 if auto else int(steps_per_execution))
        self._epoch_steps = None
        self._stream = None  # the arrays' `array_epochs.EpochStream`, kept from fit to fit
        self.guarded = False  # see `plan`
        self.retrace = False  # the guard changed since the steps were traced

    # -- one fit ------------------------------------------------------------------------

    def plan(self, flow, x, y, kwargs: dict):
        """The data and arguments Keras' ``fit`` gets, and this fit's grouping
        (``steps_per_execution``, read by the flow before it calls Keras).

        Arrays that Keras would slice plainly become one stream of epochs
        (`array_epochs.repeated_epochs`); under "auto" executions stop at the end of
        each epoch of ``steps_per_epoch`` (or the data's) batches.
        """
        kwargs = dict(kwargs)
        # Guarded where a callback stops at a non-finite loss: then the steps skip such
        # an update (`tfp_flows.Flow.train_step`) and an execution ends at it.
        guarded = any(isinstance(callback, GUARDS) for callback in kwargs.get("callbacks") or ())
        self.retrace = guarded != self.guarded
        self.guarded = guarded
        if self.retrace and self.trainer is not None:
            self.trainer.retrace(guarded)
        if self.auto and self.trainer is not None and self.trainer.chosen is not None:
            self.steps_per_execution = self.trainer.chosen
        epoch_steps, stream = _epoch_steps(x, kwargs), False
        if self.fuses and array_epochs.applies(x, y, kwargs):
            stream = True
            batch_size = kwargs.get("batch_size") or 32
            epochs = max(int(kwargs.get("epochs", 1)) - int(kwargs.get("initial_epoch", 0)), 1)
            epoch_steps = kwargs["steps_per_epoch"] = array_epochs.steps_per_epoch(len(x),
                                                                                batch_size)
            self._stream, x = array_epochs.repeated_epochs(
                x, y, batch_size, kwargs.get("shuffle", True), epochs,
                kwargs.pop("sample_weight", None), stream=self._stream)
            y = None
            kwargs.update(batch_size=None, shuffle=False,  # shuffled in the stream
                          validation_batch_size=kwargs.get("validation_batch_size") or batch_size)
        # Under "auto", and for the stream (Keras' own epochs end with their iterator).
        self._epoch_steps = epoch_steps if self.auto or stream else None
        if self.auto and epoch_steps:
            self.steps_per_execution = balanced(epoch_steps, self.steps_per_execution)
        if self.auto and epoch_steps and kwargs.get("steps_per_epoch") is not None \
                and _finite_data(x):
            # Keras keeps a finite dataset's iterator across epochs by counting
            # steps_per_execution per execution: a grouping that divides the epoch keeps
            # that count the one of a single step per execution.
            self.steps_per_execution = _divisor_at_most(epoch_steps, self.steps_per_execution)
        return x, y, kwargs

    def end_fit(self) -> None:
        """After a ``fit``: the stream lets go of its rows."""
        if self._stream is not None:
            self._stream.release()

    def train_function(self, flow, on_fallback=None):
        """The fused train function for the ``fit`` that starts (the same compiled
        programs from fit to fit), or None where Keras' own should run."""
        if not self.fuses:
            return None
        if self.trainer is None:
            self.trainer = FusedTrainer(flow.train_step, flow.metrics_logs, flow.name,
                                        self.requested, guarded=self.guarded)
        self.trainer.new_fit(self.steps_per_execution, self._epoch_steps)
        trainer = self.trainer

        def train_function(iterator):
            jit = trainer.jit
            logs = trainer(iterator)
            if jit and not trainer.jit and on_fallback is not None:
                on_fallback()
            return logs

        train_function.trainer = trainer
        return train_function

    def config(self) -> dict:
        """What `compile` needs to make this engine again (saved with the flow)."""
        return {"engine": self.kind, "steps_per_execution": self.requested}


def _epoch_steps(x, kwargs) -> int | None:
    """Batches per epoch where Keras knows them: ``steps_per_epoch``, or a finite
    dataset's cardinality, or the arrays' batch count; None for unknown or endless."""
    if kwargs.get("steps_per_epoch") is not None:
        return int(kwargs["steps_per_epoch"])
    if isinstance(x, tf.data.Dataset):
        cardinality = int(x.cardinality())
        return cardinality if cardinality > 0 else None
    if isinstance(x, np.ndarray) or tf.is_tensor(x):
        split = kwargs.get("validation_split") if kwargs.get("validation_data") is None else 0.0
        return array_epochs.steps_per_epoch(array_epochs.training_rows(len(x), split),
                                            kwargs.get("batch_size") or 32)
    return None


def _finite_data(x) -> bool:
    return not isinstance(x, tf.data.Dataset) or int(x.cardinality()) > 0


def balanced(epoch_steps: int, steps: int) -> int:
    """Equal groups of about ``steps`` that cover an epoch: ``ceil(E / round(E / s))``.
    Executions end at an epoch's last batch, so 71 steps chosen for an epoch of 79 would
    run 71 + 8, two launches where one of 79 costs no more per step."""
    groups = max(1, round(epoch_steps / steps))
    return -(-epoch_steps // groups)


def _divisor_at_most(n: int, limit: int) -> int:
    """The largest divisor of ``n`` that is at most ``limit``."""
    return max(d for d in range(1, min(n, limit) + 1) if n % d == 0)
