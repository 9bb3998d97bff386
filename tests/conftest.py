"""Quiet TensorFlow and keep tests deterministic and small."""

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import tfp_flows  # noqa: E402,F401  (imports TensorFlow quietly)

# Under pytest-xdist each worker is one of several processes sharing the cores: one
# thread per op each, instead of every worker's pool spinning on all of them.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") != "1":
    import tensorflow as tf

    workers = int(os.environ["PYTEST_XDIST_WORKER_COUNT"])
    tf.config.threading.set_intra_op_parallelism_threads(max(1, (os.cpu_count() or 1) // workers))


def make_digits_like(n=64, seed=0, num_values=17, num_classes=10):
    """``n`` random 8x8 images of ``num_values`` grey levels (int32) and labels in
    ``[0, num_classes)`` (int32)."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, num_values, (n, 8, 8, 1)).astype(np.int32),
            rng.integers(0, num_classes, n).astype(np.int32))


@pytest.fixture(scope="session")
def digits_like():
    return make_digits_like


# A fresh interpreter in which tfp_flows and TFP cannot be imported, as on a TensorFlow
# Serving host: it loads each exported SavedModel it is sent and runs its signatures.
# One per worker, started on first use (each start is a TensorFlow import).
SERVER = """
import json, sys
sys.modules["tfp_flows"] = None
sys.modules["tensorflow_probability"] = None
import numpy as np
import tensorflow as tf
for line in sys.stdin:
    request = json.loads(line)
    try:
        inputs = dict(np.load(request["inputs"], allow_pickle=False))
        model = tf.saved_model.load(request["model"])
        out = {}
        for key in sorted({k.split(".")[0] for k in inputs}):
            args = {k.split(".", 1)[1]: tf.constant(v) for k, v in inputs.items()
                    if k.startswith(key + ".")}
            for name, value in model.signatures[key](**args).items():
                out[key + "." + name] = value.numpy()
        np.savez(request["outputs"], **out)
        reply = {"ok": True}
    except Exception as error:  # reported to the test, which fails with it
        reply = {"ok": False, "error": repr(error)}
    print("SERVED " + json.dumps(reply), flush=True)
"""


@pytest.fixture(scope="session")
def serve(tmp_path_factory):
    """``serve(model_dir, {"signature.argument": array})`` -> ``{"signature.output":
    array}``, computed by the SavedModel alone in a process without the package."""
    import json
    import subprocess
    import sys

    folder = tmp_path_factory.mktemp("serving")
    (folder / "server.py").write_text(SERVER)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    process = subprocess.Popen([sys.executable, str(folder / "server.py")], cwd=folder, env=env,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    count = 0

    def run(model_dir, inputs):
        nonlocal count
        count += 1
        request = {"model": str(model_dir), "inputs": str(folder / f"in{count}.npz"),
                   "outputs": str(folder / f"out{count}.npz")}
        np.savez(request["inputs"], **inputs)
        process.stdin.write(json.dumps(request) + "\n")
        process.stdin.flush()
        for line in process.stdout:
            if line.startswith("SERVED "):
                reply = json.loads(line[len("SERVED "):])
                assert reply["ok"], reply["error"]
                return dict(np.load(request["outputs"]))
        raise RuntimeError(f"the serving process ended (exit code {process.wait()})")

    yield run
    process.stdin.close()
    process.wait(timeout=60)
