"""tf.distribute: two logical CPU devices, and two worker processes on the loopback."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKERS = Path(__file__).parent / "workers"


def run_worker(script, *args, env=None, timeout=600):
    return subprocess.run([sys.executable, str(WORKERS / script), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def last_json(stdout):
    return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])


def test_mirrored_strategy_matches_one_device_and_saves_and_exports(tmp_path):
    result = run_worker("mirrored.py", tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    report = last_json(result.stdout)
    assert report["replicas"] == 2
    # Same global batch, so the same losses; XLA on two devices sums in another order.
    np.testing.assert_allclose(report["mirrored"], report["single"], rtol=1e-4)
    assert report["reloaded_same"]
    # The case: 6 epochs of one step are 6 steps on one device and on two.
    assert report["steps_asked"] == [6, 6]
    np.testing.assert_allclose(*report["steps_asked_losses"], rtol=1e-4)
    assert np.all(np.isfinite(report["glow_loss"])) and np.all(np.isfinite(report["mixed_loss"]))
    assert (tmp_path / "mirrored_export" / "1" / "saved_model.pb").exists()
    # Inverse backprop on two replicas (per-replica XLA) makes autodiff's one-device update.
    # The floor of tests/test_inverse_backprop.py: 1e-4 relative (Frobenius) on every weight.
    store = [np.array(w) for w in report["single_store"]]
    inverse = [np.array(w) for w in report["mirrored_inverse"]]
    assert len(store) == len(inverse) > 0
    largest = max(np.linalg.norm(w) for w in store)
    assert largest > 0
    for want, got in zip(store, inverse):  # a zero gradient: compared at 1e-3 of the largest
        assert np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-3 * largest) < 1e-4


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_on_loopback_end_with_the_same_weights(tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    try:
        for index in range(2):
            env = {**os.environ, "TF_CONFIG": json.dumps(
                {"cluster": cluster, "task": {"type": "worker", "index": index}})}
            processes.append(subprocess.Popen(
                [sys.executable, str(WORKERS / "multiworker.py"), str(tmp_path)],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
        outputs = [p.communicate(timeout=400) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(processes, outputs):
        assert p.returncode == 0, err[-3000:]
    reports = [last_json(out) for out, _ in outputs]
    assert [r["chief"] for r in reports] == [True, False]
    assert all(np.all(np.isfinite(r["loss"])) for r in reports)
    first, second = np.load(tmp_path / "weights_0.npz"), np.load(tmp_path / "weights_1.npz")
    assert len(first.files) == len(second.files) > 10
    for key in first.files:
        np.testing.assert_array_equal(first[key], second[key])
    assert (tmp_path / "model.keras").exists()  # written by the chief alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras", "weights_0.npz",
                                                          "weights_1.npz"]


@pytest.mark.parametrize("name", ["default", "mirrored"])
def test_strategy_by_name(name):
    from tfp_flows.distribute import is_chief, make_strategy

    strategy = make_strategy(name)
    assert strategy.num_replicas_in_sync >= 1 and is_chief(strategy)
    with pytest.raises(ValueError, match="expected a strategy in"):
        make_strategy("parameter_server")
