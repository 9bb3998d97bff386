"""Loading saved flows and users' data files, with errors that say what is wrong."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from tfp_flows.checks import check_finite_rows


def load_flow(path):
    """Loads a `Flow` saved with ``flow.save("flow.keras")``, in Keras' ``safe_mode``.

    Unlike ``keras.saving.load_model`` it names the file and the problem: a missing
    file, a file that is not a ``.keras`` archive (truncated or corrupted), or a
    model that is not a flow. Nothing in the file is executed (no lambdas, no pickles).

    Args:
        path: the ``.keras`` file.

    Returns:
        The `Flow`, with its weights (and its compile state, as Keras restores it).

    Raises:
        FileNotFoundError: no such file.
        ValueError: a file that is not a readable ``.keras`` archive, or holds no flow.

    Examples:
        >>> import tempfile, tfp_flows
        >>> path = Path(tempfile.mkdtemp()) / "flow.keras"
        >>> tfp_flows.RealNVP(2, num_steps=2, hidden_units=(8,)).save(path)
        >>> type(load_flow(path)).__name__
        'Flow'
        >>> _ = path.write_bytes(b"not a zip")
        >>> load_flow(path)
        Traceback (most recent call last):
        ...
        ValueError: ...flow.keras: not a readable .keras archive (truncated or corrupted?); ...
    """
    import keras

    from tfp_flows.models.flow import Flow

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file; expected a .keras file written "
                                "by flow.save() or tfp-flows train.")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path}: not a readable .keras archive (truncated or corrupted?); "
                         "retrain or restore it from a checkpoint.")
    with zipfile.ZipFile(path) as archive:
        bad = archive.testzip()
        names = set(archive.namelist())
    if bad is not None or "config.json" not in names:
        raise ValueError(f"{path}: damaged .keras archive ({bad or 'no config.json'}); "
                         "retrain or restore it from a checkpoint.")
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as error:  # Keras raises many types for bad content
        raise ValueError(f"{path}: could not be loaded as a tfp_flows model: "
                         f"{str(error).splitlines()[0]}") from error
    if not isinstance(model, Flow):
        raise ValueError(f"{path}: holds a {type(model).__name__}, not a tfp_flows Flow.")
    return model


def load_array(path):
    """Reads a data file: ``.npy``, ``.npz`` (array ``x``, or its only array) or a numeric ``.csv``.

    A CSV whose first row is not numeric has a header, which is skipped.

    Args:
        path: the file.

    Returns:
        A float32 array for real data, or the integer array as stored, ``(rows,
        features...)``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: naming the file and the problem: unknown suffix, non-numeric CSV
            cells, rows of different lengths, fewer than 2 rows, rows with NaN or infinity.

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "table.csv"
        >>> _ = path.write_text("a,b" + chr(10) + "1,2" + chr(10) + "3,4.5")  # a header, 2 rows
        >>> load_array(path)
        array([[1. , 2. ],
               [3. , 4.5]], dtype=float32)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such data file; expected a bundled data set name "
                                "(two_moons, digits, mnist) or a .npy, .npz or .csv file.")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        array = np.load(path, allow_pickle=False)
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.keys())
            if "x" not in keys and len(keys) != 1:
                raise ValueError(f"{path}: expected an array named 'x' (or a single array); "
                                 f"found {keys}.")
            array = archive["x" if "x" in keys else keys[0]]
    elif suffix == ".csv":
        array = _read_csv(path)
    else:
        raise ValueError(f"{path}: unknown file type {suffix!r}; expected .npy, .npz or .csv.")
    if array.dtype.kind not in "iuf" or array.ndim < 2 or len(array) < 2:
        raise ValueError(f"{path}: expected a numeric array of shape (rows, features...) with "
                         f"at least 2 rows; got {array.dtype} of shape {array.shape}.")
    if array.dtype.kind == "f":
        check_finite_rows(array, str(path))
        array = array.astype(np.float32)
    return array



def _read_csv(path):
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    rows = [line.split(",") for line in lines]
    try:
        [float(cell) for cell in rows[0]]
    except ValueError:
        rows = rows[1:]  # a header
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise ValueError(f"{path}: rows have different numbers of columns {sorted(widths)}.")
    values = np.empty((len(rows), widths.pop()), np.float64)
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            try:
                values[i, j] = float(cell)
            except ValueError:
                raise ValueError(f"{path}: cell {cell.strip()!r} in data row {i + 1}, column "
                                 f"{j + 1} is not a number; expected a numeric CSV.") from None
    return values.astype(np.float32)
