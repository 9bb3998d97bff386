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
