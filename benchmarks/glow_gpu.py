"""Case `glow_gpu`: a 32x32x3 Glow at batch 256, float32 and mixed_bfloat16.

Training images/s of ``model.fit`` (``jit_compile=True``) under each policy and the
accelerator's peak memory during that policy's runs (``_common.fit_rates_by_policy``).
Meant for a GPU (``benchmarks/gpu.sh``); ``--quick`` runs a tiny version anywhere.
``--convolutions matrix|native`` forces the convolution forms
(`tfp_flows.config.set_convolutions`; results in ``glow_gpu_<forms>.json``): on a GPU
"auto" is "native" (cuDNN); gpu.sh runs both to measure the choice.
"""

from __future__ import annotations

import tfp_flows
from benchmarks import _common


def main(argv=None):
    args = _common.parse_args(__doc__.splitlines()[0], argv, lambda parser: parser.add_argument(
        "--convolutions", default="auto", choices=["auto", "matrix", "native"]))
    tfp_flows.config.set_convolutions(args.convolutions)
    shape, batch, steps, levels, width = (((8, 8, 3), 8, 2, 2, 16) if args.quick
                                          else ((32, 32, 3), 256, 10, 3, 256))
    repeats = args.repeats or (1 if args.quick else 3)
    results, rows = _common.fit_rates_by_policy(
        lambda: tfp_flows.Glow(shape, num_levels=levels, num_steps=8, hidden_channels=width),
        shape, batch, steps, repeats)
    case = "glow_gpu" + ("" if args.convolutions == "auto" else f"_{args.convolutions}")
    _common.write_results(case, args, rows, {
        "shape": shape, "batch": batch, "results": results,
        "convolutions": tfp_flows.config.convolutions()})


if __name__ == "__main__":
    main()
