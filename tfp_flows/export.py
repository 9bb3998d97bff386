"""Export a `Flow` as a TensorFlow SavedModel that TensorFlow Serving loads as it is.

The SavedModel needs TensorFlow alone: no ``tfp_flows``, no
``tensorflow_probability``, no Python code; its graph has only stock ops.
Signatures (batch dimension ``None``; conditional flows add a ``context`` input, the raw
observations where the flow has a context encoder, which the graph runs):

- ``serving_default`` and ``log_prob``: ``x`` -> ``log_prob``, ``bits_per_dim``, ``score``;
- ``sample``: ``num_samples`` (int32), ``seed`` (int64), ``temperature`` (float32) -> ``x``;
- ``encode``: ``x`` -> ``z``; ``decode``: ``z`` -> ``x``;
- ``sample_denoised`` (flows trained with `tfp_flows.layers.GaussianNoise`, e.g.
  ``TarFlow(..., noise_std=...)``): the inputs of ``sample`` -> ``x``, each sample moved
  by one step of the flow's score, ``x + sigma^2 grad log p(x)`` (`tfp_flows.models.denoise`).
- ``sample_guided`` (class-label flows trained with ``label_dropout``, e.g. a guided
  ``TarFlow``): the inputs of ``sample`` and ``guidance`` (the weight ``w``) -> ``x``,
  `Flow.sample`'s classifier-free guidance.

``x`` is what the user trains on: floats for continuous flows, whole pixel values
``0 .. num_values - 1`` (sent as numbers, checked in the graph) for dequantized image
flows. Their ``log_prob`` and ``bits_per_dim`` are ``Flow.log_prob(x, seed=0)``'s
uniform-dequantization bound (one draw of ``u`` per example, fixed seed, so a request
is repeatable) and ``score`` is ``Flow.score``'s deterministic midpoint value; for
continuous flows all three are the exact density. A float64 flow serves float64.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from tfp_flows.layers.gaussian_noise import GaussianNoise
from tfp_flows.models import denoise, inputs

SIGNATURES = ("serving_default", "log_prob", "sample", "encode", "decode")


def _versions(root: Path) -> list[int]:
    if not root.is_dir():
        return []
    return sorted(int(p.name) for p in root.iterdir() if p.is_dir() and re.fullmatch(r"\d+", p.name))


def _checked(tensor, event_shape, name: str):
    """Asserts in the graph (stock ``Assert`` op) that ``tensor`` is ``[batch, *event_shape]``
    (a None entry: any size), so a served request of the wrong shape fails instead of
    broadcasting."""
    expected = "[batch, " + ", ".join(map(str, event_shape)) + "]"
    shape = tf.shape(tensor)[1:]
    known = tf.constant([n is not None for n in event_shape])
    sizes = tf.constant([0 if n is None else n for n in event_shape], tf.int32)
    check = tf.debugging.assert_equal(shape, tf.where(known, sizes, shape),
                                      message=f"expected {name} of shape {expected}")
    with tf.control_dependencies([check]):
        return tf.identity(tensor)


def _context_spec(flow):
    if flow.num_classes is not None:
        return tf.TensorSpec([None], tf.int64, name="context")
    if flow.context_shape is not None:
        return tf.TensorSpec([None, *flow.context_shape], flow.float_dtype, name="context")
    return None


def _endpoints(flow):
    """The served functions and their input signatures."""
    event = list(flow.event_shape)
    latent = list(flow.latent_shape)
    x_spec = tf.TensorSpec([None, *event], flow.float_dtype, name="x")
    z_spec = tf.TensorSpec([None, *latent], flow.float_dtype, name="z")
    context_spec = _context_spec(flow)

    def context_of(context, batch):
        if context is None:
            return None
        if flow.context_shape is not None:
            return _checked(context, list(flow.context_shape), "context")
        check = tf.debugging.assert_equal(tf.shape(context)[0], batch,
                                          message="expected one context label per example")
        with tf.control_dependencies([check]):
            return inputs.check_context(flow, tf.identity(context))

    def data_of(x):
        return inputs.check_x(flow, _checked(x, event, "x"))  # pixels of discrete flows, in-graph

    def log_prob(x, context=None):
        x = data_of(x)
        context = context_of(context, tf.shape(x)[0])
        log_p = flow.graph_log_prob(x, context, seed=tf.constant([0, 0], tf.int64))
        return {"log_prob": log_p, "bits_per_dim": -log_p / (flow.event_size * 0.6931471805599453),
                "score": flow.graph_score(x, context) if flow.discrete else log_p}

    def encode(x, context=None):
        x = data_of(x)
        return {"z": flow.graph_encode(x, context_of(context, tf.shape(x)[0]))}

    def decode(z, context=None):
        z = _checked(z, latent, "z")
        return {"x": flow.graph_decode(z, context_of(context, tf.shape(z)[0]))}

    def sampler(draw):
        """The served sampling function of ``draw`` (`Flow.graph_sample`'s arguments)."""
        if context_spec is None:
            return lambda num_samples, seed, temperature: {
                "x": draw(num_samples, None, seed=seed, temperature=temperature)}
        return lambda num_samples, seed, temperature, context: {
            "x": draw(num_samples, inputs.check_context(flow, context), seed=seed,
                      temperature=temperature)}

    samplers = {"sample": sampler(flow.graph_sample)}
    if any(isinstance(layer, GaussianNoise) and layer.noise_std > 0
           for layer in flow.flow_layers):
        samplers["sample_denoised"] = sampler(
            lambda *args, **kwargs: denoise.graph_sample_denoised(flow, *args, **kwargs))

    scalars = [tf.TensorSpec([], tf.int32, name="num_samples"),
               tf.TensorSpec([], tf.int64, name="seed"),
               tf.TensorSpec([], flow.float_dtype, name="temperature")]
    if context_spec is None:
        return {"log_prob": (lambda x: log_prob(x), [x_spec]),
                "encode": (lambda x: encode(x), [x_spec]),
                "decode": (lambda z: decode(z), [z_spec]),
                **{name: (fn, scalars) for name, fn in samplers.items()}}
    one_context = (tf.TensorSpec(list(flow.context_shape), flow.float_dtype, name="context")
                   if flow.context_shape is not None
                   else tf.TensorSpec([], tf.int64, name="context"))
    endpoints = {"log_prob": (log_prob, [x_spec, context_spec]),
                 "encode": (encode, [x_spec, context_spec]),
                 "decode": (decode, [z_spec, context_spec]),
                 **{name: (fn, scalars + [one_context]) for name, fn in samplers.items()}}
    if flow.label_dropout and not inputs.unguided_layers(flow):
        endpoints["sample_guided"] = (
            lambda num_samples, seed, temperature, context, guidance: {"x": flow.graph_sample(
                num_samples, inputs.check_context(flow, context), seed=seed,
                temperature=temperature, guidance=guidance)},
            scalars + [one_context, tf.TensorSpec([], flow.float_dtype, name="guidance")])
    return endpoints


def export(flow, path: str | os.PathLike, version: int | None = 1, next_version: bool = False,
           overwrite: bool = False) -> Path:
    """Writes ``flow`` as a SavedModel in ``path/<version>/``, the layout TensorFlow Serving watches.

    Args:
        flow: a built `tfp_flows.Flow`.
        path: the model's base directory (TensorFlow Serving's ``--model_base_path``).
        version: numeric version directory; default 1.
        next_version: use one more than the highest version already in ``path``.
        overwrite: replace an existing version directory (otherwise an error).

    Returns:
        The version directory written. The write goes to a temporary directory first and
        is renamed into place, so a server never sees a half-written version.

    Raises:
        ValueError: a version that is not a non-negative integer.
        FileExistsError: the version directory exists and ``overwrite`` is False.

    For a sample signature of a conditional flow, ``context`` is one context (a vector,
    or a scalar label) used for every sample.

    Examples:
        >>> import tempfile, tensorflow as tf, tfp_flows
        >>> flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(8,))
        >>> folder = export(flow, tempfile.mkdtemp())
        >>> folder.name, sorted(tf.saved_model.load(str(folder)).signatures)
        ('1', ['decode', 'encode', 'log_prob', 'sample', 'serving_default'])
    """
    root = Path(path)
    if next_version:
        version = (max(_versions(root)) + 1) if _versions(root) else 1
    if not isinstance(version, int) or version < 0:
        raise ValueError(f"export: expected a non-negative integer version; got {version!r}.")
    target = root / str(version)
    if target.exists() and not overwrite:
        raise FileExistsError(f"export: {target} already exists; pass next_version=True for a "
                              f"new version or overwrite=True to replace it.")
    root.mkdir(parents=True, exist_ok=True)

    archive = keras.export.ExportArchive()
    archive.track(flow)
    endpoints = _endpoints(flow)
    fn, signature = endpoints["log_prob"]
    archive.add_endpoint("serving_default", fn, input_signature=signature)
    for name, (fn, signature) in endpoints.items():
        archive.add_endpoint(name, fn, input_signature=signature)

    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=root))
    try:
        archive.write_out(str(staging / "model"), verbose=False)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging / "model", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
