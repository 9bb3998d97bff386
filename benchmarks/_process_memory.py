"""The training process's own memory around `fit`, measured in a fresh process (Linux).

``python -m benchmarks._process_memory MODE NUM_STEPS [--quick]`` prints one JSON line;
`benchmarks.memory` runs it once per backprop mode and depth, so that no compilation
or heap of another configuration is counted.

Inside the child: build the continuous Glow of `benchmarks.memory`, compile it, run a
first `fit` of one batch (tracing, XLA compilation, Adam's slots), hand the freed heap
back to the system (glibc's ``malloc_trim``: otherwise freed compiler memory is reused
by the steps and hides what they need), reset the peak resident memory (writing 5 to
``/proc/self/clear_refs``) and run a `fit` of ``steps`` batches. Reported, MiB:

- ``compiled_mib``: resident memory after the first fit: TensorFlow, the weights,
  the optimizer's slots, the traced graphs and the compiled program.
- ``steps_mib``: the peak during the steps above that (``VmHWM - VmRSS``): what
  training needs beyond what it holds.
- ``steps_less_gradients_mib``: that less one set of gradients (the weights' size).
  The weights and slots are already in ``compiled_mib``.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfp_flows  # noqa: E402
from benchmarks import _common  # noqa: E402


def _status_mib(key: str) -> float:
    value = _common.proc_status_mib(key)
    if value is None:
        raise OSError(f"no {key} in /proc/self/status")
    return value


def _trim_heap():
    gc.collect()
    # Not glibc: no trim, and the peak then leaves out reused heap.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def measure(mode: str, num_steps: int, shape, width: int, batch: int, steps: int) -> dict:
    """The three numbers of the module docstring for one configuration."""
    keras.utils.set_random_seed(0)
    flow = tfp_flows.Glow(shape, num_levels=2, num_steps=num_steps, hidden_channels=width,
                          num_values=None)
    flow.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=True, steps_per_execution=1,
                 backprop=mode)
    x = np.random.default_rng(0).normal(size=(batch * steps,) + tuple(shape)).astype(np.float32)
    flow.fit(x[:batch], batch_size=batch, epochs=1, shuffle=False, verbose=0)
    _trim_heap()
    compiled = _status_mib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    flow.fit(x, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    during = _status_mib("VmHWM") - compiled
    weights = sum(int(np.prod(v.shape)) for v in flow.trainable_variables) * 4 / 2**20
    return {"compiled_mib": compiled, "steps_mib": during,
            "steps_less_gradients_mib": during - weights, "weights_mib": weights}


if __name__ == "__main__":
    mode, num_steps = sys.argv[1], int(sys.argv[2])
    if "--quick" in sys.argv:
        config = {"shape": (8, 8, 3), "width": 16, "batch": 16, "steps": 2}
    else:
        config = {"shape": (16, 16, 3), "width": 64, "batch": 128, "steps": 8}
    print(json.dumps(measure(mode, num_steps, **config)))
