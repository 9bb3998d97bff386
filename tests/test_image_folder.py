"""Image folders in graph mode (`tfp_flows.data.image_folder`) and Keras' own image datasets
given to discrete flows."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows import data


def write_pngs(root, count=8, shape=(12, 10, 3), seed=0):
    """``count`` random RGB PNG files in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(0, 256, shape).astype(np.uint8)
        (root / f"{i:02d}.png").write_bytes(tf.io.encode_png(pixels).numpy())
    return root


def tiny_glow():
    keras.utils.set_random_seed(0)
    flow = tfp_flows.Glow((8, 8, 3), num_levels=1, num_steps=1, hidden_channels=8,
                          num_values=256)
    flow.compile(keras.optimizers.Adam(1e-3), jit_compile=False)
    return flow


# -- image_folder -------------------------------------------------------------------------

def test_the_pipeline_is_graph_only_and_seeded(tmp_path):
    root = write_pngs(tmp_path / "images", count=12)
    dataset = data.image_folder(root, 4, channels=3, batch_size=5, seed=1)
    graph = dataset._as_serialized_graph().numpy()  # serialises: no Python function in it
    assert b"PyFunc" not in graph
    epochs = [np.concatenate([b.numpy() for b in dataset]) for _ in range(2)]
    again = data.image_folder(root, 4, channels=3, batch_size=5, seed=1)
    assert np.array_equal(epochs[0], np.concatenate([b.numpy() for b in again]))
    assert not np.array_equal(epochs[0], epochs[1])  # reshuffled every epoch
    other = np.concatenate([b.numpy() for b in data.image_folder(root, 4, channels=3, seed=2)])
    assert not np.array_equal(epochs[0], other)
    in_order = np.concatenate([b.numpy() for b in data.image_folder(root, 4, channels=3,
                                                                     shuffle=False)])
    assert sorted(map(bytes, epochs[0])) == sorted(map(bytes, in_order))
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    batches = list(strategy.experimental_distribute_dataset(dataset))
    assert sum(int(b.shape[0]) for b in batches) == 12


def test_unreadable_images_are_found_by_their_ends(tmp_path):
    rng = np.random.default_rng(0)
    png = tf.io.encode_png(rng.integers(0, 256, (9, 9, 3)).astype(np.uint8)).numpy()
    large = tf.io.encode_jpeg(rng.integers(0, 256, (320, 320, 3)).astype(np.uint8),
                              quality=95).numpy()
    assert len(large) > 1 << 16
    files = {"whole.png": png, "whole.jpg": large, "empty.png": b"",
             "text.png": b"not an image", "cut.png": png[:-20],
             "bad-header.png": png[:19] + b"\x0a" + png[20:],  # width 10: CRC fails
             "cut.jpg": large[:len(large) // 2],
             "trailer.jpg": large + bytes(70_000)}  # end marker, then 70 kB of zeros
    for name, contents in files.items():
        (tmp_path / name).write_bytes(contents)
    reasons = {name: data.unreadable_image(tmp_path / name) for name in files}
    assert reasons.pop("whole.png") is None and reasons.pop("whole.jpg") is None
    assert reasons.pop("trailer.jpg") is None
    assert all(reasons.values()), reasons
    assert "truncated JPEG" in reasons["cut.jpg"] and "IEND" in reasons["cut.png"]


def test_a_file_that_passes_the_check_but_fails_to_decode_is_dropped(tmp_path):
    root = write_pngs(tmp_path / "images", count=4)
    contents = bytearray((root / "00.png").read_bytes())
    middle = len(contents) // 2
    contents[middle:middle + 40] = bytes(40)  # compressed data spoilt, both ends whole
    (root / "00.png").write_bytes(bytes(contents))
    assert data.unreadable_image(root / "00.png") is None
    batches = list(data.image_folder(root, 4, channels=3, batch_size=8, shuffle=False))
    assert [int(b.shape[0]) for b in batches] == [3]


# -- Keras' image datasets and discrete flows -------------------------------------------------

def test_fractional_pixels_stop_fit_at_once_naming_the_fix(tmp_path):
    root = write_pngs(tmp_path / "images")
    bilinear = keras.utils.image_dataset_from_directory(root, labels=None, image_size=(8, 8),
                                                        batch_size=4, shuffle=False)
    scaled = tf.data.Dataset.from_tensor_slices(
        np.random.default_rng(0).random((8, 8, 8, 3)).astype(np.float32)).batch(4)
    flow = tiny_glow()
    before = [w.copy() for w in flow.get_weights()]
    for dataset in (bilinear, scaled):
        with pytest.raises(ValueError, match="fractional values") as caught:
            flow.fit(dataset, epochs=1, verbose=0)
        message = str(caught.value)
        assert 'interpolation="nearest"' in message and "num_values=None" in message
        assert "\n" not in message
        with pytest.raises(ValueError, match='interpolation="nearest"'):
            flow.evaluate(dataset, verbose=0)
    with pytest.raises(ValueError, match='interpolation="nearest"'):  # validation data too
        flow.fit(np.zeros((4, 8, 8, 3), np.uint8), validation_data=bilinear, verbose=0)
    for got, want in zip(flow.get_weights(), before):
        np.testing.assert_array_equal(got, want)


def test_nearest_interpolation_trains_a_discrete_glow(tmp_path):
    root = write_pngs(tmp_path / "images")
    nearest = keras.utils.image_dataset_from_directory(
        root, labels=None, image_size=(8, 8), batch_size=4, shuffle=False,
        interpolation="nearest")  # uint8 in Keras 3.15's tf.data path
    floats = nearest.map(lambda x: tf.cast(x, tf.float32))  # float32 whole numbers
    pixels = np.concatenate([batch.numpy() for batch in floats])
    assert pixels.min() >= 0 and pixels.max() <= 255
    assert np.array_equal(pixels, np.round(pixels))
    for dataset in (nearest, floats):
        flow = tiny_glow()
        history = flow.fit(dataset, epochs=2, verbose=0, shuffle=False)
        assert len(history.history["loss"]) == 2 and np.all(np.isfinite(history.history["loss"]))
    # The float pixels are the same data as uint8 ones: the same bound, batch by batch.
    on_floats = flow.evaluate(floats, verbose=0, return_dict=True)["loss"]
    on_bytes = flow.evaluate(pixels.astype(np.uint8), batch_size=4, verbose=0,
                             return_dict=True)["loss"]
    assert np.isfinite(on_floats) and on_floats == pytest.approx(on_bytes, rel=1e-6)
