"""`Flow.adapt`: a flow's standardisation set from training data (`tfp_flows.layers.Standardize`
layers and the context's statistics), as Keras' preprocessing layers' ``adapt`` does; and
`adapt_for_fit`, what `Flow.fit` runs first for the standardisation not yet set."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfp_flows.layers.base import LayerChain
from tfp_flows.layers.standardize import Standardize, finite_moments
from tfp_flows.models import inputs
from tfp_flows.training import array_epochs


def _unpack(flow, element):
    x, context, _ = keras.utils.unpack_x_y_sample_weight(element)
    return x, context if flow.conditional else None


def context_pending(flow) -> bool:
    """Whether the flow standardises a continuous context whose statistics are still the
    identity (``context_mean`` 0, ``context_std`` 1: `adapt` has not set them)."""
    return (flow.context_shape is not None and flow.standardize_context
            and not np.any(flow.context_mean.numpy()) and np.all(flow.context_std.numpy() == 1))


def adapt_flow(flow, x, context=None, batch_size: int = 4096, pending_only: bool = False) -> None:
    """What `tfp_flows.Flow.adapt` does; see there. ``pending_only``: only the
    `Standardize` layers not yet adapted, and the context statistics if `context_pending`."""
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
                    if isinstance(layer, Standardize) and not (pending_only and layer.is_adapted)]
    adapt_context = (context_pending(flow) if pending_only
                     else flow.context_shape is not None and flow.standardize_context)
    if not standardized and not adapt_context:
        return
    if adapt_context:
        moments = finite_moments((c.numpy() for _, c in batches() if c is not None),
                                 f"{flow.name}.adapt (context)", 1e-6, per_feature=True)
    # Every row is checked before any weight changes (whole pixel values cannot be NaN);
    # no rows at all is an error.
    first = next(iter(batches()), None)
    if first is None or first[0].dtype.is_floating:
        finite_moments((xb.numpy() for xb, _ in batches()), f"{flow.name}.adapt", 1e-6)
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


def adapt_for_fit(flow, x, y, validation_split: float = 0.0) -> None:
    """What `tfp_flows.Flow.fit` runs first: `adapt_flow` of the standardisation not yet
    set (the context statistics while they are the identity, `Standardize` layers not
    adapted), from the rows ``fit`` trains on: the arrays but the ``validation_split``
    that Keras keeps from the end, or a dataset's first batch. Nothing for a flow whose
    optimizer has taken a step (its map was learned on the statistics it has) or for
    other inputs (generators). Cost: a pass over the training rows per `Standardize`
    layer and one over the contexts.

    Args:
        flow: a compiled `tfp_flows.Flow`.
        x: the training data as ``fit`` takes it.
        y: the context as ``fit`` takes it, or None.
        validation_split: the share of the arrays' rows that ``fit`` keeps for validation.

    Examples:
        >>> import numpy as np, tfp_flows
        >>> flow = tfp_flows.NSF(1, num_steps=1, hidden_units=(4,), context_shape=(2,))
        >>> flow.compile(optimizer="adam")
        >>> adapt_for_fit(flow, np.zeros((4, 1)), np.array([[0.0, 5], [4, 5], [0, 5], [4, 5]]))
        >>> flow.context_mean.numpy().tolist(), flow.context_std.numpy().tolist()  # constant: 1
        ([2.0, 5.0], [2.0, 1.0])
    """
    pending = context_pending(flow) or any(
        isinstance(layer, Standardize) and not layer.is_adapted for layer in flow.flow_layers)
    if not pending or (flow.optimizer is not None and int(flow.optimizer.iterations.numpy())):
        return
    if isinstance(x, tf.data.Dataset):
        x, y, _ = keras.utils.unpack_x_y_sample_weight(next(iter(x)))
    elif isinstance(x, np.ndarray) or tf.is_tensor(x):
        rows = array_epochs.training_rows(len(x), validation_split)  # fit: a context per row
        x, y = x[:rows], None if y is None else y[:rows]
    else:
        return
    adapt_flow(flow, x, y if flow.conditional else None, pending_only=True)
