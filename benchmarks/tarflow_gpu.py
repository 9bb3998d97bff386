"""Case `tarflow_gpu`: a 32x32x3 TarFlow at batch 256, float32 and mixed_bfloat16.

Training images/s of ``model.fit`` (``jit_compile=True``) under each policy and the
accelerator's peak memory, as `jet_gpu` does for Jet. The TarFlow: 4 blocks of 4
Transformer layers, patches of 2 (256 tokens of 12 values), width 256, 4 heads, Gaussian
noise 0.025 (the paper's 0.05 on images in ``[-1, 1]``). Meant for a GPU
(``benchmarks/gpu.sh``); ``--quick`` runs a tiny version anywhere.
"""

from __future__ import annotations

import tfp_flows
from benchmarks import _common


def main(argv=None):
    args = _common.parse_args(__doc__.splitlines()[0], argv)
    if args.quick:
        shape, batch, steps = (8, 8, 3), 8, 2
        tarflow = dict(num_blocks=2, layers_per_block=1, patch_size=2, width=16, num_heads=2)
    else:
        shape, batch, steps = (32, 32, 3), 256, 10
        tarflow = dict(num_blocks=4, layers_per_block=4, patch_size=2, width=256, num_heads=4)
    repeats = args.repeats or (1 if args.quick else 3)
    results, rows = _common.fit_rates_by_policy(
        lambda: tfp_flows.TarFlow(shape, num_values=256, noise_std=0.025, **tarflow), shape,
        batch, steps, repeats)
    _common.write_results("tarflow_gpu", args, rows, {"shape": shape, "batch": batch,
                                                      "tarflow": tarflow, "results": results})


if __name__ == "__main__":
    main()
