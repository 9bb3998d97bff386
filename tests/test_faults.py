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


@pytest.mark.parametrize("steps", [1, 3, "auto"])
def test_the_guard_keeps_the_state_of_the_last_finite_step_at_every_grouping(steps, capsys):
    """Batch 6 of 8 is bad: at any steps_per_execution the run stops with every weight
    and optimizer slot equal to those of a run on the first five batches alone."""
    x = tfp_flows.data.two_moons(512, seed=1)[0]

    def fresh():
        keras.utils.set_random_seed(0)
        flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(8,), seed=0)
        flow.compile(optimizer=keras.optimizers.Adam(1e-2), steps_per_execution=steps)
        return flow

    def batches(n, bad_at=5):
        stacked = np.stack([x[i:i + 64] for i in range(0, 64 * 8, 64)])
        stacked[bad_at] = 1e30
        return tf.data.Dataset.from_tensor_slices(stacked[:n])

    flow, stop = fresh(), tfp_flows.StopOnNonFiniteLoss()
    flow.fit(batches(8), epochs=1, callbacks=[stop], verbose=0)
    assert stop.bad_step == 6 and stop.restored_step == 5
    assert "training step 6" in capsys.readouterr().out
    reference = fresh()
    reference.fit(batches(5), epochs=1, verbose=0)
    state = [v.numpy() for v in flow.weights + flow.optimizer.variables]
    assert all(np.isfinite(value).all() for value in state)
    for got, want in zip(state, [v.numpy() for v in reference.weights
                                 + reference.optimizer.variables]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_actnorm_initialisation_refuses_rows_it_cannot_use():
    """The issue's case: rows 384-447 of 768 are 1e30. fit refuses them before any weight
    changes, naming the rows; clean data initialises through the public step."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(768, 4)).astype("float32")
    x[384:448] = 1e30
    flow = tfp_flows.RealNVP(4, num_steps=2, hidden_units=(8,), seed=0)
    assert tfp_flows.training.pending_actnorms(flow)  # a 4-D RealNVP has ActNorm
    flow.compile(optimizer="adam")
    before = [w.copy() for w in flow.get_weights()]
    with pytest.raises(ValueError, match=r"ActNorm's data initialisation.*row\(s\): 3[89]\d|4[0-4]\d"):
        flow.fit(x, batch_size=64, callbacks=[tfp_flows.StopOnNonFiniteLoss()], verbose=0)
    for got, want in zip(flow.get_weights(), before):
        np.testing.assert_array_equal(got, want)
    assert int(flow.optimizer.iterations.numpy()) == 0
    with pytest.raises(ValueError, match="NaN or infinite values in 1 row"):
        flow.initialize(np.where(np.arange(8)[:, None] == 2, np.nan, x[:8]))
    flow.initialize(x[:64])
    assert not tfp_flows.training.pending_actnorms(flow)
    z = flow.encode(x[:64])
    np.testing.assert_allclose(np.std(np.asarray(z), 0).mean(), 1.0, atol=0.5)


def test_sample_weights_change_what_the_flow_learns():
    """The issue's case: weight 3 where x0 > 0 makes 75% of the data's mass positive."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2048, 3)).astype("float32")
    weights = np.where(x[:, 0] > 0, 3.0, 1.0).astype("float32")
    keras.utils.set_random_seed(0)
    flow = tfp_flows.RealNVP(3, num_steps=2, hidden_units=(16,), seed=0)
    flow.compile(optimizer=keras.optimizers.Adam(1e-2))
    flow.fit(x, sample_weight=weights, batch_size=256, epochs=30, verbose=0)
    positive = float(np.mean(np.asarray(flow.sample(4000, seed=0))[:, 0] > 0))
    assert 0.65 < positive < 0.85, positive
