"""Benchmarks of tfp_flows against TensorFlow Probability's own bijectors.

``python -m benchmarks [--quick] [case ...]`` runs every case in its own
subprocess (``python -m benchmarks.<case> [--quick]``), prints one table and
writes ``benchmarks/results/<case>.json`` and ``benchmarks/results/summary.json``.
"""

CASES = ("moons", "moons_profile", "glow_digits", "glow_compile", "wide_realnvp",
         "linear_family", "mirrored", "memory", "maf", "jet", "tarflow", "defaults", "image_pipeline",
         "glow32")
