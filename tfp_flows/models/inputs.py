"""What a `Flow` accepts: data and contexts are checked before any number is computed.

Concrete data (NumPy arrays, eager tensors) is checked in Python, with a
``ValueError`` that names the bad value and what was expected; symbolic data (inside
``tf.function``, the exported graph, a ``tf.data`` pipeline) gets the same checks as
in-graph assertions, which stop the step before any weight changes.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfp_flows.checks import check_finite_rows


def _concrete(value):
    """``value`` as a NumPy array when it has values now (not a symbolic tensor), else None."""
    if isinstance(value, np.ndarray | np.generic | list | tuple | int | float):
        return np.asarray(value)
    if tf.is_tensor(value) and hasattr(value, "numpy") and tf.executing_eagerly():
        return value.numpy()
    return None


def check_data_spec(flow, shape, dtype) -> None:
    """ValueError unless ``shape`` / ``dtype`` describe a batch of ``flow``'s events."""
    dtype = tf.as_dtype(dtype)
    if not (dtype.is_floating or dtype.is_integer):
        raise ValueError(f"{flow.name}: expected numeric data; got dtype {dtype.name}.")
    if dtype.is_integer and not flow.discrete:
        raise ValueError(
            f"{flow.name}: got integer data ({dtype.name}) but this flow is continuous. "
            "Build it with a Dequantize layer first (Glow(..., num_values=256) or "
            "num_values=2**n_bits), or cast to float yourself.")
    shape = tuple(shape)
    if shape[1:] != flow.event_shape:
        raise ValueError(f"{flow.name}: expected data of shape (batch, "
                         f"{', '.join(map(str, flow.event_shape))}); got {shape}.")


def _pixel_message(flow) -> str:
    return f"{flow.name}: expected whole pixel values in [0, {flow.num_values})"


def check_pixels(flow, array: np.ndarray) -> None:
    """ValueError unless every value of a discrete flow's data is a whole number in range."""
    if not flow.discrete or array.size == 0:
        return
    low, high = array.min(), array.max()
    if low < 0 or high >= flow.num_values:
        raise ValueError(f"{_pixel_message(flow)}; got values in [{low}, {high}].")
    if array.dtype.kind == "f":
        fractional = array[array != np.floor(array)]
        if fractional.size:
            raise ValueError(f"{_pixel_message(flow)}; got {fractional.size} non-whole "
                             f"values such as {fractional.flat[0]}.")


def assert_pixels(flow, x: tf.Tensor) -> tf.Tensor:
    """``x`` behind an in-graph check of `check_pixels` (for symbolic tensors)."""
    if not flow.discrete:
        return x
    values = tf.cast(x, tf.float64)
    valid = tf.reduce_all((values >= 0) & (values < flow.num_values) & (values == tf.floor(values)))
    check = tf.debugging.Assert(valid, [_pixel_message(flow) + "; got values in",
                                        tf.reduce_min(values), tf.reduce_max(values)])
    with tf.control_dependencies([check]):
        return tf.identity(x)


def check_x(flow, x) -> tf.Tensor:
    """``x`` as a tensor of the flow's events, its values checked (pixels of discrete flows)."""
    if not tf.is_tensor(x):
        x = np.asarray(x)
    check_data_spec(flow, x.shape, x.dtype)
    array = _concrete(x)
    if array is not None:
        check_pixels(flow, array)
        x = tf.convert_to_tensor(array)
    else:
        x = assert_pixels(flow, x)
    return x if flow.discrete else tf.cast(x, flow.float_dtype)


def _shape_text(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def context_spec(flow) -> str:
    if flow.num_classes is not None:
        return f"integer class labels in [0, {flow.num_classes}) of shape (batch,) or ()"
    shape = flow.context_shape
    what = "float vectors" if len(shape) == 1 and flow.context_encoder is None else "floats"
    return f"{what} of shape {_shape_text(('batch',) + shape)} or {_shape_text(shape)}"


def _matches(shape, expected) -> bool:
    """Whether ``shape`` is ``expected``, where None in either matches any size."""
    return len(shape) == len(expected) and all(
        a is None or b is None or a == b for a, b in zip(shape, expected))


def checked_encoder(encoder, context_shape, num_classes):
    """``encoder`` (a `Flow`'s ``context_encoder``) if it maps a batch of observations
    ``[batch, *context_shape]`` to vectors ``[batch, k]``; ValueError otherwise. Builds
    it by one call on zeros (a None entry of ``context_shape`` taken as 1)."""
    if encoder is None:
        return None
    import keras

    if not isinstance(encoder, keras.layers.Layer):
        raise ValueError(f"Flow: expected a Keras layer or model as context_encoder; got "
                         f"{type(encoder).__name__}.")
    if num_classes is not None or context_shape is None:
        raise ValueError("Flow: a context_encoder maps continuous observations: expected "
                         "context_shape (the shape of one observation) and no num_classes; "
                         f"got context_shape={context_shape}, num_classes={num_classes}.")
    if not context_shape or context_shape[-1] is None:
        raise ValueError(f"Flow: expected a context_shape whose last entry (the features) "
                         f"is known, e.g. (10, 2); got {context_shape}.")
    shape = (2,) + tuple(1 if n is None else n for n in context_shape)
    try:
        out = encoder(tf.zeros(shape, keras.config.floatx()))
    except Exception as error:  # Keras raises many types for a shape it cannot take
        raise ValueError(f"Flow: expected a context_encoder that takes observations of shape "
                         f"{_shape_text(('batch',) + tuple(context_shape))}; calling it on "
                         f"zeros of shape {shape} failed: {error}") from error
    if out.shape.rank != 2 or out.shape[-1] is None:
        raise ValueError(f"Flow: expected a context_encoder that returns vectors (batch, k); "
                         f"got output shape {tuple(out.shape)} for input shape {shape}.")
    return encoder


def checked_label_dropout(rate, num_classes) -> float:
    """``label_dropout`` of a `Flow` as a float in ``[0, 1)``; only with ``num_classes``."""
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"Flow: expected 0 <= label_dropout < 1; got {rate}.")
    if rate and num_classes is None:
        raise ValueError("Flow: label_dropout replaces class labels by a null label; "
                         "expected num_classes with it; got num_classes=None.")
    return rate


def unguided_layers(flow) -> list[str]:
    """Names of the flow's conditional layer types that cannot take a guided context."""
    from tfp_flows.layers.base import walk

    return sorted({type(layer).__name__ for layer in walk(flow.flow_layers)
                   if (getattr(layer, "conditioner", None) is not None
                       or getattr(layer, "made", None) is not None)
                   and not getattr(layer, "guidable", False)})


def checked_guidance(flow, weight, context):
    """``sample``'s guidance weight as a tensor, or None for no guidance (``w = 0``);
    ValueError where the flow cannot be guided."""
    weight = float(weight)
    if weight == 0.0:
        return None
    if not np.isfinite(weight):
        raise ValueError(f"sample: expected a finite guidance weight; got {weight}.")
    if not getattr(flow, "label_dropout", 0.0) or context is None:
        raise ValueError(f"{flow.name}: guidance needs a class-label flow trained with "
                         f"label_dropout > 0 (it learns the null label to guide away from) "
                         f"and a label to sample; got num_classes={flow.num_classes}, "
                         f"label_dropout={getattr(flow, 'label_dropout', 0.0)}, "
                         f"context={'None' if context is None else 'given'}.")
    unguided = unguided_layers(flow)
    if unguided:
        raise ValueError(f"{flow.name}: guidance is supported by TarFlow's "
                         f"TransformerAutoregressive layers; this flow's {', '.join(unguided)} "
                         f"take the label too.")
    return tf.constant(weight, flow.float_dtype)


def _check_labels(flow, context) -> tf.Tensor:
    """Labels as int32, every one a whole number in ``[0, num_classes)``."""
    message = f"{flow.name}: expected class labels that are integers in [0, {flow.num_classes})"
    if not (context.dtype.is_integer or context.dtype.is_floating):
        raise ValueError(f"{message}; got dtype {context.dtype.name}.")
    array = _concrete(context)
    if array is not None:
        bad = array[(array < 0) | (array >= flow.num_classes) | (array != np.floor(array))]
        if bad.size:
            raise ValueError(f"{message}; got {bad.flat[0]}.")
        return tf.constant(array.astype(np.int32))
    values = tf.cast(context, tf.float64)
    valid = tf.reduce_all((values >= 0) & (values < flow.num_classes)
                          & (values == tf.floor(values)))
    check = tf.debugging.Assert(valid, [message + "; got values in", tf.reduce_min(values),
                                        tf.reduce_max(values)])
    with tf.control_dependencies([check]):
        return tf.cast(context, tf.int32)


def check_context(flow, context, x=None):
    """The context of a conditional flow, checked; a single one is repeated for every
    example of ``x``. None for an unconditional flow (a context given is an error)."""
    if not flow.conditional:
        if context is not None:
            raise ValueError(f"{flow.name}: this flow is not conditional; got a context.")
        return None
    if context is None:
        raise ValueError(f"{flow.name}: this flow is conditional and needs "
                         f"context=... ({context_spec(flow)}).")
    if not tf.is_tensor(context):
        context = np.asarray(context)
    context = tf.convert_to_tensor(context)
    if flow.num_classes is not None:
        if context.shape.rank == 2 and context.shape[-1] == 1:
            context = tf.squeeze(context, -1)
        if context.shape.rank not in (0, 1):
            raise ValueError(f"{flow.name}: expected context as {context_spec(flow)}; "
                             f"got shape {tuple(context.shape)}.")
        context = _check_labels(flow, context)
        single = context.shape.rank == 0
    else:
        if not context.dtype.is_floating and not context.dtype.is_integer:
            raise ValueError(f"{flow.name}: expected context as {context_spec(flow)}; "
                             f"got dtype {context.dtype.name}.")
        shape, expected = tuple(context.shape), flow.context_shape
        single = _matches(shape, expected)
        if not (single or _matches(shape[1:], expected)):
            raise ValueError(f"{flow.name}: expected context as {context_spec(flow)}; "
                             f"got shape {shape}.")
        context = tf.cast(context, flow.float_dtype)
    if x is None:
        return context
    if single:
        return tf.repeat(context[None], tf.shape(x)[0], axis=0)
    if x.shape[0] is not None and context.shape[0] is not None and x.shape[0] != context.shape[0]:
        raise ValueError(f"{flow.name}: expected one context per example or one for all; "
                         f"got {context.shape[0]} contexts for {x.shape[0]} examples.")
    return context


def check_training_data(flow, x, y, validation_data) -> None:
    """Checks arrays and the element spec of datasets given to ``fit`` / ``evaluate``,
    every value of an array included, before any step runs."""
    if isinstance(x, np.ndarray) or isinstance(x, (list, tuple)) and not tf.is_tensor(x) \
            or tf.is_tensor(x):
        array = np.asarray(x)
        check_data_spec(flow, array.shape, array.dtype)
        check_pixels(flow, array)
        check_finite_rows(array, flow.name, "training rows")
        if flow.conditional or y is not None:
            if y is None:
                check_context(flow, None)
            labels = np.asarray(y)
            if len(labels) != len(array):
                raise ValueError(f"{flow.name}: expected one context per example; got "
                                 f"{len(labels)} contexts for {len(array)} examples.")
            check_context(flow, labels, tf.zeros((len(array), 0)))
    elif isinstance(x, tf.data.Dataset):
        spec = x.element_spec
        x_spec = spec[0] if isinstance(spec, tuple) else spec
        check_data_spec(flow, x_spec.shape, x_spec.dtype)
        if flow.conditional and not isinstance(spec, tuple):
            raise ValueError(f"{flow.name}: this flow is conditional; expected a dataset "
                             f"of (x, context) pairs.")
        check_first_batch(flow, x)
    if isinstance(validation_data, tf.data.Dataset):
        check_training_data(flow, validation_data, None, None)
    elif isinstance(validation_data, tuple) and validation_data:
        check_training_data(flow, validation_data[0], validation_data[1]
                            if len(validation_data) > 1 else None, None)


def check_first_batch(flow, dataset: tf.data.Dataset) -> None:
    """Checks the first batch of a dataset in Python (pixels of a discrete flow, class
    labels), so that data that is wrong throughout stops ``fit`` with a ValueError that
    names the fix, before any step; `checked_dataset` checks every batch in the pipeline.

    Fractional pixels are what an interpolating resize makes, as
    ``keras.utils.image_dataset_from_directory`` does by default (bilinear).
    """
    if not (flow.discrete or flow.num_classes is not None):
        return
    first = next(iter(dataset), None)
    if first is None:
        return  # an empty dataset: Keras says so itself
    x = np.asarray(first[0] if isinstance(first, tuple) else first)
    if flow.discrete and x.dtype.kind == "f" and x.size:
        fractional = x[np.isfinite(x) & (x != np.floor(x))]
        if fractional.size:
            raise ValueError(
                f"{_pixel_message(flow)}; the dataset's first batch has {fractional.size} "
                f"fractional values such as {fractional.flat[0]:g} (an interpolating resize "
                f"makes them). Resize with interpolation=\"nearest\" to keep whole pixel "
                f"values, or build a continuous flow (num_values=None) and scale the data.")
    check_pixels(flow, x)
    if flow.num_classes is not None and isinstance(first, tuple) and len(first) > 1:
        check_context(flow, np.asarray(first[1]))


def checked_dataset(flow, data):
    """A ``tf.data.Dataset`` with every batch checked in its pipeline (pixels, labels),
    so a bad batch stops ``fit`` before the step that would train on it; other inputs
    unchanged (arrays are checked whole by `check_training_data`)."""
    if not isinstance(data, tf.data.Dataset) or not (flow.discrete or flow.num_classes):
        return data

    def check(*element):
        x, rest = element[0], element[1:]
        x = assert_pixels(flow, x)
        if rest and flow.num_classes is not None:
            rest = (_check_labels(flow, tf.reshape(rest[0], [-1])),) + tuple(rest[1:])
        return (x,) + tuple(rest) if rest else x

    return data.map(check)
