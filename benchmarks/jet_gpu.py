"""Case `jet_gpu`: a 32x32x3 Jet at batch 256, float32 and mixed_bfloat16.

Training images/s of ``model.fit`` (``jit_compile=True``) under each policy and the
accelerator's peak memory, as `glow_gpu` does for Glow. The Jet: 8 couplings, patches
of 4 (64 tokens of 48 values), ViTs of width 256, depth 2, 4 heads. Meant for a GPU
(``benchmarks/gpu.sh``); ``--quick`` runs a tiny version anywhere.
"""

from __future__ import annotations

import tfp_flows
from benchmarks import _common


def main(argv=None):
    args = _common.parse_args(__doc__.splitlines()[0], argv)
    if args.quick:
        shape, batch, steps = (8, 8, 3), 8, 2
        jet = dict(num_couplings=2, patch_size=2, width=16, depth=1, num_heads=2)
    else:
        shape, batch, steps = (32, 32, 3), 256, 10
        jet = dict(num_couplings=8, patch_size=4, width=256, depth=2, num_heads=4)
    repeats = args.repeats or (1 if args.quick else 3)
    results, rows = _common.fit_rates_by_policy(
        lambda: tfp_flows.Jet(shape, num_values=256, **jet), shape, batch, steps, repeats)
    _common.write_results("jet_gpu", args, rows, {"shape": shape, "batch": batch, "jet": jet,
                                                  "results": results})


if __name__ == "__main__":
    main()
