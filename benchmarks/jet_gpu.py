"""Case `jet_gpu`: a 32x32x3 Jet at batch 256, float32 and mixed_bfloat16.

Training images/s of ``model.fit`` (``jit_compile=True``) under each policy and the
accelerator's peak memory, as `glow_gpu` does for Glow. The Jet: 8 couplings, patches
of 4 (64 tokens of 48 values), ViTs of width 256, depth 2, 4 heads. Meant for a GPU
(``benchmarks/gpu.sh``); ``--quick`` runs a tiny version anywhere.
"""

from __future__ import annotations

import keras
import numpy as np

import tfp_flows
from benchmarks import _common
from benchmarks.glow_gpu import peak_memory_mib


def rate(policy, shape, batch, steps, jet, repeats):
    keras.mixed_precision.set_global_policy(policy)
    try:
        keras.utils.set_random_seed(0)
        flow = tfp_flows.Jet(shape, levels=256, **jet)
        flow.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=True,
                     steps_per_execution=steps)
        x = np.random.default_rng(0).integers(0, 256, (batch * steps,) + shape).astype(np.uint8)
        stats = _common.median_time(
            lambda: flow.fit(x, batch_size=batch, epochs=1, shuffle=False, verbose=0),
            repeats=repeats, warmup=1)
        return len(x) / stats["median_s"], stats
    finally:
        keras.mixed_precision.set_global_policy("float32")


def main(argv=None):
    args = _common.parse_args(__doc__.splitlines()[0], argv)
    if args.quick:
        shape, batch, steps = (8, 8, 3), 8, 2
        jet = dict(num_couplings=2, patch_size=2, width=16, depth=1, num_heads=2)
    else:
        shape, batch, steps = (32, 32, 3), 256, 10
        jet = dict(num_couplings=8, patch_size=4, width=256, depth=2, num_heads=4)
    repeats = args.repeats or (1 if args.quick else 3)
    results, rows = {}, []
    for policy in ("float32", "mixed_bfloat16"):
        images_s, stats = rate(policy, shape, batch, steps, jet, repeats)
        results[policy] = {"images_per_s": images_s, "times": stats,
                           "peak_memory_mib": peak_memory_mib()}
        rows.append(_common.row(f"train images/s, {policy}", images_s, None, "images/s",
                                f"peak accelerator memory {results[policy]['peak_memory_mib']} MiB"))
    _common.write_results("jet_gpu", args, rows, {"shape": shape, "batch": batch, "jet": jet,
                                                  "results": results})


if __name__ == "__main__":
    main()
