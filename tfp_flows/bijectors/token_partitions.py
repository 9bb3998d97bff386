"""Partitions of a token sequence ``[N, D]`` into two sets of tokens (Jet's spatial couplings).

Events are patch tokens of an image cut into a ``rows x cols`` grid (`Patchify`),
token ``k`` being grid cell ``(k // cols, k % cols)``. A pattern marks half of the
cells as kept: ``x_a`` gathers the kept tokens and ``x_b`` the others (each
``[N/2, D]``), so a conditioner sees only the kept half and returns the parameters
of the changed tokens, one output token per input token. These partitions have the
interface of `HalfSplit` (``split``, ``merge``, ``select_b``, ``shapes``,
``get_config``), so every coupling takes them; to split the token *dimensions*
instead, use `HalfSplit` on the last axis (after an `OrthogonalMixing`).

Split and merge are two gathers, O(N D); no conditioner compute is spent on
masked tokens (RealNVP's `Checkerboard` masks instead and keeps the full grid).

Kolesnikov et al., "Jet: A Modern Transformer-Based Normalizing Flow", arXiv:2412.15129.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class _TokenSubset:
    """Kept tokens ``x_a = x[..., kept, :]`` and changed tokens ``x_b = x[..., changed, :]``."""

    def __init__(self, grid, parity: int):
        name = type(self).__name__
        grid = tuple(int(n) for n in grid)
        if len(grid) != 2 or min(grid) < 1:
            raise ValueError(f"{name}: expected grid (rows, cols) of positive sizes; got {grid}.")
        if parity not in (0, 1):
            raise ValueError(f"{name}: expected parity 0 or 1; got {parity!r}.")
        self.grid = grid
        self.parity = int(parity)
        rows, cols = np.meshgrid(np.arange(grid[0]), np.arange(grid[1]), indexing="ij")
        kept = (self._pattern(rows, cols) % 2 == self.parity).reshape(-1)
        self.kept = np.flatnonzero(kept).astype(np.int32)
        self.changed = np.flatnonzero(~kept).astype(np.int32)
        if len(self.kept) != len(self.changed):
            raise ValueError(f"{name}: expected a grid whose pattern halves the tokens "
                             f"(a conditioner maps kept tokens to changed ones one to one); "
                             f"got grid {grid}: {len(self.kept)} kept, {len(self.changed)} "
                             f"changed.")
        # merge: concat([x_a, y_b]) holds the tokens in order kept + changed; this undoes it.
        self._merge_order = np.argsort(np.concatenate([self.kept, self.changed])).astype(np.int32)

    def _pattern(self, rows, cols):
        """An integer per grid cell; cells where it has ``parity`` are kept."""
        raise NotImplementedError

    @property
    def num_tokens(self) -> int:
        return self.grid[0] * self.grid[1]

    def _check(self, shape):
        if len(shape) < 2 or (shape[-2] is not None and shape[-2] != self.num_tokens):
            raise ValueError(f"{type(self).__name__}: expected tokens [..., {self.num_tokens}, D] "
                             f"for a {self.grid[0]}x{self.grid[1]} grid; got shape {tuple(shape)}.")

    def shapes(self, event_shape) -> tuple[tuple, tuple]:
        """Event shapes of ``x_a`` and ``x_b``: ``(N/2, D)`` each."""
        event_shape = tuple(event_shape)
        if len(event_shape) != 2:
            raise ValueError(f"{type(self).__name__}: expected token events [N, D]; got event "
                             f"shape {event_shape}.")
        self._check(event_shape)
        half = (self.num_tokens // 2, event_shape[-1])
        return half, half

    def split(self, x):
        self._check(x.shape)
        return tf.gather(x, self.kept, axis=-2), tf.gather(x, self.changed, axis=-2)

    def merge(self, x_a, y_b):
        return tf.gather(tf.concat([x_a, y_b], axis=-2), self._merge_order, axis=-2)

    def select_b(self, values):
        return values

    def get_config(self) -> dict:
        return {"class_name": type(self).__name__, "grid": list(self.grid),
                "parity": self.parity}


class TokenCheckerboard(_TokenSubset):
    """Keeps the tokens of grid cells ``(i, j)`` with ``(i + j) % 2 == parity``.

    Jet's "checkerboard" (parity 0) and "checkerboard-inv" (parity 1) spatial couplings.
    Needs an even number of tokens.

    Args:
        grid: ``(rows, cols)`` of the patch grid, ``N = rows * cols``.
        parity: 0 or 1, which colour is kept.

    Examples:
        >>> import tensorflow as tf
        >>> tokens = tf.reshape(tf.range(4.0), (1, 4, 1))  # a 2x2 grid of one-value tokens
        >>> x_a, x_b = TokenCheckerboard((2, 2)).split(tokens)
        >>> x_a[0, :, 0].numpy(), x_b[0, :, 0].numpy()
        (array([0., 3.], dtype=float32), array([1., 2.], dtype=float32))
    """

    def __init__(self, grid, parity: int = 0):
        super().__init__(grid, parity)

    def _pattern(self, rows, cols):
        return rows + cols


class TokenStripes(_TokenSubset):
    """Keeps every other row of the grid (``axis=0``, horizontal stripes) or every
    other column (``axis=1``, vertical stripes): those whose index has ``parity``.

    Needs an even number of rows (``axis=0``) or columns (``axis=1``).

    Args:
        grid: ``(rows, cols)`` of the patch grid, ``N = rows * cols``.
        axis: 0 for rows, 1 for columns.
        parity: 0 or 1, which stripes are kept.

    Raises:
        ValueError: an axis other than 0 or 1, a bad grid or parity.

    Examples:
        >>> import tensorflow as tf
        >>> tokens = tf.reshape(tf.range(4.0), (1, 4, 1))  # a 2x2 grid of one-value tokens
        >>> x_a, _ = TokenStripes((2, 2), axis=0).split(tokens)
        >>> x_a[0, :, 0].numpy()  # the first row
        array([0., 1.], dtype=float32)
    """

    def __init__(self, grid, axis: int = 0, parity: int = 0):
        if axis not in (0, 1):
            raise ValueError(f"TokenStripes: expected axis 0 (rows) or 1 (columns); got {axis!r}.")
        self.axis = int(axis)
        super().__init__(grid, parity)

    def _pattern(self, rows, cols):
        return rows if self.axis == 0 else cols

    def get_config(self) -> dict:
        return {**super().get_config(), "axis": self.axis}
