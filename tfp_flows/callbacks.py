"""Keras callbacks for flows."""

from __future__ import annotations

import math

import keras


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite loss and restores the last finite state.

    After every batch callback (every ``steps_per_execution`` steps) whose loss is
    finite it keeps a copy of the model's and the optimizer's variables; at the first
    non-finite loss it puts that copy back, stops training and says which step went
    bad. Use it like ``keras.callbacks.TerminateOnNaN``, which stops but keeps the
    broken weights. Cost: one host copy of the weights per batch callback.
    """

    def __init__(self, verbose: bool = True):
        super().__init__()
        self.verbose = verbose
        self.bad_step = None
        self.restored_step = None

    def _variables(self):
        return list(self.model.weights) + list(self.model.optimizer.variables)

    def _snapshot(self):
        self._saved = [v.numpy() for v in self._variables()]
        self._saved_step = int(self.model.optimizer.iterations.numpy())

    def on_train_begin(self, logs=None):
        self._snapshot()

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        if math.isfinite(float(loss)):
            self._snapshot()
            return
        self.bad_step = int(self.model.optimizer.iterations.numpy())
        for variable, value in zip(self._variables(), self._saved):
            variable.assign(value)
        self.restored_step = self._saved_step
        self.model.stop_training = True
        if self.verbose:
            print(f"\ntfp-flows: non-finite loss ({loss}) by training step {self.bad_step} "
                  f"(batch {batch} of this epoch); stopped, weights restored to step "
                  f"{self._saved_step}.")
