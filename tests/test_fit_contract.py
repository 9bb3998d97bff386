"""The differential harness: the fused engine against Keras' own loop, same ``train_step``.

Two copies of one flow (same initial weights) train with the same ``fit`` arguments,
one with ``compile(engine="keras")`` (Keras' ``make_train_function``, no XLA) and one
with the default engine (the fused XLA loop). For every configuration they must run
the same number of optimizer steps on the same batches in the same order, and give
the same per-epoch logs and final weights (to float rounding: XLA sums in another
order). With ``steps_per_execution="auto"`` the reference is Keras' loop with one step
per execution; with an explicit value, Keras' loop with that value.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows

N, D, MAX_STEPS = 200, 3, 400


class RecordingFlow(tfp_flows.Flow):
    """A flow that records each batch it trains on, in order: the sum of its rows
    weighted by their position (order-sensitive) and the plain sum."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batch_sums = keras.Variable(np.zeros((MAX_STEPS, 2)), trainable=False,
                                         dtype="float64", name="batch_sums")
        self.batch_count = keras.Variable(0, trainable=False, dtype="int32",
                                          name="batch_count")

    def train_step(self, data):
        x = tf.cast(tf.nest.flatten(data)[0], tf.float64)
        rows = tf.cast(tf.range(1, tf.shape(x)[0] + 1), tf.float64)[:, None]
        count = tf.convert_to_tensor(self.batch_count)
        self.batch_sums.assign(tf.tensor_scatter_nd_update(
            tf.convert_to_tensor(self.batch_sums), [[count]],
            [tf.stack([tf.reduce_sum(rows * x) + 1.0, tf.reduce_sum(x)])]))
        self.batch_count.assign_add(1)
        return super().train_step(data)


def make_flow():
    keras.utils.set_random_seed(0)
    layers = tfp_flows.RealNVP(D, num_steps=1, hidden_units=(8,), seed=0).flow_layers
    return RecordingFlow(layers, (D,), name="recording")


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(N, D)) * [1.0, 2.0, 0.5]).astype("float32")
    weights = rng.uniform(-0.5, 2.0, N).astype("float32")  # some negative
    return x, weights


@pytest.fixture(scope="module")
def pair():
    """One flow per engine, made once (their compiled steps are shared by the cases)."""
    ours, theirs = make_flow(), make_flow()
    theirs.set_weights(ours.get_weights())
    return ours, theirs, ours.get_weights()


def optimizer():
    """SGD with a moving average of the weights, which ``fit`` writes over the weights at
    its end (`keras.optimizers.Optimizer.finalize_variable_values`): both engines must
    update it on every step and write it once."""
    return keras.optimizers.SGD(0.05, use_ema=True, ema_momentum=0.5)


def compile_pair(pair, steps):
    ours, theirs, _ = pair
    ours.compile(optimizer=optimizer(), steps_per_execution=steps)
    theirs.compile(optimizer=optimizer(), engine="keras", jit_compile=False,
                   steps_per_execution=1 if steps == "auto" else steps)


def reset(pair):
    """The initial weights and a fresh optimizer state (its step count, slots and moving
    averages; its learning rate kept)."""
    for flow in pair[:2]:
        flow.set_weights(pair[2])
        for variable in flow.optimizer.variables:
            if not variable.path.endswith("learning_rate"):
                variable.assign(tf.zeros_like(variable))


def run(flow, make_args, fits=1):
    histories = []
    for _ in range(fits):
        x, y, kwargs = make_args()
        keras.utils.set_random_seed(1)
        histories.append(flow.fit(x, y, verbose=0, **kwargs).history)
    count = int(flow.batch_count.numpy())
    return {"steps": int(flow.optimizer.iterations.numpy()), "count": count,
            "batches": flow.batch_sums.numpy()[:count], "histories": histories,
            "weights": [w for w in flow.get_weights()]}


def assert_same(got, want):
    assert got["steps"] == want["steps"] and got["count"] == want["count"]
    np.testing.assert_allclose(got["batches"], want["batches"], rtol=1e-6)
    for mine, theirs in zip(got["histories"], want["histories"]):
        assert mine.keys() == theirs.keys()
        for key in theirs:
            np.testing.assert_allclose(mine[key], theirs[key], rtol=2e-4, err_msg=key)
    for a, b in zip(got["weights"], want["weights"]):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)


def dataset(x, batch=32, repeat=False, weights=None):
    parts = x if weights is None else (x, np.zeros((len(x), 0), "float32"), weights)
    ds = tf.data.Dataset.from_tensor_slices(parts).batch(batch)
    return ds.repeat() if repeat else ds


class StopAfterEpoch(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            self.model.stop_training = True


class StopAtBatch(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch >= 6:
            self.model.stop_training = True


def cases(x, w, steps):
    """The matrix: name -> (fits, a function giving ``(x, y, fit kwargs)``)."""
    xv = x[:40]
    matrix = {
        "arrays": (1, lambda: (x, None, dict(batch_size=48, epochs=2, shuffle=False))),
        "arrays, last batch whole": (1, lambda: (x[:192], None, dict(batch_size=32,
                                                                       shuffle=False))),
        "finite dataset": (1, lambda: (dataset(x), None, dict(epochs=2))),
        "endless dataset, steps_per_epoch=1": (1, lambda: (dataset(x, repeat=True), None,
                                                            dict(epochs=6, steps_per_epoch=1))),
        "endless dataset, steps_per_epoch=5": (1, lambda: (dataset(x, repeat=True), None,
                                                            dict(epochs=3, steps_per_epoch=5))),
        "finite dataset, shorter steps_per_epoch": (1, lambda: (dataset(x), None, dict(
            epochs=3, steps_per_epoch=3))),
        "finite dataset, equal steps_per_epoch": (1, lambda: (dataset(x), None, dict(
            epochs=2, steps_per_epoch=7))),
        "finite dataset, longer steps_per_epoch": (1, lambda: (dataset(x), None, dict(
            epochs=2, steps_per_epoch=10))),
        "arrays, steps_per_epoch": (1, lambda: (x, None, dict(batch_size=32, epochs=3,
                                                              steps_per_epoch=4, shuffle=False))),
        "initial_epoch": (1, lambda: (x, None, dict(batch_size=32, epochs=3, initial_epoch=1,
                                                    shuffle=False))),
        "validation_split and validation_freq": (1, lambda: (x, None, dict(
            batch_size=32, epochs=2, validation_split=0.25, validation_freq=2,
            shuffle=False))),
        "validation_data": (1, lambda: (x, None, dict(batch_size=32, epochs=2, shuffle=False,
                                                      validation_data=(xv,)))),
        "weighted validation_data": (1, lambda: (x, None, dict(
            batch_size=32, shuffle=False, validation_data=(xv, None, w[:40])))),
        "sample_weight arrays (negative weights)": (1, lambda: (x, None, dict(
            batch_size=32, epochs=2, shuffle=False, sample_weight=w))),
        "sample_weight dataset": (1, lambda: (dataset(x, weights=w), None, dict(epochs=2))),
        "two fits in a row": (2, lambda: (x[:96], None, dict(batch_size=32, shuffle=False))),
        "stop_training at an epoch's end": (1, lambda: (x, None, dict(
            batch_size=32, epochs=4, shuffle=False, callbacks=[StopAfterEpoch()]))),
    }
    if steps == "auto":
        return matrix
    # Explicit groupings: the cases where the grouping changes what Keras' loop does,
    # and a batch callback (it sees each execution: equal where both group alike).
    core = ("arrays", "endless dataset, steps_per_epoch=1", "endless dataset, steps_per_epoch=5",
            "finite dataset, shorter steps_per_epoch", "finite dataset, longer steps_per_epoch",
            "validation_split and validation_freq", "sample_weight arrays (negative weights)")
    if steps == 1:  # the explicit path of [7] with no grouping: its edges only
        core = ("endless dataset, steps_per_epoch=5", "finite dataset, shorter steps_per_epoch",
                "sample_weight arrays (negative weights)")
    matrix = {name: matrix[name] for name in core}
    matrix["stop_training at a batch"] = (1, lambda: (x, None, dict(
        batch_size=16, epochs=2, shuffle=False, callbacks=[StopAtBatch()])))
    return matrix




@pytest.mark.parametrize("steps", ["auto", 1, 7])
def test_fused_engine_equals_keras_loop(pair, data, steps):
    x, w = data
    compile_pair(pair, steps)
    failures = []
    for name, (fits, make_args) in cases(x, w, steps).items():
        reset(pair)
        start = [v.numpy() for v in pair[1].trainable_weights]
        want = run(pair[1], make_args, fits)
        got = run(pair[0], make_args, fits)
        try:
            assert want["steps"] > 0
            assert any(not np.allclose(a, v.numpy()) for a, v in
                       zip(start, pair[1].trainable_weights)), "Keras' loop did not train"
            assert_same(got, want)
        except AssertionError as error:
            failures.append(f"{name}: {str(error)[:400]}")
    assert not failures, "\n".join(failures)


def test_auto_steps_run_the_steps_asked(pair, data):
    """The issue's case: 6 epochs of one step each are 6 steps, whatever the grouping."""
    x, _ = data
    ours = pair[0]
    ours.compile(optimizer=keras.optimizers.SGD(0.02))
    reset(pair)
    ours.fit(dataset(x, repeat=True), epochs=6, steps_per_epoch=1, verbose=0)
    assert int(ours.optimizer.iterations.numpy()) == 6


def test_shuffled_arrays_see_each_row_once_an_epoch(pair, data):
    """``shuffle=True``: the same number of steps, every row once per epoch, the same
    batch sizes. The permutations themselves come from different random streams (Keras
    draws one per epoch iterator, the fused engine one per epoch of one stream), so
    the batches differ after the first epoch even under one global seed."""
    x, _ = data
    compile_pair(pair, "auto")
    reset(pair)
    results = [run(flow, lambda: (x, None, dict(batch_size=32, epochs=2))) for flow in pair[:2]]
    for result in results:
        assert result["steps"] == result["count"] == 14
        for epoch in (slice(0, 7), slice(7, 14)):
            np.testing.assert_allclose(result["batches"][epoch, 1].sum(), x.sum(), rtol=1e-5)


class KilledError(Exception):
    pass


class KillAtEpoch(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise KilledError


def test_backup_and_restore_resumes_as_keras_loop(pair, data, tmp_path):
    """A run killed at its third epoch and resumed by BackupAndRestore ends as in Keras."""
    x, _ = data
    compile_pair(pair, "auto")
    reset(pair)
    results = []
    for flow, folder in zip(pair[:2], ("ours", "theirs")):
        backup = str(tmp_path / folder)
        args = dict(batch_size=48, epochs=4, shuffle=False, verbose=0)
        with pytest.raises(KilledError):
            flow.fit(x, callbacks=[keras.callbacks.BackupAndRestore(backup), KillAtEpoch()],
                     **args)
        history = flow.fit(x, callbacks=[keras.callbacks.BackupAndRestore(backup)], **args)
        results.append({"steps": int(flow.optimizer.iterations.numpy()),
                        "count": int(flow.batch_count.numpy()), "histories": [history.history],
                        "batches": flow.batch_sums.numpy()[:int(flow.batch_count.numpy())],
                        "weights": flow.get_weights()})
    assert len(results[1]["histories"][0]["loss"]) == 2  # resumed at the third epoch
    assert_same(*results)


def test_one_replica_mirrored_strategy_trains_as_one_device(data):
    """Under MirroredStrategy with one replica, the default engine trains as without it
    (two replicas: tests/workers/mirrored.py)."""
    x, _ = data
    results = []
    for strategy in (tf.distribute.get_strategy(), tf.distribute.MirroredStrategy(["/cpu:0"])):
        with strategy.scope():
            flow = make_flow()
            flow.compile(optimizer=keras.optimizers.SGD(0.05))
        history = flow.fit(dataset(x, repeat=True), epochs=3, steps_per_epoch=4, verbose=0)
        results.append((int(flow.optimizer.iterations.numpy()), history.history["loss"],
                        flow.get_weights()))
    (steps, losses, weights), (want_steps, want_losses, want_weights) = results
    assert steps == want_steps == 12
    np.testing.assert_allclose(losses, want_losses, rtol=1e-4)
    for a, b in zip(weights, want_weights):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
