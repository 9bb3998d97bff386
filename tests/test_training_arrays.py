"""Arrays given to fit: one iterator per fit, epochs exactly as Keras batches them."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows.training import array_epochs


def test_each_epoch_is_a_new_permutation_cut_as_keras_cuts_it():
    stream = iter(array_epochs.repeated_epochs(np.arange(10), batch_size=4, shuffle=True,
                                               epochs=3)[1])
    epochs = [[next(stream)[0].numpy() for _ in range(3)] for _ in range(3)]
    assert next(stream, None) is None  # ends after its epochs
    for batches in epochs:
        assert [len(b) for b in batches] == [4, 4, 2]
        assert sorted(np.concatenate(batches)) == list(range(10))
    assert len({tuple(np.concatenate(b)) for b in epochs}) == 3  # reshuffled every epoch
    ordered = iter(array_epochs.repeated_epochs(np.arange(5.0), np.arange(5), 2, shuffle=False,
                                                epochs=2)[1])
    x, y = next(ordered)
    assert x.dtype == tf.float32 and y.dtype == tf.int64  # floats as floatx, as Keras gives
    np.testing.assert_array_equal(x, [0.0, 1.0])
    assert [len(next(ordered)[0]) for _ in range(4)] == [2, 1, 2, 2]


def test_a_stream_is_fed_anew_by_each_fit():
    """The pipeline is built once and reused: the next fit's rows (changed in place, or
    more of them) and a new permutation; ``set_random_seed`` repeats the permutations;
    `release` drops the rows; a different structure builds a new stream."""
    def epochs(x, stream=None, seed=None):
        if seed is not None:
            tf.random.set_seed(seed)
        stream, data = array_epochs.repeated_epochs(x, None, 4, True, 2, stream=stream)
        batches = [b[0].numpy() for b in data]
        per_epoch = -(-len(x) // 4)
        assert len(batches) == 2 * per_epoch
        return stream, [np.concatenate(batches[:per_epoch]),
                        np.concatenate(batches[per_epoch:])]
    x = np.arange(10.0)
    stream, first = epochs(x, seed=3)
    again, second = epochs(x, stream)
    assert again is stream
    assert {tuple(e) for e in first} != {tuple(e) for e in second}  # not replayed
    assert all(sorted(e) == list(x) for e in first + second)
    _, repeated = epochs(x, stream, seed=3)
    np.testing.assert_array_equal(repeated, first)
    x[:] += 100.0  # in place, between fits
    _, moved = epochs(x, stream)
    assert all(sorted(e) == list(x) for e in moved)
    _, longer = epochs(np.arange(13.0), stream)
    assert all(sorted(e) == list(range(13)) for e in longer)
    stream.release()
    assert stream.rows == 0
    assert epochs(np.zeros((10, 2)), stream)[0] is not stream


def test_only_plain_arrays_take_the_stream():
    x = np.zeros((8, 2), np.float32)
    assert array_epochs.applies(x, None, {"batch_size": 4, "epochs": 2})
    assert array_epochs.applies(tf.constant(x), np.zeros(8), {"shuffle": False})
    assert array_epochs.applies(x, np.zeros((8, 0)), {"sample_weight": np.ones(8)})
    for kwargs in ({"validation_split": 0.2},
                   {"steps_per_epoch": 3}, {"class_weight": {0: 1.0}}, {"shuffle": "batch"}):
        assert not array_epochs.applies(x, None, kwargs), kwargs
    assert not array_epochs.applies(tf.data.Dataset.from_tensors(x), None, {})


@pytest.mark.parametrize("steps_per_execution", [3, 8])
def test_fit_on_arrays_trains_as_on_the_same_batches_from_a_dataset(steps_per_execution):
    """Executions stop at each epoch's end: 4 batches per epoch (the last one of 8 rows)
    in executions of 3 (3 + 1) or 8 (4) give the weights Keras' dataset path gives."""
    x = np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32)
    weights, losses = [], []
    for data in (x, tf.data.Dataset.from_tensor_slices(x).batch(64)):
        keras.utils.set_random_seed(1)
        flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(8,))
        flow.compile(optimizer=keras.optimizers.Adam(0.01), steps_per_execution=steps_per_execution)
        initial = [v.numpy() for v in flow.trainable_variables]
        history = flow.fit(data, batch_size=64 if data is x else None, epochs=3, shuffle=False,
                           verbose=0)
        weights.append([v.numpy() for v in flow.trainable_variables])
        losses.append(history.history["loss"])
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(initial, weights[0])) > 1e-2
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-6)
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
