"""Case `memory`: training memory and step time, ``backprop="store"`` against ``"inverse"``.

A continuous Glow on 16x16x3 images (2 levels, width 64, batch 128) at 4, 8 and 16
steps per level, trained by ``model.fit`` (``jit_compile=True``). Memory two ways:

- as XLA lays out the compiled training step (its buffer assignment, dumped with
  ``--xla_dump_to``): the temporaries (activations, gradients, workspace: one
  preallocated block) and the peak of live buffers in XLA's heap simulation,
  parameters included;
- as the process sees it (Linux; `benchmarks._process_memory`, a fresh process per
  configuration): resident memory after compilation, and the peak during steps above
  it less one set of gradients. On a GPU (``--gpu``) also the allocator's peak
(``tf.config.experimental.get_memory_info``) and the largest batch that fits. Step
time: median of ``fit`` epochs, the two modes alternately.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

# Read once, when XLA starts: set before TensorFlow is imported.
_DUMP = tempfile.mkdtemp(prefix="xla_dump_")
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           f" --xla_dump_to={_DUMP} --xla_dump_hlo_as_text"
                           " --xla_dump_hlo_module_re=.*(train_step|_loop).*").strip()

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfp_flows  # noqa: E402
from benchmarks import _common  # noqa: E402

MODES = ("store", "inverse")


def xla_memory(paths) -> dict:
    """Temporaries and peak (MiB) of the largest compiled module among buffer-assignment dumps."""
    best = None
    for path in paths:
        text = Path(path).read_text()
        temp = sum(int(m.group(1)) for m in
                   re.finditer(r"allocation \d+: size (\d+), preallocated-temp", text))
        peak = re.search(r"peak usage: ([\d ]+) bytes", text)
        entry = {"temp_mib": temp / 2**20 if temp else None,
                 "peak_mib": None if peak is None else int(peak.group(1).replace(" ", "")) / 2**20,
                 "file": Path(path).name}
        if best is None or (entry["temp_mib"] or 0) > (best["temp_mib"] or 0):
            best = entry
    return best or {"temp_mib": None, "peak_mib": None, "file": None}


def _dumps() -> set:
    return set(map(str, Path(_DUMP).glob("*buffer-assignment.txt")))


def gpu_peak_mib():
    gpus = tf.config.list_logical_devices("GPU")
    if not gpus:
        return None
    return tf.config.experimental.get_memory_info(gpus[0].name)["peak"] / 2**20


def reset_gpu_peak():
    for device in tf.config.list_logical_devices("GPU"):
        tf.config.experimental.reset_memory_stats(device.name)


def build(mode, shape, num_steps, width, steps_timed, batch):
    keras.utils.set_random_seed(0)
    flow = tfp_flows.Glow(shape, num_levels=2, num_steps=num_steps, hidden_channels=width,
                          num_values=None)
    flow.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=True, steps_per_execution=1,
                 backprop=mode)
    x = np.random.default_rng(0).normal(size=(batch * steps_timed,) + shape).astype(np.float32)
    before = _dumps()
    reset_gpu_peak()
    compile_s, _ = _common.timed(lambda: flow.fit(x[:batch], batch_size=batch, epochs=1,
                                                  shuffle=False, verbose=0))
    memory = xla_memory(_dumps() - before)
    memory.update(gpu_peak_mib=gpu_peak_mib(), first_step_s=compile_s)
    return flow, x, memory


def process_memory(mode, num_steps, quick) -> dict:
    """`benchmarks._process_memory` in a fresh interpreter; ``{}`` where it cannot run."""
    command = [sys.executable, "-m", "benchmarks._process_memory", mode, str(num_steps)]
    done = subprocess.run(command + (["--quick"] if quick else []), capture_output=True,
                          text=True, check=False)
    if done.returncode:
        print(f"process memory not measured ({mode}, {num_steps}): {done.stderr[-300:]}")
        return {}
    return json.loads(done.stdout.strip().splitlines()[-1])


def largest_batch(mode, shape, num_steps, width, memory_at, limit):
    """Largest batch whose step runs on the GPU: a linear fit of the allocator's peak at
    two batches predicts it, and one step verifies it (backing off by 0.8 on OOM)."""
    (b1, m1), (b2, m2) = memory_at
    total = 0.9 * _gpu_total_mib()
    per_example = max((m2 - m1) / (b2 - b1), 1e-6)
    batch = int(min(limit, b2 + 0.9 * (total - m2) / per_example))
    for _ in range(4):
        try:
            build(mode, shape, num_steps, width, 1, batch)
            return {"batch": batch, "predicted_per_example_mib": per_example}
        except tf.errors.ResourceExhaustedError:
            batch = int(0.8 * batch)
    return {"batch": None, "predicted_per_example_mib": per_example}


def _gpu_total_mib():
    import subprocess

    out = subprocess.run(["nvidia-smi", "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                         capture_output=True, text=True, check=False).stdout.split()
    return float(out[0]) if out else 0.0


def main(argv=None):
    def extra(parser):
        parser.add_argument("--gpu", action="store_true",
                            help="also the largest batch that fits on the GPU")
        parser.add_argument("--max-batch", type=int, default=262144)

    args = _common.parse_args(__doc__.splitlines()[0], argv, extra)
    if args.quick:
        shape, depths, width, batch, steps_timed = (8, 8, 3), (1, 4), 16, 16, 2
    else:
        shape, depths, width, batch, steps_timed = (16, 16, 3), (4, 8, 16), 64, 128, 3
    repeats = args.repeats or (2 if args.quick else 3)
    results, rows = {}, []
    for num_steps in depths:
        runs, entry = {}, {}
        for mode in MODES:
            flow, x, memory = build(mode, shape, num_steps, width, steps_timed, batch)
            entry[mode] = memory
            runs[mode] = (lambda flow=flow, x=x: flow.fit(x, batch_size=batch, epochs=1,
                                                          shuffle=False, verbose=0))
        times = _common.alternate(runs, repeats)
        for mode in MODES:
            entry[mode]["step_s"] = times[mode]["median_s"] / steps_timed
            entry[mode]["times"] = times[mode]
        if args.gpu and tf.config.list_physical_devices("GPU"):
            for mode in MODES:
                small = entry[mode]["gpu_peak_mib"]
                _, _, big = build(mode, shape, num_steps, width, 1, 4 * batch)
                entry[mode]["largest_batch"] = largest_batch(
                    mode, shape, num_steps, width,
                    [(batch, small), (4 * batch, big["gpu_peak_mib"])], args.max_batch)
        for mode in MODES:
            entry[mode]["process"] = process_memory(mode, num_steps, args.quick)
        results[num_steps] = entry
        label = f"{num_steps} steps/level"
        rows.append(_common.row(f"step activation memory (XLA temporaries), {label}",
                                entry["inverse"]["temp_mib"], entry["store"]["temp_mib"], "MiB",
                                "ours = backprop='inverse', baseline = 'store'",
                                higher_is_better=False))
        rows.append(_common.row(f"step peak of live buffers (XLA heap simulation), {label}",
                                entry["inverse"]["peak_mib"], entry["store"]["peak_mib"], "MiB",
                                higher_is_better=False))
        if entry["inverse"]["process"] and entry["store"]["process"]:
            rows.append(_common.row(f"process peak during steps less gradients, {label}",
                                    entry["inverse"]["process"]["steps_less_gradients_mib"],
                                    entry["store"]["process"]["steps_less_gradients_mib"], "MiB",
                                    "fresh process; VmHWM after a reset, less VmRSS",
                                    higher_is_better=False))
            rows.append(_common.row(f"process resident after compilation, {label}",
                                    entry["inverse"]["process"]["compiled_mib"],
                                    entry["store"]["process"]["compiled_mib"], "MiB",
                                    "weights, slots, traced graphs, compiled program",
                                    higher_is_better=False))
        if entry["store"].get("gpu_peak_mib") is not None:
            rows.append(_common.row(f"GPU allocator peak, {label}", entry["inverse"]["gpu_peak_mib"],
                                    entry["store"]["gpu_peak_mib"], "MiB",
                                    higher_is_better=False))
        if "largest_batch" in entry["store"]:
            rows.append(_common.row(f"largest batch that fits on the GPU, {label}",
                                    entry["inverse"]["largest_batch"]["batch"],
                                    entry["store"]["largest_batch"]["batch"], "examples"))
        rows.append(_common.row(f"step time, {label}", entry["inverse"]["step_s"],
                                entry["store"]["step_s"], "s", f"median of {repeats} fit epochs "
                                f"of {steps_timed} steps, alternately", higher_is_better=False))
    shallow, deep = results[depths[0]], results[depths[-1]]

    def growth(mode, *keys):
        values = [shallow[mode], deep[mode]]
        for key in keys:
            values = [value.get(key) if value else None for value in values]
        return None if None in values else values[1] / values[0]

    label = f"{depths[-1]} / {depths[0]} steps per level"
    rows.append(_common.row(f"activation memory growth (XLA temporaries), {label}",
                            growth("inverse", "temp_mib"), growth("store", "temp_mib"), "x",
                            higher_is_better=False))
    rows.append(_common.row(f"process peak during steps growth, {label}",
                            growth("inverse", "process", "steps_less_gradients_mib"),
                            growth("store", "process", "steps_less_gradients_mib"), "x",
                            "floor: inverse <= 1.5x", higher_is_better=False))
    rows.append(_common.row(f"process resident after compilation growth, {label}",
                            growth("inverse", "process", "compiled_mib"),
                            growth("store", "process", "compiled_mib"), "x",
                            higher_is_better=False))
    _common.write_results("memory", args, rows, {
        "shape": shape, "batch": batch, "width": width, "results": results,
        "peak_rss_mib_whole_process": _common.peak_rss_mb(),
        "load_average_after": os.getloadavg()})


if __name__ == "__main__":
    import shutil

    try:
        main()
    finally:
        shutil.rmtree(_DUMP, ignore_errors=True)
