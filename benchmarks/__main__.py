"""``python -m benchmarks [--quick] [case ...]``: every case in its own subprocess, one table.

This process does not import TensorFlow: each case starts small and measures
only itself (peak memory included).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import CASES

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", metavar="case",
                        help=f"cases to run (default all: {', '.join(CASES)})")
    parser.add_argument("--quick", action="store_true", help="tiny smoke runs (~3 minutes)")
    args = parser.parse_args(argv)
    cases = args.cases or list(CASES)
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; expected some of {', '.join(CASES)}")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    summary = {"quick": args.quick, "cases": {}, "load_average_before": os.getloadavg()}
    for case in cases:
        path = RESULTS / f"{case}.json"
        if path.exists():
            path.unlink()
        print(f"=== {case}", flush=True)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", f"benchmarks.{case}"]
                              + (["--quick"] if args.quick else []),
                              cwd=ROOT.parent, env=env, check=False)
        entry = {"returncode": done.returncode, "wall_s": time.perf_counter() - start}
        if path.exists():
            data = json.loads(path.read_text())
            entry.update(rows=data["rows"], machine=data["machine"])
            summary.setdefault("machine", data["machine"])
        summary["cases"][case] = entry
    summary["load_average_after"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "summary.json").write_text(json.dumps(summary, indent=2))
    print_summary(summary)
    print(f"wrote {RESULTS / 'summary.json'}")
    return 0 if all(c["returncode"] == 0 for c in summary["cases"].values()) else 1


def print_summary(summary):
    from benchmarks._table import table

    machine = summary.get("machine", {})
    print(f"\nmachine: {machine.get('cpu_model')}, {machine.get('cpus_usable')} usable CPUs, "
          f"GPUs {[g.get('model') or g.get('name') for g in machine.get('gpus', [])]}, "
          f"TF {machine.get('tensorflow')}, TFP {machine.get('tensorflow_probability')}, "
          f"Keras {machine.get('keras')}; load average before {summary['load_average_before']}")
    lines = []
    for case, entry in summary["cases"].items():
        if entry["returncode"] != 0 or "rows" not in entry:
            lines.append({"metric": f"FAILED (exit {entry['returncode']})", "ours": None,
                          "baseline": None, "ratio": None, "unit": "", "note": "", "case": case})
        for row in entry.get("rows", []):
            lines.append({**row, "case": case})
    print(table(lines))


if __name__ == "__main__":
    sys.exit(main())
