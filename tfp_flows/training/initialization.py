"""ActNorm's data-dependent initialisation (Kingma & Dhariwal 2018, arXiv:1807.03039),
as one explicit, checked step before training.

Each `tfp_flows.layers.ActNorm` not yet initialised sets ``loc`` to the mean and
``log_scale`` to the log standard deviation of its input over a batch, in one
normalizing pass in training mode. Data it cannot use is refused before any weight
changes: rows with NaN or infinite values, and rows whose values are so large that the
variance overflows the dtype (the initial scale would be infinite and every later
step's loss too). Cost: one normalizing pass over the batch.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfp_flows.layers.actnorm import ActNorm
from tfp_flows.training import array_epochs


def pending_actnorms(flow) -> list:
    """The flow's ActNorm layers whose data initialisation has not run.

    Args:
        flow: a `tfp_flows.Flow`.

    Returns:
        A list of ActNorm layers, possibly empty.

    Examples:
        >>> import tfp_flows
        >>> pending_actnorms(tfp_flows.RealNVP(2, num_steps=1, hidden_units=(4,)))  # none on 2-D
        []
    """
    return [layer for layer in flow.layers_tree()
            if isinstance(layer, ActNorm) and not layer.data_initialized()]


def initialize_actnorm(flow, x, context=None, row_ids=None) -> None:
    """Initialises every pending ActNorm of ``flow`` from the batch ``x`` (and its context).

    Args:
        flow: a `tfp_flows.Flow`.
        x: a batch of data, checked (``tfp_flows.models.inputs.check_x``).
        context: one checked context per example, or None.
        row_ids: how to name the batch's rows in an error (their indices in the data
            the batch was drawn from); default their positions.

    Raises:
        ValueError: naming the rows that make the initialisation non-finite; no weight
            has changed then.

    Examples:
        >>> import numpy as np, tfp_flows
        >>> flow = tfp_flows.RealNVP(3, num_steps=1, hidden_units=(4,), actnorm=True)
        >>> len(pending_actnorms(flow))
        1
        >>> initialize_actnorm(flow, np.random.default_rng(0).normal(size=(16, 3)))
        >>> len(pending_actnorms(flow))
        0
    """
    layers = pending_actnorms(flow)
    if not layers:
        return
    row_ids = np.arange(int(x.shape[0])) if row_ids is None else np.asarray(row_ids)
    values = np.asarray(x, np.float64).reshape(int(x.shape[0]), -1)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        _refuse(flow, row_ids[bad], "NaN or infinite values")
    # The variance of n values of size a overflows where n a^2 exceeds the dtype's max.
    limit = np.sqrt(np.finfo(flow.float_dtype.as_numpy_dtype).max / max(len(values), 1))
    huge = (np.abs(values) > limit).any(axis=1)
    if huge.any():
        _refuse(flow, row_ids[huge], f"values beyond {limit:.3g} in absolute value, whose "
                f"variance overflows {flow.float_dtype.name}")
    saved = [(variable, variable.numpy()) for layer in layers for variable in layer.weights]
    log_prob = np.asarray(flow.graph_log_prob(x, context, training=True), np.float64)
    finite = all(np.isfinite(variable.numpy()).all() for variable, _ in saved)
    rows = ~np.isfinite(np.broadcast_to(log_prob, len(values)))
    if not finite or rows.any():
        for variable, value in saved:
            variable.assign(value)
        named = row_ids[rows] if rows.any() else row_ids[np.argsort(-np.abs(values).max(1))[:5]]
        _refuse(flow, named, "values that make the initial scale or the density non-finite")


def initialize_for_fit(flow, x, y, batch_size: int, validation_split: float = 0.0) -> None:
    """What `tfp_flows.Flow.fit` runs first: `initialize_actnorm` on ``batch_size`` rows of
    the training arrays drawn at random (seeded; data stored sorted by class or time
    would give a biased first slice), outside the ``validation_split`` that Keras takes
    from the end, or on a dataset's first batch. Other inputs (generators): the layers
    initialise in the first step.

    Args:
        flow: a `tfp_flows.Flow`.
        x: the training data as ``fit`` takes it (arrays or a ``tf.data.Dataset``).
        y: the context as ``fit`` takes it, or None.
        batch_size: rows to initialise from.
        validation_split: the share of the arrays' rows that ``fit`` keeps for validation.

    Examples:
        >>> import numpy as np, tfp_flows
        >>> flow = tfp_flows.RealNVP(3, num_steps=1, hidden_units=(4,), actnorm=True)
        >>> initialize_for_fit(flow, np.random.default_rng(0).normal(size=(64, 3)), None, 32)
        >>> pending_actnorms(flow)
        []
    """
    if not pending_actnorms(flow):
        return
    context_of = (lambda y: y) if flow.conditional else (lambda y: None)
    if isinstance(x, tf.data.Dataset):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(next(iter(x)))
        flow.initialize(x, context_of(y))
    elif isinstance(x, np.ndarray) or tf.is_tensor(x):
        train = array_epochs.training_rows(len(x), validation_split)
        rows = np.sort(np.random.default_rng(0).choice(train, min(batch_size, train),
                                                       replace=False))
        flow.initialize(tf.gather(x, rows), None if y is None else context_of(tf.gather(y, rows)),
                        row_ids=rows)


def _refuse(flow, rows, what: str):
    shown = ", ".join(str(int(r)) for r in rows[:10]) + (", ..." if len(rows) > 10 else "")
    raise ValueError(f"{flow.name}: ActNorm's data initialisation expected finite data of a "
                     f"moderate scale; got {what} in {len(rows)} row(s): {shown}. Remove or "
                     "rescale them (no weight has changed).")
