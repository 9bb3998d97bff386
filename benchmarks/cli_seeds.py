"""The README's first command over several seeds, on the fused engine or on Keras' loop.

``python -m benchmarks.cli_seeds [--seeds 0 1 2 3 4 5 6 7] [--engine keras]``

Runs ``tfp-flows train --seed S`` (two moons: the default 16-step RealNVP, 40 epochs of
batch 256 under a warm-up cosine schedule; the seed also draws the data) once per seed
in a fresh interpreter, and prints each run's test NLL (nats) and their mean.
``--engine keras`` trains the same runs with ``compile(engine="keras", jit_compile=False)``,
Keras' own ``make_train_function`` loop, instead of the fused XLA engine: what ``fit``
gives with and without the package's own loop, seed by seed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks import _common

# Run in the child: the CLI's main, with every compile sent to the chosen engine.
CHILD = r"""
import sys
import tfp_flows
from tfp_flows.cli import main
engine = sys.argv.pop(1)
if engine == "keras":
    plain = tfp_flows.Flow.compile
    def compile(self, *args, **kwargs):
        kwargs.update(engine="keras", jit_compile=False)
        return plain(self, *args, **kwargs)
    tfp_flows.Flow.compile = compile
sys.exit(main())
"""


def run(seed: int, engine: str, quick: bool) -> float:
    """The test NLL of one ``tfp-flows train --seed seed`` run (its ``metrics.json``)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        args = ["train", "--seed", str(seed), "--out", str(out)] + (
            ["--epochs", "1"] if quick else [])
        subprocess.run([sys.executable, "-c", CHILD, engine, *args], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return json.loads((out / "metrics.json").read_text())["test_nll"]


def main(argv=None):
    def extra(parser):
        parser.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
        parser.add_argument("--engine", choices=["fused", "keras"], default="fused")

    args = _common.parse_args(__doc__.splitlines()[0], argv, extra)
    values = []
    for seed in args.seeds:
        values.append(run(seed, args.engine, args.quick))
        print(f"seed {seed} ({args.engine}): test NLL {values[-1]:.4f} nats", flush=True)
    print(f"mean over seeds {args.seeds}: {np.mean(values):.4f} nats")


if __name__ == "__main__":
    sys.exit(main())
