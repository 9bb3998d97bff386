"""Keras callbacks for flows."""

from __future__ import annotations

import math

import keras
import numpy as np


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first NaN or infinite loss, with the state of the last finite step.

    A flow's training step applies no update whose loss or gradients are not finite
    (`tfp_flows.Flow.train_step`), and the fused engine ends an execution at such a
    step; so when this callback sees a non-finite loss, every weight and optimizer slot
    is already the state after the last finite step, at any ``steps_per_execution``.
    It stops training and names the step that went bad. If some variable is not
    finite all the same (a model with its own ``train_step``, several replicas), it
    puts back its copy from the last batch callback whose loss was finite. Use it like
    ``keras.callbacks.TerminateOnNaN``. Cost: one host copy of the weights per batch
    callback.

    Args:
        verbose: print one line naming the step that went bad and the state kept.

    Attributes:
        bad_step: the optimizer step (counted from 1) whose loss was not finite.
        restored_step: the number of optimizer steps of the state left in the model.

    Examples:
        >>> import keras, numpy as np, tfp_flows
        >>> flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(8,))
        >>> flow.compile(optimizer=keras.optimizers.Adam(1e-3))
        >>> stop = StopOnNonFiniteLoss()
        >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
        >>> _ = flow.fit(x, batch_size=32, epochs=1, verbose=0, callbacks=[stop])
        >>> stop.bad_step is None  # every loss was finite
        True
    """

    def __init__(self, verbose: bool = True):
        super().__init__()
        self.verbose = verbose
        self.bad_step = None
        self.restored_step = None
        self._saved = []
        self._saved_step = 0

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
        if math.isfinite(float(np.mean(loss))):
            self._snapshot()
            return
        steps = int(self.model.optimizer.iterations.numpy())
        self.bad_step = steps + 1
        if all(np.isfinite(value).all() for value in
               (v.numpy() for v in self._variables())):
            self.restored_step = steps
        else:
            for variable, value in zip(self._variables(), self._saved):
                variable.assign(value)
            self.restored_step = self._saved_step
        self.model.stop_training = True
        if self.verbose:
            print(f"\ntfp-flows: non-finite loss ({loss}) at training step {self.bad_step} "
                  f"(batch {batch} of this epoch); stopped with the weights after step "
                  f"{self.restored_step}.")
