"""TarFlow's sampling recipe for a flow trained on noisy data: one score step removes the noise.

A flow trained with `tfp_flows.layers.GaussianNoise` (``sigma`` in the units of its
input) is a density ``p_sigma`` of noisy data. Tweedie's formula gives the mean of the
clean data given a noisy sample,

    E[x | y] = y + sigma^2 grad_y log p_sigma(y),

computed here with the flow's own gradient (one normalizing pass and its backward
pass per batch). Functions take a `Flow` and work in data units: for an image flow
with ``num_values``, ``sigma_data = sigma * num_values`` (the `Dequantize` layer
divides by ``num_values``).

Zhai et al., "Normalizing Flows are Capable Generative Models" (TarFlow),
arXiv:2412.06329, section 2.4; Efron, "Tweedie's Formula and Selection Bias" (2011).
"""

from __future__ import annotations

import weakref

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.layers.base import LayerChain
from tfp_flows.layers.gaussian_noise import GaussianNoise
from tfp_flows.models import inputs
from tfp_flows.models.graphs import GraphFunctions

tfd = tfp.distributions
_GRAPHS = weakref.WeakKeyDictionary()  # flow -> its compiled functions of this module


def _graphs(flow) -> GraphFunctions:
    if flow not in _GRAPHS:
        _GRAPHS[flow] = GraphFunctions()
    return _GRAPHS[flow]


def noise_std(flow) -> float:
    """``sigma`` of the flow's `GaussianNoise` layer in data units; ValueError without one."""
    scale = 1.0
    for layer in flow.flow_layers:
        if isinstance(layer, GaussianNoise):
            return layer.noise_std * scale
        scale *= getattr(layer, "num_values", 1.0)  # Dequantize: v = (k + u) / n - 1/2
    raise ValueError(f"{flow.name}: expected a flow trained with a GaussianNoise layer "
                     f"(TarFlow(..., noise_std > 0)); got layers "
                     f"{[type(layer).__name__ for layer in flow.flow_layers]}.")


def _continuous_log_prob(flow, x, context):
    """``log p(x)`` of continuous ``x`` in data units (for a discrete flow, of ``k + u``),
    through the layers' bijectors; ``context`` is one checked context per example."""
    chain = LayerChain(flow.flow_layers, flow.embed_context(context),
                       event_ndims=len(flow.event_shape))
    return tfd.TransformedDistribution(flow.base(), chain).log_prob(x)


def graph_denoise(flow, x, context=None):
    """``x + sigma^2 grad_x log p(x)`` per example (a graph-level function); O(one
    normalizing pass and its gradient)."""
    x = tf.convert_to_tensor(x, flow.float_dtype)
    with tf.GradientTape() as tape:
        tape.watch(x)
        log_p = _continuous_log_prob(flow, x, context)
    return x + noise_std(flow) ** 2 * tape.gradient(log_p, x)


def graph_sample_denoised(flow, num_samples, context=None, *, seed, temperature=1.0):
    """`Flow.graph_sample` followed by `graph_denoise` (clipped to the data range again
    for a dequantized flow). Arguments as `Flow.graph_sample`'s."""
    x = flow.graph_sample(num_samples, context, seed=seed, temperature=temperature)
    single = 0 if flow.num_classes is not None else 1  # rank of one context
    if context is not None and context.shape.rank == single:
        context = tf.repeat(context[None], num_samples, axis=0)
    x = graph_denoise(flow, x, context)
    if flow.discrete:
        x = tf.clip_by_value(x, tf.constant(0.0, x.dtype), tf.cast(flow.num_values, x.dtype))
    return x


def sample_denoised(flow, num_samples: int, context=None, temperature: float = 1.0,
                    seed: int = 0):
    """``num_samples`` samples of ``flow``, each denoised by one score step (eager; one
    compiled graph per flow and context kind). ``context``: one for every sample."""
    if int(num_samples) < 1:
        raise ValueError(f"sample_denoised: expected num_samples >= 1; got {num_samples}.")
    noise_std(flow)  # a flow without training noise has nothing to remove
    context = inputs.check_context(flow, context, tf.zeros((int(num_samples), 0)))
    run = _graphs(flow).get("sample_denoised", lambda n, c, t, s: graph_sample_denoised(
        flow, n, c, seed=s, temperature=t))
    return run(tf.constant(int(num_samples), tf.int32), context,
               tf.constant(temperature, flow.float_dtype), tf.constant(seed, tf.int64))


def noisy_log_prob(flow, x, context=None, *, seed: int = 0):
    """``log p(k + u + sigma eps)`` per example, ``u ~ U(0, 1)^D`` (for a dequantized flow)
    and ``eps ~ N(0, I)`` drawn from ``seed``: one draw of the density of the noisy data
    the flow was trained on. Not a bound on ``log P(k)``: `Flow.log_prob` is that one."""
    x = inputs.check_x(flow, x)
    context = inputs.check_context(flow, context, x)
    x = tf.cast(x, flow.float_dtype)
    seeds = tf.constant([[seed, 0], [seed, 1]], tf.int32)
    y = x + noise_std(flow) * tf.random.stateless_normal(tf.shape(x), seeds[0], dtype=x.dtype)
    if flow.discrete:
        y = y + tf.random.stateless_uniform(tf.shape(x), seeds[1], dtype=x.dtype)
    run = _graphs(flow).get("noisy_log_prob", lambda y, c: _continuous_log_prob(flow, y, c))
    return run(y, context)
