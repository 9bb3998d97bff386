"""Backpropagation through the flow's own inverse: training memory that does not grow with depth.

A flow is invertible, so its backward pass does not need the activations of the
normalizing pass: each layer's input can be recomputed from its output (Gomez et
al., "The Reversible Residual Network", arXiv:1707.04585; Jacobsen et al.,
"i-RevNet", arXiv:1802.07088). `Flow.compile(backprop="inverse")` trains this way:

1. The normalizing pass ``x -> z`` runs without recording anything; it keeps the
   latent ``z``, the total log-det and the input of the first layer that has
   weights (after `Dequantize`, whose noise is therefore drawn once and used as it
   is: nothing random is replayed).
2. The gradient of the loss with respect to ``z`` and the log-det starts the walk.
3. From the top layer down, each layer's input is recomputed from its output with
   the layer's bijector ``forward`` (the sampling direction); one `tf.GradientTape`
   on that layer alone re-runs its normalizing map and gives the gradient of its
   weights, of its input (handed to the layer below) and of the context embedding
   (summed over every conditioner, and taken to ``flow.embedding`` at the end).

Each layer takes its own step back (``FlowLayer.backward``): by default its input is
recomputed with its bijector's ``forward`` and its normalizing call re-run under a
tape; a coupling runs its conditioner once for both; a `FactorOut` walks its deeper
levels (``inner``) and then its split prior as a coupling step (it leaves the kept half
unchanged), so a multiscale Glow keeps no level's activations. Any other layer that
holds flow layers (``sublayers()``) is one step: correct, with that block's
activations held while its gradient is taken.

Cost in memory: one layer's activations and a few tensors of the data's size (the
recomputed input, its gradient, ``z``), whatever the depth. The compiled training
step of a 2-level continuous Glow (16x16x3, width 64, batch 128; ``python -m
benchmarks memory``, XLA's buffer assignment on a CPU) needs 20.9 MiB of XLA
temporaries at 4 steps per level and 21.8 MiB at 16 (1.04x); stored autodiff needs
68 and 234 MiB (3.4x).

Cost in time: about one more normalizing pass per step. Each layer's input is
recomputed once (a coupling's conditioner runs once for both the recomputation and
its gradient; an invertible 1x1 convolution adds two triangular solves), on top of
the normalizing pass and the backward pass that stored autodiff runs too. Measured
on that Glow: 1.1x to 1.2x stored autodiff's gradient time (the two alternately, a
loaded 2-core CPU), 1.0x its ``fit`` step time. A layer whose sampling direction is
sequential (`layers.MaskedAutoregressive`: one conditioner call per dimension) costs
that much more.

Cost in accuracy: the recomputed inputs differ from the true ones by each layer's
round-trip error, ``forward(inverse(x)) - x``, which `tfp_flows.testing` bounds
at a relative 1e-5 (float32) and 1e-10 (float64) per bijector; the errors add up
through the depth. The gradients agree with stored autodiff to a relative 1e-4
on every weight in float32 (measured 1e-7 to 2e-5, ``tests/test_inverse_backprop.py``;
5e-16 in float64); the loss and the log-det are those of the normalizing pass, not
recomputed.

Limits: every layer with training-time randomness must come before the first
layer with weights (`Dequantize` does), since recomputed values cannot replay it;
`compile` raises otherwise. Conditioners must be deterministic functions of their
input (no dropout, no batch statistics), as every conditioner of the package is.
"""

from __future__ import annotations

import tensorflow as tf

from tfp_flows import metrics

BACKPROP_MODES = ("store", "inverse")


def check_backprop(flow, backprop: str) -> str:
    """``backprop`` if ``flow`` can train with it; ValueError otherwise.

    Args:
        flow: a `tfp_flows.Flow`.
        backprop: ``"store"`` or ``"inverse"``.

    Returns:
        ``backprop``.

    Raises:
        ValueError: an unknown mode, or ``"inverse"`` for a flow with a `Dequantize` or
            `GaussianNoise` layer (training-time noise) after a layer with weights, or
            with a context encoder (the walk returns no gradient for its weights).

    Examples:
        >>> import tfp_flows
        >>> check_backprop(tfp_flows.RealNVP(2, num_steps=1, hidden_units=(4,)), "inverse")
        'inverse'
    """
    if backprop not in BACKPROP_MODES:
        raise ValueError(f"compile: expected backprop in {list(BACKPROP_MODES)}; "
                         f"got {backprop!r}.")
    if backprop == "inverse":
        from tfp_flows.layers.dequantize import Dequantize
        from tfp_flows.layers.gaussian_noise import GaussianNoise

        prefix, rest = _split_prefix(flow.flow_layers)
        noisy = [layer.name for layer in _walk(rest)
                 if isinstance(layer, (Dequantize, GaussianNoise))]
        if noisy:
            raise ValueError(f"compile: backprop='inverse' expected every noise layer "
                             f"(Dequantize, GaussianNoise) "
                             f"before the first layer with weights (its noise cannot be "
                             f"recomputed); got {noisy} after it.")
        if flow.context_encoder is not None:
            raise ValueError(f"{flow.name}: compile: backprop='inverse' does not reach a "
                             "context_encoder's weights; expected backprop='store' for a "
                             "flow with a context encoder.")
    return backprop


def _sublayers(layer):
    sublayers = getattr(layer, "sublayers", None)
    return list(sublayers()) if callable(sublayers) else list(getattr(layer, "inner", []))


def _walk(layers):
    for layer in layers:
        yield layer
        yield from _walk(_sublayers(layer))


def _split_prefix(layers):
    """Leading layers without trainable weights (`Dequantize`, a first `Squeeze`), and the rest:
    the prefix runs once and its output is kept, so it is never recomputed."""
    layers = list(layers)
    start = 0
    while start < len(layers) and not layers[start].trainable_weights:
        start += 1
    return layers[:start], layers[start:]


def inverse_gradients(flow, x, context=None, scale_loss=None, sample_weight=None):
    """``(nll, gradients)`` of one training step, backpropagated through the inverse.

    Args:
        flow: a `tfp_flows.Flow`.
        x: a batch of data; ``context`` its context (as `Flow.fit` takes it) or None.
        scale_loss: maps the mean NLL to the loss whose gradients are returned (a
            division by the number of replicas, the optimizer's loss scale); default
            the NLL itself.
        sample_weight: None, or one weight per example (`tfp_flows.metrics.nll`).

    Returns:
        The mean negative log-likelihood (nats per example) and one gradient (or
        None) per ``flow.trainable_variables``, as ``GradientTape.gradient`` gives.

    Examples:
        >>> import numpy as np, tfp_flows
        >>> flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(8,))
        >>> nll, gradients = inverse_gradients(flow, np.ones((4, 2), np.float32))
        >>> len(gradients) == len(flow.trainable_variables)
        True
    """
    from tfp_flows.layers.base import LayerChain

    with tf.GradientTape() as embedding_tape:  # records the embedding lookup alone
        embedded = flow.embed_context(context)
    x = tf.convert_to_tensor(x)
    event_ndims = len(flow.event_shape)
    prefix, rest = _split_prefix(flow.flow_layers)
    x_rest, log_det = LayerChain(prefix, embedded, True, event_ndims=event_ndims) \
        .inverse_and_log_det(x) if prefix else (x, None)
    z, log_det_rest = LayerChain(rest, embedded, True, event_ndims=event_ndims) \
        .inverse_and_log_det(x_rest)
    batch = tf.shape(z)[:1]
    log_det_rest = tf.broadcast_to(log_det_rest, batch)
    dtype = getattr(flow, "float_dtype", tf.float32)  # of the base and the loss
    with tf.GradientTape() as tape:
        tape.watch([z, log_det_rest])
        total = log_det_rest if log_det is None else log_det_rest + tf.cast(log_det, z.dtype)
        nll = metrics.nll(flow.base().log_prob(tf.cast(z, dtype)) + tf.cast(total, dtype),
                          sample_weight)
        loss = nll if scale_loss is None else scale_loss(nll)
    grad_z, grad_log_det = tape.gradient(loss, [z, log_det_rest])

    walker = Walker(embedded, event_ndims, grad_log_det)
    walker.backward(rest, z, grad_z, first_input=x_rest)
    if embedded is not None and walker.grad_context is not None:
        embedding_variables = [] if flow.embedding is None else \
            flow.embedding.trainable_variables
        if embedding_variables:
            for variable, grad in zip(embedding_variables, embedding_tape.gradient(
                    embedded, embedding_variables, output_gradients=walker.grad_context)):
                walker.add(variable, grad)
    return nll, [walker.grads.get(id(v)) for v in flow.trainable_variables]


class Walker:
    """The reverse walk: gradients of weights and of the context, summed over the steps.

    Layers take their step back through ``FlowLayer.backward(walker, y, grad_y, known)``,
    with `step` (any layer: its input from its bijector's ``forward``, its call re-run
    under a tape) or `coupling` (a coupling: one conditioner call for both).
    """

    def __init__(self, context, event_ndims, grad_log_det):
        self.context = context
        self.event_ndims = event_ndims
        self.grad_log_det = grad_log_det
        self.grads = {}
        self.grad_context = None

    def add(self, variable, grad):
        if grad is None:
            return
        key = id(variable)
        self.grads[key] = grad if key not in self.grads else self.grads[key] + grad

    def backward(self, layers, y, grad_y, first_input=None):
        """From the output ``y`` of ``layers`` (and its gradient) to their input and its gradient.

        Each layer takes its own step back (``FlowLayer.backward``, the per-layer contract:
        recompute the input, add the local gradients). ``first_input``: the known input of
        ``layers[0]`` (not recomputed); its gradient is then not computed and
        ``(first_input, None)`` is returned.
        """
        for index in reversed(range(len(layers))):
            known = first_input if index == 0 else None
            y, grad_y = layers[index].backward(self, y, grad_y, known)
        return y, grad_y

    def coupling(self, bijector, variables, y, grad_y, known=None):
        """A coupling: its conditioner runs once, for the recomputation of ``x_b`` and for
        the gradient (``x_a`` is ``y_a``; only ``x_b`` needs the inverse)."""
        partition = bijector.partition
        y_a, y_b = partition.split(y)
        x_a, x_b = (y_a, None) if known is None else partition.split(known)
        with tf.GradientTape() as tape:
            tape.watch(x_a)
            self.watch_context(tape)
            params = bijector.conditioner_params(x_a, y_b)
            if known is None:
                x_b = tf.stop_gradient(bijector.forward_b(y_b, params)[0])
            tape.watch(x_b)
            z_b, log_det = bijector.inverse_b(x_b, params)
            z = partition.merge(x_a, z_b)
            log_det = self.per_example(bijector.sum_b(log_det))
        grads = self.gradients(tape, [z, log_det], [grad_y, self.grad_log_det], [x_a, x_b],
                                variables)
        if known is not None:
            return known, None
        x = partition.merge(x_a, x_b)
        with tf.GradientTape() as tape:  # the transpose of the split (a concat, or a mask)
            tape.watch(x)
            parts = partition.split(x)
        return x, tape.gradient(parts, x, output_gradients=grads)

    def step(self, normalize, bijector, variables, y, grad_y, known=None):
        """Any layer: recompute its input with its bijector, re-run it under a tape."""
        if known is None:
            # New tensors on both sides: TFP's cache must not hand back a stored input.
            x = tf.stop_gradient(bijector.forward(tf.identity(y)))
        else:
            x = known
        with tf.GradientTape() as tape:
            tape.watch(x)
            self.watch_context(tape)
            z, log_det = normalize(x)
            log_det = self.per_example(log_det)
        grads = self.gradients(tape, [z, log_det], [grad_y, self.grad_log_det],
                                [] if known is not None else [x], variables)
        return x, (grads[0] if known is None else None)

    def watch_context(self, tape):
        if self.context is not None:
            tape.watch(self.context)

    def per_example(self, log_det):
        """The log-det in the loss's dtype, one value per example (a constant one is a scalar)."""
        return tf.cast(log_det, self.grad_log_det.dtype) + tf.zeros_like(self.grad_log_det)

    def gradients(self, tape, targets, output_gradients, inputs, variables):
        """Gradients of ``inputs`` (returned); those of ``variables`` and the context are added up."""
        variables = list(variables)
        context = [] if self.context is None else [self.context]
        grads = tape.gradient(targets, list(inputs) + variables + context,
                              output_gradients=output_gradients)
        for variable, grad in zip(variables, grads[len(inputs):]):
            self.add(variable, grad)
        if context and grads[-1] is not None:
            self.grad_context = grads[-1] if self.grad_context is None else \
                self.grad_context + grads[-1]
        return grads[:len(inputs)]
