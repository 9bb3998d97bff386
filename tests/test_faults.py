"""Faults: killed runs resume, non-finite losses stop with the weights intact, bad files."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows

WORKERS = Path(__file__).parent / "workers"


def test_killed_run_resumes_at_the_right_epoch(tmp_path):
    backup, model = tmp_path / "backup", tmp_path / "flow.keras"
    command = [sys.executable, str(WORKERS / "resumable.py"), str(backup), str(model)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    lines = []
    try:
        deadline = time.time() + 300
        while time.time() < deadline:  # kill in the middle of the third epoch
            line = first.stdout.readline()
            lines.append(line.strip())
            if line.startswith("BEGIN 2"):
                time.sleep(0.3)
                os.kill(first.pid, signal.SIGKILL)
                break
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == -signal.SIGKILL, lines
    assert "END 1" in lines and "END 2" not in lines
    assert not model.exists()

    second = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    begins = [line for line in second.stdout.splitlines() if line.startswith("BEGIN")]
    assert begins[0] == "BEGIN 2" and begins[-1] == "BEGIN 5", begins  # resumed, not restarted
    flow = tfp_flows.load_flow(model)
    assert np.all(np.isfinite(flow.log_prob(tfp_flows.data.two_moons(16)[0])))


def test_a_backup_torn_by_a_kill_falls_back_to_the_previous_one(tmp_path):
    x = tfp_flows.data.two_moons(256)[0]
    flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(8,))
    flow.compile(optimizer="adam")
    backup = keras.callbacks.BackupAndRestore(str(tmp_path), double_checkpoint=True,
                                              delete_checkpoint=False)
    flow.fit(x, batch_size=64, epochs=2, callbacks=[backup], verbose=0)
    weights = tmp_path / "latest.weights.h5"
    weights.write_bytes(weights.read_bytes()[:500])  # as if killed half-way through a write
    again = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(8,))
    again.compile(optimizer="adam")
    history = again.fit(x, batch_size=64, epochs=3, callbacks=[
        keras.callbacks.BackupAndRestore(str(tmp_path), double_checkpoint=True)], verbose=0)
    assert len(history.history["loss"]) == 2  # resumed after the epoch of the good backup


def bad_batches(x, bad_at):
    batches = [x[i:i + 64] for i in range(0, 64 * 4, 64)]
    batches[bad_at] = np.full_like(batches[bad_at], 1e30)
    return tf.data.Dataset.from_tensor_slices(np.stack(batches)).map(lambda b: b)


def test_non_finite_loss_stops_with_the_last_finite_weights(capsys):
    x = tfp_flows.data.two_moons(256)[0]

    def fresh():
        keras.utils.set_random_seed(0)
        flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(8,), seed=0)
        # One step per execution: the callback sees every step (the default fuses them).
        flow.compile(optimizer=keras.optimizers.Adam(1e-2), steps_per_execution=1)
        return flow

    flow, stop = fresh(), tfp_flows.StopOnNonFiniteLoss()
    history = flow.fit(bad_batches(x, bad_at=3), epochs=2, callbacks=[stop], verbose=0)
    assert stop.bad_step == 4 and stop.restored_step == 3
    message = capsys.readouterr().out
    assert "non-finite loss" in message and "training step 4" in message
    assert len(history.history["loss"]) == 1
    reference = fresh()  # the same model trained on the three good batches only
    reference.fit(bad_batches(x, bad_at=3).take(3), epochs=1, verbose=0)
    for got, want in zip(flow.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(got, want)


def test_loading_names_the_file_and_the_problem(tmp_path):
    flow = tfp_flows.RealNVP(2, num_steps=1, hidden_units=(4,))
    good = tmp_path / "good.keras"
    flow.save(good)
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated.keras: not a readable .keras archive"):
        tfp_flows.load_flow(truncated)
    other = tmp_path / "dense.keras"
    keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]).save(other)
    with pytest.raises(ValueError, match="holds a Sequential, not a tfp_flows Flow"):
        tfp_flows.load_flow(other)
    with pytest.raises(FileNotFoundError, match="nothing.keras: no such model file"):
        tfp_flows.load_flow(tmp_path / "nothing.keras")
    assert isinstance(tfp_flows.load_flow(good), tfp_flows.Flow)
