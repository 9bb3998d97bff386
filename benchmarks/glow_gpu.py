"""Case `glow_gpu`: a 32x32x3 Glow at batch 256, float32 and mixed_bfloat16.

Training images/s of ``model.fit`` (``jit_compile=True``) under each policy and the
accelerator's peak memory (``tf.config.experimental.get_memory_info``). Meant for a
GPU (``benchmarks/gpu.sh``); ``--quick`` runs a tiny version anywhere.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import tfp_flows
from benchmarks import _common


def rate(policy, shape, batch, steps, levels, width, repeats):
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        flow = tfp_flows.Glow(shape, num_levels=levels, num_steps=8, hidden_channels=width)
        flow.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=True,
                     steps_per_execution=steps)
        x = np.random.default_rng(0).integers(0, 256, (batch * steps,) + shape).astype(np.uint8)
        stats = _common.median_time(
            lambda: flow.fit(x, batch_size=batch, epochs=1, shuffle=False, verbose=0),
            repeats=repeats, warmup=1)
        return len(x) / stats["median_s"], stats
    finally:
        keras.mixed_precision.set_global_policy("float32")


def peak_memory_mib():
    gpus = tf.config.list_logical_devices("GPU")
    if not gpus:
        return None
    return tf.config.experimental.get_memory_info(gpus[0].name)["peak"] / 2**20


def main(argv=None):
    args = _common.parse_args(__doc__.splitlines()[0], argv)
    shape, batch, steps, levels, width = (((8, 8, 3), 8, 2, 2, 16) if args.quick
                                          else ((32, 32, 3), 256, 10, 3, 256))
    repeats = args.repeats or (1 if args.quick else 3)
    results, rows = {}, []
    for policy in ("float32", "mixed_bfloat16"):
        images_s, stats = rate(policy, shape, batch, steps, levels, width, repeats)
        results[policy] = {"images_per_s": images_s, "times": stats,
                           "peak_memory_mib": peak_memory_mib()}
        rows.append(_common.row(f"train images/s, {policy}", images_s, None, "images/s",
                                f"peak accelerator memory {results[policy]['peak_memory_mib']} MiB"))
    _common.write_results("glow_gpu", args, rows, {"shape": shape, "batch": batch,
                                                   "results": results})


if __name__ == "__main__":
    main()
