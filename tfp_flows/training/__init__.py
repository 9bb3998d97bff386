"""How `tfp_flows.Flow.fit` trains: the engine behind ``compile`` and ``fit``.

`Flow` keeps Keras' hooks (``compile``, ``fit``, ``train_step``); this package holds
what makes them fast and what they share, each module with one job:

- `engine`: the seam, `Engine`: which train function a ``fit`` runs and how its
  batches are grouped; equal to Keras' own loop (``tests/test_fit_contract.py``).
- `fused`: `FusedTrainer`, an execution's steps in one XLA program.
- `array_epochs`: in-memory arrays as one ``tf.data`` stream of shuffled epochs.
- `initialization`: ActNorm's data-dependent initialisation, checked.
- `weights`: the place of sample weights for unconditional flows.
- `inverse_backprop`: gradients through the flow's own inverse (``backprop="inverse"``).
"""

from tfp_flows.training import weights
from tfp_flows.training.engine import ENGINES, Engine
from tfp_flows.training.fused import AUTO, FusedTrainer, is_xla_compile_error
from tfp_flows.training.initialization import initialize_actnorm, initialize_for_fit, pending_actnorms
from tfp_flows.training.inverse_backprop import BACKPROP_MODES, check_backprop, inverse_gradients

__all__ = ["AUTO", "BACKPROP_MODES", "ENGINES", "Engine", "FusedTrainer", "check_backprop",
           "initialize_actnorm", "initialize_for_fit", "inverse_gradients",
           "is_xla_compile_error", "pending_actnorms", "weights"]
