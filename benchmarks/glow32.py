"""Case `glow32`: a 32x32x3 Glow trained from a folder of images, ours against TFP's.

Data: PNG crops of the colour pictures shipped in scikit-image
(`benchmarks.image_pipeline.write_crops`, 48x40 RGB): a training folder (3,000 files;
256 with ``--quick``) and a test folder of other crops (500; 128), both centre-cropped
to 40x40 and reduced to 32x32 by area averaging, 256 values per channel.

Ours: ``Glow((32, 32, 3), num_levels=3, num_steps=8, hidden_channels=256)`` (the
issue's size; ``--quick``: 2 x 1, width 32) trained by ``fit`` on
``tfp_flows.data.image_folder(train, 32, channels=3, batch_size=B)`` repeated, with
``steps_per_epoch`` steps. Baseline: ``tfb.Glow(output_shape=(32, 32, 3),
num_glow_blocks=3, num_steps_per_block=8)`` with TFP's ``GlowDefaultNetwork(256)``
couplings and a width-256 exit network (as `benchmarks.glow_digits`), fed by the plain
graph-mode pipeline (``list_files -> read_file -> decode_png -> crop -> resize``, the
same pixels), trained by the XLA step of `benchmarks._loop` with Keras' Adam. Both:
uniform dequantization, Adam(1e-3) (``--lr``), batch 32, the same number of steps.

Reports images/s of the whole input-plus-training pipeline (the first epoch, with
compilation, apart) and test bits/dim after the budget (the uniform-dequantization
bound, one noise draw per test image).
"""

from __future__ import annotations

import math
import shutil
import tempfile
from pathlib import Path

import keras  # noqa: E402
import numpy as np
import tensorflow as tf  # noqa: E402

import tfp_flows  # noqa: E402
from benchmarks import _common
from benchmarks._loop import make_trainer
from benchmarks.glow_digits import dequantize, tfp_glow_of, tfp_log_prob
from benchmarks.image_pipeline import CROP_HEIGHT, write_crops
from tfp_flows import data, metrics

SIZE, LEVELS, BATCH, LR = 32, 256, 32, 1e-3
SHAPE = (SIZE, SIZE, 3)
D = int(np.prod(SHAPE))


def config(quick):
    """(levels, steps per level, width, training files, test files, steps per epoch, epochs)."""
    return (2, 1, 32, 256, 128, 8, 3) if quick else (3, 8, 256, 3000, 500, 25, 5)


def plain_pipeline(folder: Path, batch: int, repeat: bool):
    """The pipeline a user writes first, giving the pixels ``image_folder`` gives."""
    def load(file):
        image = tf.io.decode_png(tf.io.read_file(file), channels=3)
        image = tf.image.resize_with_crop_or_pad(image, CROP_HEIGHT, CROP_HEIGHT)
        image = tf.image.resize(image, (SIZE, SIZE), method="area")
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)

    files = tf.data.Dataset.list_files(str(folder / "*.png"), shuffle=repeat, seed=0)
    if repeat:
        files = files.repeat()
    return (files.map(load, num_parallel_calls=tf.data.AUTOTUNE)
            .batch(batch, drop_remainder=repeat).prefetch(tf.data.AUTOTUNE))


def tfp_log_mass(dist, k, noise):
    """``log p(k)`` bound of the dequantized density on ``v = (k + u) / 256 - 0.5``."""
    return tfp_log_prob(dist, k, noise, levels=LEVELS)


def test_bits(log_mass_fn, test):
    values = np.concatenate([np.asarray(log_mass_fn(batch)) for batch in test])
    return metrics.bits_per_dim(-float(np.mean(values)), D)


def main(argv=None):
    args = _common.parse_args(__doc__.splitlines()[0], argv, lambda parser: parser.add_argument(
        "--lr", type=float, default=LR, help="Adam's learning rate, both sides"))
    lr = args.lr
    levels, steps, width, num_train, num_test, spe, epochs = config(args.quick)
    root = Path(tempfile.mkdtemp(prefix="glow32-"))
    try:
        (root / "train").mkdir()
        (root / "test").mkdir()
        write_crops(root / "train", num_train, seed=0)
        write_crops(root / "test", num_test, seed=1)
        test = list(plain_pipeline(root / "test", 100, repeat=False))
        assert sum(len(b) for b in test) == num_test
        ours_test = np.concatenate(list(data.image_folder(root / "test", SIZE, channels=3,
                                                          batch_size=100, shuffle=False)))
        assert np.array_equal(np.sort(ours_test.reshape(num_test, -1), axis=0),
                              np.sort(np.concatenate(test).reshape(num_test, -1), axis=0)), \
            "image_folder and the plain pipeline give different pixels"

        keras.utils.set_random_seed(0)
        flow = tfp_flows.Glow(SHAPE, num_levels=levels, num_steps=steps, hidden_channels=width,
                              num_values=LEVELS)
        flow.compile(optimizer=keras.optimizers.Adam(lr), jit_compile=True)
        ours_data = data.image_folder(root / "train", SIZE, channels=3, batch_size=BATCH,
                                      drop_remainder=True).repeat()
        keras.utils.set_random_seed(0)
        dist, glow = tfp_glow_of(SHAPE, levels, steps, width)
        plain = iter(plain_pipeline(root / "train", BATCH, repeat=True).batch(spe))
        first = next(plain)
        dist.log_prob(dequantize(first[0], 0.0, LEVELS))  # builds, inits ActNorm
        noise_seeds = keras.random.SeedGenerator(0)

        def tfp_loss(k):
            noise = keras.random.uniform(tf.shape(k), seed=noise_seeds)
            return -tf.reduce_mean(tfp_log_mass(dist, k, noise)) / D / math.log(2)

        trainer = make_trainer(tfp_loss, glow.trainable_variables, keras.optimizers.Adam(lr))
        params = {"ours": _common.count_params(flow.trainable_variables),
                  "tfp": _common.count_params(glow.trainable_variables)}
        print(f"trainable parameters: ours {params['ours']}, tfp {params['tfp']}", flush=True)

        losses = {"ours": [], "tfp": []}  # training bits/dim after each epoch

        def ours_epoch():
            history = flow.fit(ours_data, epochs=1, steps_per_epoch=spe, shuffle=False, verbose=0)
            losses["ours"].append(float(history.history["bits_per_dim"][-1]))

        def tfp_epoch():
            losses["tfp"].append(float(trainer(next(plain))))

        first_s = {"ours": _common.timed(ours_epoch)[0], "tfp": _common.timed(tfp_epoch)[0]}
        times = _common.alternate({"ours": ours_epoch, "tfp": tfp_epoch}, epochs - 1)
        rate = {side: spe * BATCH / stats["median_s"] for side, stats in times.items()}
        print(f"images/s: ours {rate['ours']:.1f}, tfp {rate['tfp']:.1f}; training bits/dim "
              f"by epoch: {losses}", flush=True)

        test_noise = tf.random.stateless_uniform((num_test,) + SHAPE, seed=(3, 4))
        bits = {"ours": metrics.bits_per_dim(
                    -float(np.mean(flow.log_prob(ours_test))), D),
                "tfp": test_bits(lambda b: tfp_log_mass(dist, b, test_noise[:len(b)]), test)}
        print(f"test bits/dim after {spe * epochs} steps: ours {bits['ours']:.3f}, "
              f"tfp {bits['tfp']:.3f}", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    total = spe * epochs
    rows = [_common.row(f"images/s, folder -> training (32x32x3 Glow, Adam {lr:g})",
                        rate["ours"], rate["tfp"], "images/s",
                        "ours: image_folder + fit; tfp: plain tf.data + XLA step; "
                        f"median of {epochs - 1} epochs of {spe} steps of {BATCH}"),
            _common.row(f"test bits/dim after {total} steps", bits["ours"], bits["tfp"],
                        "bits/dim", f"{num_test} held-out crops, dequantization bound",
                        higher_is_better=False),
            _common.row("first epoch (tracing, compilation)", first_s["ours"], first_s["tfp"],
                        "s", higher_is_better=False)]
    _common.write_results("glow32", args, rows, {
        "lr": lr, "levels": levels, "steps": steps, "width": width, "batch": BATCH, "train_files":
        num_train, "test_files": num_test, "params": params, "times": times,
        "first_epoch_s": first_s, "bits_per_dim": bits, "training_bits_per_dim": losses})


if __name__ == "__main__":
    main()
