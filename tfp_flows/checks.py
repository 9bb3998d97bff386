"""Checks of users' arrays that need nothing but NumPy: a leaf module that every
other module may import (data files, training data, the command line)."""

from __future__ import annotations

import numpy as np


def check_finite_rows(array: np.ndarray, name: str, rows: str = "rows") -> None:
    """ValueError naming ``name`` unless every row (first axis) of ``array`` is finite.

    Integer arrays always pass. The message counts the rows with NaN or infinity and
    names the first, so that a user can find and drop or impute them.

    Args:
        array: the data, one example per row.
        name: what the message names first (a file, a flow).
        rows: what the rows are called in the message.

    Raises:
        ValueError: some row holds NaN or infinity.

    Examples:
        >>> check_finite_rows(np.array([[0.0, 1.0], [np.nan, 2.0]]), "x.csv")
        Traceback (most recent call last):
        ...
        ValueError: x.csv: 1 of 2 rows contain NaN or infinity (first at row 1); drop or ...
    """
    array = np.atleast_1d(np.asarray(array))
    if array.dtype.kind not in "fc" or array.size == 0:
        return
    bad = ~np.isfinite(array.reshape(len(array), -1)).all(axis=1)
    if bad.any():
        raise ValueError(f"{name}: {int(bad.sum())} of {len(array)} {rows} contain NaN or "
                         f"infinity (first at row {int(np.argmax(bad))}); drop or impute them "
                         "first.")
