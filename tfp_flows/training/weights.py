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
    """An empty context per example of ``x``: ``[len(x), 0]`` zeros in Keras' floatx."""
    if isinstance(x, np.ndarray):
        return np.zeros((len(x), 0), keras.config.floatx())
    return tf.zeros((tf.shape(x)[0], 0), keras.config.floatx())


def is_no_context(flow, y) -> bool:
    """Whether ``y`` is `no_context` given to an unconditional ``flow`` (Keras' validation
    passes it back to ``evaluate``)."""
    return not flow.conditional and y is not None and len(np.shape(y)) == 2 \
        and np.shape(y)[1] == 0


def placed(flow, x, y, sample_weight, validation_data):
    """``(y, validation_data)`` with an empty context where weights come without ``y``."""
    if flow.conditional:
        return y, validation_data
    if sample_weight is not None and y is None:
        y = no_context(x)
    if isinstance(validation_data, tuple) and len(validation_data) == 3 \
            and validation_data[1] is None and validation_data[2] is not None:
        validation_data = (validation_data[0], no_context(validation_data[0]),
                           validation_data[2])
    return y, validation_data
