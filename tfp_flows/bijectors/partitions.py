"""How a coupling splits its input into the kept part ``x_a`` and the changed part ``x_b``.

A partition has ``split(x) -> (x_a, x_b)``, ``merge(x_a, y_b) -> y`` and
``select_b(v)``, which keeps the entries of an elementwise ``v`` (shaped like
``x_b``) that belong to the changed part. Partitions are plain Python objects
with ``get_config`` so that Keras layers can serialise them.
"""

from __future__ import annotations

import tensorflow as tf


class HalfSplit:
    """Halves along the last axis (features of a vector, channels of an image).

    ``x_a`` is the first ``d // 2`` entries, ``x_b`` the rest; with ``reverse``
    the roles swap (``x_a`` the last ``d // 2``). Costs a slice and a concat.

    Args:
        reverse: keep the last ``d // 2`` entries instead of the first.

    Examples:
        >>> import tensorflow as tf
        >>> x_a, x_b = HalfSplit().split(tf.constant([[1.0, 2.0, 3.0]]))
        >>> x_a.numpy(), x_b.numpy()
        (array([[1.]], dtype=float32), array([[2., 3.]], dtype=float32))
    """

    def __init__(self, reverse: bool = False):
        self.reverse = bool(reverse)

    def sizes(self, size: int) -> tuple[int, int]:
        """``(size of x_a, size of x_b)`` on the last axis for an input of ``size``."""
        if size < 2:
            raise ValueError(f"HalfSplit: expected at least 2 entries on the last axis; got {size}.")
        kept = size // 2
        return kept, size - kept

    def shapes(self, event_shape) -> tuple[tuple, tuple]:
        """Event shapes of ``x_a`` and ``x_b``."""
        kept, changed = self.sizes(event_shape[-1])
        return tuple(event_shape[:-1]) + (kept,), tuple(event_shape[:-1]) + (changed,)

    def split(self, x):
        kept, changed = self.sizes(x.shape[-1])
        if self.reverse:
            x_b, x_a = tf.split(x, [changed, kept], axis=-1)
        else:
            x_a, x_b = tf.split(x, [kept, changed], axis=-1)
        return x_a, x_b

    def merge(self, x_a, y_b):
        return tf.concat([y_b, x_a] if self.reverse else [x_a, y_b], axis=-1)

    def select_b(self, values):
        return values

    def get_config(self) -> dict:
        return {"class_name": "HalfSplit", "reverse": self.reverse}


class Checkerboard:
    """RealNVP's spatial checkerboard on ``[H, W, C]``: pixel ``(i, j)`` is kept when
    ``(i + j) % 2 == parity``.

    ``x_a`` is ``x`` with the changed pixels zeroed and ``x_b`` is all of ``x``; the
    transform's output and log-det are masked back to the changed pixels, so the
    conditioner sees the full image grid. Costs two elementwise products.

    Dinh et al., "Density estimation using Real NVP", arXiv:1605.08803, section 3.4.

    Args:
        parity: 0 or 1, which pixels are kept.

    Raises:
        ValueError: a parity other than 0 or 1 (and, when used, an event that is not
            an image ``[H, W, C]``).

    Examples:
        >>> import tensorflow as tf
        >>> x_a, _ = Checkerboard().split(tf.ones((1, 2, 2, 1)))
        >>> x_a[0, ..., 0].numpy()
        array([[1., 0.],
               [0., 1.]], dtype=float32)
    """

    def __init__(self, parity: int = 0):
        if parity not in (0, 1):
            raise ValueError(f"Checkerboard: expected parity 0 or 1; got {parity!r}.")
        self.parity = parity

    def shapes(self, event_shape) -> tuple[tuple, tuple]:
        if len(event_shape) != 3:
            raise ValueError(f"Checkerboard: expected an image event [H, W, C]; "
                             f"got event shape {tuple(event_shape)}.")
        return tuple(event_shape), tuple(event_shape)

    def _mask(self, x):
        height, width = x.shape[-3], x.shape[-2]
        rows = tf.range(height)[:, None]
        cols = tf.range(width)[None, :]
        kept = tf.equal((rows + cols) % 2, self.parity)
        return tf.cast(kept, x.dtype)[:, :, None]

    def split(self, x):
        return x * self._mask(x), x

    def merge(self, x_a, y_b):
        return x_a + (1.0 - self._mask(y_b)) * y_b

    def select_b(self, values):
        return values * (1.0 - self._mask(values))

    def get_config(self) -> dict:
        return {"class_name": "Checkerboard", "parity": self.parity}


def partition_from_config(config: dict):
    """Rebuilds a partition from ``get_config()``."""
    config = dict(config)
    from tfp_flows.bijectors.token_partitions import TokenCheckerboard, TokenStripes

    kinds = {"HalfSplit": HalfSplit, "Checkerboard": Checkerboard,
             "TokenCheckerboard": TokenCheckerboard, "TokenStripes": TokenStripes}
    name = config.pop("class_name", None)
    if name not in kinds:
        raise ValueError(f"expected a partition config with class_name in {sorted(kinds)}; "
                         f"got {name!r}.")
    return kinds[name](**config)
