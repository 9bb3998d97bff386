"""Case `image_pipeline`: images/s of ``tfp_flows.data.image_folder`` against a plain tf.data pipeline.

Data: a temporary folder of PNG crops, 48 wide and 40 high, RGB: random boxes of the
colour pictures shipped inside scikit-image (``skimage.data``: astronaut, chelsea,
coffee, rocket, immunohistochemistry, hubble_deep_field), resized (3,000 files; 512
with ``--quick``).

Ours: ``image_folder(path, 32, channels=3, batch_size=256)`` (shuffled file order,
centre crop, antialiased resize, uint8 batches). Baseline: the plain graph-mode
pipeline ``list_files -> read_file -> decode_png -> resize`` (bilinear, float32) in a
parallel ``map``, batched by 256, autotuned prefetch. Each pass iterates a fresh
iterator over every file; the two sides alternate, one untimed pass each first (which
also brings the files into the page cache); medians of the timed passes. The time
``image_folder`` itself takes (listing and checking the files) is a row of its own.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf  # noqa: E402  (after tfp_flows set the backend)

from benchmarks import _common
from tfp_flows import data

SIZE, CHANNELS, BATCH = 32, 3, 256
CROP_HEIGHT, CROP_WIDTH = 40, 48
PICTURES = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry",
            "hubble_deep_field")


def write_crops(folder: Path, count: int, seed: int = 0) -> None:
    """``count`` PNG files of random boxes (aspect 48:40, 60 to 240 pixels wide) of
    scikit-image's colour pictures, resized to 40x48."""
    import skimage.data

    rng = np.random.default_rng(seed)
    pictures = [getattr(skimage.data, name)()[..., :3] for name in PICTURES]
    for index in range(count):
        picture = pictures[index % len(pictures)]
        height, width = picture.shape[:2]
        box_width = int(rng.integers(60, min(240, width, height * CROP_WIDTH // CROP_HEIGHT)))
        box_height = box_width * CROP_HEIGHT // CROP_WIDTH
        top = int(rng.integers(0, height - box_height + 1))
        left = int(rng.integers(0, width - box_width + 1))
        crop = tf.image.resize(picture[top:top + box_height, left:left + box_width],
                               (CROP_HEIGHT, CROP_WIDTH), antialias=True)
        pixels = tf.cast(tf.clip_by_value(tf.round(crop), 0, 255), tf.uint8)
        (folder / f"{index:05d}.png").write_bytes(tf.io.encode_png(pixels).numpy())


def plain_pipeline(folder: Path):
    """The baseline: the tf.data pipeline a user would write first."""
    def load(file):
        image = tf.io.decode_png(tf.io.read_file(file), channels=CHANNELS)
        return tf.image.resize(image, (SIZE, SIZE))

    files = tf.data.Dataset.list_files(str(folder / "*.png"), shuffle=False)
    return (files.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(BATCH)
            .prefetch(tf.data.AUTOTUNE))


def one_pass(dataset) -> int:
    """Images in one pass over a fresh iterator of ``dataset``."""
    return sum(int(batch.shape[0]) for batch in dataset)


def main(argv=None):
    args = _common.parse_args(__doc__.splitlines()[0], argv)
    count = 512 if args.quick else 3000
    repeats = args.repeats or (3 if args.quick else 5)
    folder = Path(tempfile.mkdtemp(prefix="image_pipeline-"))
    try:
        start = _common.now()
        write_crops(folder, count)
        print(f"wrote {count} PNG crops ({CROP_WIDTH}x{CROP_HEIGHT} RGB) in "
              f"{_common.now() - start:.1f} s", flush=True)
        setup = _common.median_time(
            lambda: data.image_folder(folder, SIZE, channels=CHANNELS, batch_size=BATCH),
            repeats=repeats, warmup=1)
        ours = data.image_folder(folder, SIZE, channels=CHANNELS, batch_size=BATCH)
        plain = plain_pipeline(folder)
        seen = {"ours": one_pass(ours), "plain": one_pass(plain)}  # warm-up, page cache
        assert seen == {"ours": count, "plain": count}, seen
        times = _common.alternate({"ours": lambda: one_pass(ours),
                                   "plain": lambda: one_pass(plain)}, repeats)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    rate = {side: count / stats["median_s"] for side, stats in times.items()}
    print(f"image_folder {rate['ours']:.0f} images/s, plain pipeline {rate['plain']:.0f} "
          f"images/s, ratio {rate['ours'] / rate['plain']:.2f}", flush=True)
    rows = [_common.row(f"images/s, image_folder vs plain tf.data ({count} PNGs, size {SIZE})",
                        rate["ours"], rate["plain"], "images/s",
                        f"median of {repeats} passes each"),
            _common.row("image_folder call (list and check the files)",
                        setup["median_s"] * 1e3, None, "ms", f"{count} files",
                        higher_is_better=False)]
    _common.write_results("image_pipeline", args, rows,
                          {"count": count, "times": times, "setup": setup, "rates": rate})


if __name__ == "__main__":
    main()
