"""Sample weights for unconditional flows: the place Keras needs for them.

Keras packs ``fit(x, sample_weight=w)`` without ``y`` as ``x`` alone and drops the
weights (``keras.utils.pack_x_y_sample_weight``). An unconditional flow takes an empty
context, ``[batch, 0]``, where a conditional one takes its context, so that the batches
are ``(x, empty, w)``; `tfp_flows.Flow` ignores the empty context.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def no_context(x):
    """An empty context per example of ``x``: ``[len(x), 0]`` zeros in Keras' floatx.

    Args:
        x: the data (an array, or anything with a length).

    Returns:
        A float array ``[len(x), 0]``.

    Examples:
        >>> no_context(np.ones((3, 2))).shape
        (3, 0)
    """
    if isinstance(x, np.ndarray):
        return np.zeros((len(x), 0), keras.config.floatx())
    return tf.zeros((tf.shape(x)[0], 0), keras.config.floatx())


def is_no_context(flow, y) -> bool:
    """Whether ``y`` is `no_context` given to an unconditional ``flow`` (Keras' validation
    passes it back to ``evaluate``).

    Args:
        flow: a `tfp_flows.Flow`.
        y: what ``fit`` or ``evaluate`` received as the context.

    Returns:
        Whether ``y`` is an empty context that ``flow`` should ignore.

    Examples:
        >>> import tfp_flows
        >>> flow = tfp_flows.RealNVP(2, num_steps=1, hidden_units=(4,))
        >>> is_no_context(flow, no_context(np.ones((3, 2))))
        True
    """
    return not flow.conditional and y is not None and len(np.shape(y)) == 2 \
        and np.shape(y)[1] == 0


def placed(flow, x, y, sample_weight, validation_data):
    """``(y, validation_data)`` with an empty context where weights come without ``y``.

    Args:
        flow: a `tfp_flows.Flow`.
        x: the data ``fit`` received.
        y: the context ``fit`` received, or None.
        sample_weight: the weights ``fit`` received, or None.
        validation_data: ``fit``'s validation data, or None.

    Returns:
        ``(y, validation_data)`` to hand to Keras.

    Examples:
        >>> import tfp_flows
        >>> flow = tfp_flows.RealNVP(2, num_steps=1, hidden_units=(4,))
        >>> y, _ = placed(flow, np.ones((3, 2)), None, np.ones(3), None)
        >>> y.shape
        (3, 0)
    """
    if flow.conditional:
        return y, validation_data
    if sample_weight is not None and y is None:
        y = no_context(x)
    if isinstance(validation_data, tuple) and len(validation_data) == 3 \
            and validation_data[1] is None and validation_data[2] is not None:
        validation_data = (validation_data[0], no_context(validation_data[0]),
                           validation_data[2])
    return y, validation_data
