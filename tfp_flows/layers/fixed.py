"""Any TFP bijector as a flow step: a layer with no weights."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.layers.base import FlowLayer

tfb = tfp.bijectors


def _encode(value):
    """A bijector's parameter as JSON: bijectors by class and parameters, arrays as lists."""
    if isinstance(value, tfb.Bijector):
        name = type(value).__name__
        if getattr(tfb, name, None) is not type(value):
            raise ValueError(f"FixedBijector: expected bijectors of tfp.bijectors (saved by "
                             f"name); got {type(value).__module__}.{name}.")
        return {"bijector": name,
                "parameters": {k: _encode(v) for k, v in value.parameters.items()
                               if v is not None}}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if tf.is_tensor(value) or isinstance(value, (np.ndarray, np.generic)):
        array = np.asarray(value)
        return {"array": array.tolist(), "dtype": array.dtype.name}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"FixedBijector: cannot save a parameter of type {type(value).__name__}; "
                     "expected bijectors, numbers, arrays or strings.")


def _decode(value, dtype):
    if isinstance(value, dict) and "bijector" in value:
        return getattr(tfb, value["bijector"])(**{k: _decode(v, dtype)
                                                  for k, v in value["parameters"].items()})
    if isinstance(value, dict) and "array" in value:
        return tf.constant(value["array"], value["dtype"])
    if isinstance(value, list):
        return [_decode(v, dtype) for v in value]
    return value


@keras.saving.register_keras_serializable(package="tfp_flows")
class FixedBijector(FlowLayer):
    """A fixed `tfp.bijectors.Bijector` as one step of a `Flow` (no weights).

    ``call(x)`` returns ``(bijector.inverse(x), ildj)`` with the log-det summed over
    the event, as for every flow layer, so an elementwise link counts once per entry.
    For data in ``(0, 1)``, ``FixedBijector(tfb.Sigmoid())`` is RealNVP's logit
    preprocessing: the flow normalizes ``logit(x)`` and samples through the sigmoid.

    Saved to ``.keras`` by class name and parameters (``tfp.bijectors`` classes whose
    parameters are numbers, arrays, strings or such bijectors), so it loads in safe mode.

    Examples:
        >>> layer = FixedBijector(tfb.Sigmoid())
        >>> z, log_det = layer(np.full((1, 2), 0.5, np.float32))
        >>> [round(float(v), 4) for v in (z[0, 0], log_det[0])]
        [0.0, 2.7726]

    Args:
        bijector: a `tfp.bijectors.Bijector` whose ``forward`` maps latents to data.

    Raises:
        ValueError: ``bijector`` is not a `tfp.bijectors.Bijector`.
    """

    def __init__(self, bijector, **kwargs):
        super().__init__(**kwargs)
        if isinstance(bijector, dict):
            bijector = _decode(bijector, self.dtype)
        if not isinstance(bijector, tfb.Bijector):
            raise ValueError(f"FixedBijector: expected a tfp.bijectors.Bijector; "
                             f"got {type(bijector).__name__}.")
        self._config = _encode(bijector)
        self.fixed = bijector

    def build(self, input_shape):
        self.event_ndims = len(input_shape) - 1

    def bijector(self, context=None, training=False):
        return self.fixed

    def compute_output_shape(self, input_shape):
        event = self.fixed.inverse_event_shape(tuple(input_shape[1:]))
        return (input_shape[0],) + tuple(event)

    def get_config(self):
        return {**super().get_config(), "bijector": self._config}
