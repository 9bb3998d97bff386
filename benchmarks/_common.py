"""Shared by every case: argument parsing, timing (medians), machine info, JSON output."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import tfp_flows  # noqa: F401  (imports TensorFlow quietly, sets the Keras backend)

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(description: str, argv=None, extra=None):
    """``--quick`` (tiny smoke run) and ``--repeats``; ``extra(parser)`` adds more."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny smoke run")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per side")
    if extra is not None:
        extra(parser)
    return parser.parse_args(argv)


def now() -> float:
    return time.perf_counter()


def timed(fn, *args, **kwargs):
    """``(seconds, result)`` of one call; ``result`` is synced to the host if it is a tensor."""
    start = now()
    result = fn(*args, **kwargs)
    _sync(result)
    return now() - start, result


def _sync(result):
    if hasattr(result, "numpy"):
        result.numpy()
    elif isinstance(result, (list, tuple)):
        for item in result:
            _sync(item)


def median_time(fn, repeats: int = 5, warmup: int = 1) -> dict:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        timed(fn)
    times = [timed(fn)[0] for _ in range(repeats)]
    return summary(times)


def alternate(functions: dict, repeats: int) -> dict:
    """Calls each of ``functions`` (name -> fn) in turn, ``repeats`` rounds; times per name.

    Alternating ours and the baseline in one process spreads machine noise (another
    process, frequency changes) over both sides instead of onto one.
    """
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, fn in functions.items():
            times[name].append(timed(fn)[0])
    return {name: summary(t) for name, t in times.items()}


def summary(times) -> dict:
    times = [float(t) for t in times]
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "n": len(times), "times_s": times,
            "spread": (max(times) - min(times)) / statistics.median(times) if times else None}


def ratio(ours, baseline):
    return None if not ours or not baseline else float(ours) / float(baseline)


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB: ``VmHWM`` where Linux has it.

    ``resource.getrusage(...).ru_maxrss`` is the fallback; on Linux it survives
    ``execve``, so a child started from a large parent reports the parent's peak
    (1.3 GiB here from a benchmark process with TensorFlow loaded): see `ru_maxrss_mb`.
    """
    peak = proc_status_mib("VmHWM")
    return ru_maxrss_mb() if peak is None else peak


def proc_status_mib(key: str):
    """A memory line of Linux's ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in MiB; None
    where there is none."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def ru_maxrss_mb() -> float:
    """``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (KiB on Linux) in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine_info() -> dict:
    import keras
    import tensorflow as tf
    import tensorflow_probability as tfp

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(device)
        except Exception:  # noqa: BLE001
            details = {}
        gpus.append({"name": device.name, "model": details.get("device_name"),
                     "compute_capability": details.get("compute_capability")})
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"cpu_model": cpu, "cpu_count": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0)), "load_average": load,
            "gpus": gpus, "python": platform.python_version(), "tensorflow": tf.__version__,
            "tensorflow_probability": tfp.__version__, "keras": keras.__version__,
            "tfp_flows": getattr(tfp_flows, "__version__", None), "platform": platform.platform()}


def peak_accelerator_mib():
    """Peak memory of the first GPU in MiB since the last `reset_accelerator_peak`; None
    without a GPU."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if not gpus:
        return None
    return tf.config.experimental.get_memory_info(gpus[0].name)["peak"] / 2**20


def reset_accelerator_peak() -> None:
    import tensorflow as tf

    for gpu in tf.config.list_logical_devices("GPU")[:1]:
        tf.config.experimental.reset_memory_stats(gpu.name)


def fit_rates_by_policy(build, shape, batch: int, steps: int, repeats: int,
                        policies=("float32", "mixed_bfloat16")):
    """Training images/s of ``model.fit`` under each Keras dtype policy, and peak memory.

    Per policy: ``build()`` makes a fresh flow for ``shape`` images (seed 0) under that
    policy, compiled with ``Adam(1e-4)``, ``jit_compile=True`` and ``steps_per_execution=
    steps``; ``fit`` on ``steps`` batches of random uint8 images is timed (median of
    ``repeats`` calls after one warm-up). Returns ``(results, rows)``: per policy the rate,
    the times and the accelerator's peak memory during that policy's runs (None on a CPU).
    """
    import keras
    import numpy as np

    results, rows = {}, []
    x = np.random.default_rng(0).integers(0, 256, (batch * steps,) + tuple(shape)).astype(np.uint8)
    for policy in policies:
        keras.mixed_precision.set_global_policy(policy)
        reset_accelerator_peak()
        try:
            keras.utils.set_random_seed(0)
            flow = build()
            flow.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=True,
                         steps_per_execution=steps)
            stats = median_time(
                lambda flow=flow: flow.fit(x, batch_size=batch, epochs=1, shuffle=False, verbose=0),
                repeats=repeats, warmup=1)
        finally:
            keras.mixed_precision.set_global_policy("float32")
        peak = peak_accelerator_mib()
        results[policy] = {"images_per_s": len(x) / stats["median_s"], "times": stats,
                           "peak_memory_mib": peak}
        rows.append(row(f"train images/s, {policy}", results[policy]["images_per_s"], None,
                        "images/s", f"peak accelerator memory {peak} MiB"))
    return results, rows


def count_params(variables) -> int:
    import numpy as np
    return int(sum(np.prod(v.shape) for v in variables))


def row(metric: str, ours=None, baseline=None, unit: str = "", note: str = "",
        higher_is_better: bool = True) -> dict:
    """One line of the printed table; ``ratio`` is ours / baseline."""
    return {"metric": metric, "ours": ours, "baseline": baseline, "unit": unit,
            "ratio": ratio(ours, baseline), "higher_is_better": higher_is_better, "note": note}


def write_results(case: str, args, rows: list, details: dict) -> Path:
    """Writes ``results/<case>.json`` (machine, settings, table rows, raw numbers)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"case": case, "quick": bool(getattr(args, "quick", False)),
            "machine": machine_info(), "rows": rows, "details": details,
            "time_unix": time.time()}
    path = RESULTS / f"{case}.json"
    path.write_text(json.dumps(data, indent=2, default=_jsonable))
    print_table(case, rows)
    print(f"wrote {path}")
    return path


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "numpy"):
        return value.numpy().tolist()
    return str(value)


def print_table(case: str, rows: list) -> None:
    from benchmarks._table import table
    print(table(rows, case))


def run_peer(python: str, script: str, data: dict, spec: dict, show_stderr: bool = False):
    """The ``"nll"`` that ``python -c script SPEC`` prints last as JSON: another interpreter
    (a peer library's, e.g. zuko's) trained on ``data``, saved as an ``.npz`` whose path
    joins ``spec`` as ``"data"``. ``show_stderr``: print what it wrote there (its curve)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "data.npz")
        np.savez(path, **data)
        done = subprocess.run([python, "-c", script, json.dumps({**spec, "data": path})],
                              capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"peer {spec.get('model')} failed:\n{done.stderr[-2000:]}")
    if show_stderr:
        print(done.stderr.strip(), flush=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["nll"]
