"""`Flow.adapt`: a flow's standardisation set from training data (`tfp_flows.layers.Standardize`
layers and the context's statistics), as Keras' preprocessing layers' ``adapt`` does."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfp_flows.layers.base import LayerChain
from tfp_flows.layers.standardize import Standardize, finite_moments
from tfp_flows.models import inputs


def _unpack(flow, element):
    x, context, _ = keras.utils.unpack_x_y_sample_weight(element)
    return x, context if flow.conditional else None


def adapt_flow(flow, x, context=None, batch_size: int = 4096) -> None:
    """What `tfp_flows.Flow.adapt` does; see there."""
    if isinstance(x, tf.data.Dataset):
        if context is not None:
            raise ValueError(f"{flow.name}.adapt: expected the contexts inside the "
                             "dataset; got a context argument too.")
        dataset = x

        def batches():
            for element in dataset:
                xb, cb = _unpack(flow, element)
                yield inputs.check_x(flow, xb), inputs.check_context(flow, cb, xb)
    else:
        x = inputs.check_x(flow, x)
        context = inputs.check_context(flow, context, x)

        def batches():
            for start in range(0, int(x.shape[0]), int(batch_size)):
                yield (x[start:start + batch_size],
                       None if context is None else context[start:start + batch_size])

    standardized = [i for i, layer in enumerate(flow.flow_layers)
                    if isinstance(layer, Standardize)]
    adapt_context = flow.context_shape is not None and flow.standardize_context
    if not standardized and not adapt_context:
        return
    if adapt_context:
        moments = finite_moments((c.numpy() for _, c in batches() if c is not None),
                                 f"{flow.name}.adapt (context)", 1e-6, per_feature=True)
    # Every row is checked before any weight changes.
    finite_moments((xb.numpy() for xb, _ in batches() if xb.dtype.is_floating),
                   f"{flow.name}.adapt", 1e-6)
    if adapt_context:
        mean, std, constant = moments
        flow.context_mean.assign(mean.astype(flow.context_mean.dtype))
        flow.context_std.assign(np.where(constant, 1.0, std).astype(flow.context_std.dtype))
    event_ndims = len(flow.event_shape)
    for index in standardized:
        before = flow.flow_layers[:index]

        def layer_inputs(before=before):
            for xb, cb in batches():
                yield (LayerChain(before, flow.embed_context(cb), event_ndims=event_ndims)
                       .inverse_and_log_det(xb)[0] if before else xb).numpy()

        flow.flow_layers[index].adapt(layer_inputs())
