"""The public bijector checker: every transform of the package passes it, and so can yours.

``check_bijector(make, event_shape)`` runs, for random non-identity parameters:

1. round trips ``inverse(forward(z))`` and ``forward(inverse(x))`` with TFP's cache
   defeated (``tf.identity`` between the calls);
2. ``log|det J|`` of both directions against ``batch_jacobian`` + ``slogdet`` in float64;
3. ``fldj(z) = -ildj(forward(z))`` and ``inverse_and_log_det = (inverse, ildj)``;
4. float32 and float64;
5. batch shapes: a ``[2, 3]`` batch gives the values of the same six events one batch axis;
6. eager, ``tf.function`` and ``tf.function(jit_compile=True)`` agree (in float32 unless
   ``compiled_dtypes`` says otherwise);
7. use inside ``tfb.Chain`` with TFP's own bijectors and in ``tfd.TransformedDistribution``.

``check_layer(make_layer, event_shape)`` also randomises the layer's weights and
checks that every trainable weight receives a finite, non-zero gradient.

A failed check raises ``AssertionError`` naming the check, the dtype and the error.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.bijectors import inverse_and_log_det

tfb = tfp.bijectors
tfd = tfp.distributions

# (dtype, check) -> (relative, absolute) tolerance, and why it is that loose.
TOLERANCES = {
    ("float32", "round_trip"): (1e-5, 1e-5),    # two float32 passes (solves, exp/log of scales)
    ("float64", "round_trip"): (1e-10, 1e-10),  # same passes in float64
    ("float32", "log_det"): (1e-5, 1e-4),       # sums of up to ~100 float32 terms of size ~1
    ("float64", "log_det"): (1e-8, 1e-8),       # against slogdet of an autodiff Jacobian
    ("float32", "compiled"): (1e-5, 1e-5),      # XLA fuses and reorders float32 arithmetic
    ("float64", "compiled"): (1e-10, 1e-10),
    ("float32", "batch"): (1e-5, 1e-5),         # batched matmuls may block differently
    ("float64", "batch"): (1e-10, 1e-10),
}


def _assert_close(actual, expected, dtype, check, what):
    rtol, atol = TOLERANCES[(dtype.name, check)]
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        raise AssertionError(f"{what} ({dtype.name}): shape {actual.shape} != {expected.shape}")
    if not np.all(np.isfinite(actual)):
        raise AssertionError(f"{what} ({dtype.name}): non-finite values")
    error = np.abs(actual - expected)
    if np.any(error > atol + rtol * np.abs(expected)):
        raise AssertionError(f"{what} ({dtype.name}): max error {error.max():.3g} exceeds "
                             f"rtol={rtol:g}, atol={atol:g}")


def _flat_log_det(fn, x, event_ndims):
    """``log|det d fn / dx|`` per event, from the autodiff Jacobian of the flattened event."""
    batch_shape = x.shape[: x.shape.rank - event_ndims]
    flat = tf.reshape(x, [batch_shape.num_elements(), -1])
    with tf.GradientTape() as tape:
        tape.watch(flat)
        out = fn(tf.reshape(flat, x.shape))
        out = tf.reshape(out, [batch_shape.num_elements(), -1])
    jacobian = tape.batch_jacobian(out, flat)
    return tf.reshape(tf.linalg.slogdet(jacobian)[1], batch_shape)


def _outputs(bijector, z, y, ndims):
    """Forward, its log-det, inverse, its log-det; log-dets broadcast to the batch shape
    (TFP lets a constant-Jacobian bijector return a scalar)."""
    batch_shape = tf.shape(z)[: z.shape.rank - ndims]
    x = bijector.forward(z)
    inverse = bijector.inverse(y)
    return (x, tf.broadcast_to(bijector.forward_log_det_jacobian(z, event_ndims=ndims),
                               batch_shape),
            inverse, tf.broadcast_to(bijector.inverse_log_det_jacobian(y, event_ndims=ndims),
                                     batch_shape))


def check_bijector(make: Callable[[tf.DType], tfb.Bijector], event_shape, *,
                   batch_shape=(2, 3), seed: int = 0, dtypes=(tf.float32, tf.float64),
                   scale: float = 1.0, compiled_dtypes=(tf.float32,)) -> None:
    """Runs every check on ``make(dtype)``, a bijector whose ``forward`` takes events of
    ``event_shape``. Inputs are standard normal times ``scale``.

    Args:
        make: ``dtype -> bijector``; called once per dtype.
        event_shape: the shape of one event of the bijector's ``forward`` input (a latent).
        batch_shape: the batch the checks run on.
        seed: NumPy seed of the inputs.
        dtypes: the dtypes checked; the Jacobian checks run in float64.
        scale: standard deviation of the inputs.
        compiled_dtypes: the dtypes in which ``tf.function`` and ``jit_compile=True``
            must give the eager numbers (float32, the training dtype, by default: the
            two compilations are two thirds of the checker's time; a float64 flow
            trained under XLA is checked end to end in ``tests/test_trust.py``). The
            first of ``dtypes`` if none of them is listed.

    Raises:
        AssertionError: naming the check, the dtype and the error, for the first check
            that fails (tolerances: ``TOLERANCES``).

    Examples:
        >>> import tensorflow_probability as tfp
        >>> check_bijector(lambda dtype: tfp.bijectors.Scale(tf.constant(2.0, dtype)), (3,),
        ...                dtypes=(tf.float64,))  # passes silently
    """
    event_shape = tuple(event_shape)
    ndims = len(event_shape)
    rng = np.random.default_rng(seed)
    for dtype in dtypes:
        bijector = make(dtype)
        data_shape = tuple(bijector.forward_event_shape(event_shape))
        z = tf.constant(scale * rng.standard_normal(batch_shape + event_shape), dtype)
        y = tf.constant(scale * rng.standard_normal(batch_shape + data_shape), dtype)
        name = type(bijector).__name__

        x, fldj, inverse, ildj = _outputs(bijector, z, y, ndims)
        _assert_close(bijector.inverse(tf.identity(x)), z, dtype, "round_trip",
                      f"{name}: inverse(forward(z)) != z")
        _assert_close(bijector.forward(tf.identity(inverse)), y, dtype, "round_trip",
                      f"{name}: forward(inverse(x)) != x")
        if tuple(fldj.shape) != batch_shape or tuple(ildj.shape) != batch_shape:
            raise AssertionError(f"{name}: log-det shapes {fldj.shape}, {ildj.shape} are not "
                                 f"the batch shape {batch_shape}")
        _assert_close(fldj, -_outputs(bijector, tf.identity(inverse), tf.identity(x), ndims)[3],
                      dtype, "log_det", f"{name}: fldj(z) != -ildj(forward(z))")
        fast_inverse, fast_ildj = inverse_and_log_det(bijector, tf.identity(y), ndims)
        fast_ildj = tf.broadcast_to(fast_ildj, batch_shape)
        _assert_close(fast_inverse, inverse, dtype, "round_trip",
                      f"{name}: inverse_and_log_det disagrees with inverse")
        _assert_close(fast_ildj, ildj, dtype, "log_det",
                      f"{name}: inverse_and_log_det disagrees with inverse_log_det_jacobian")

        if dtype == tf.float64:
            _assert_close(fldj, _flat_log_det(bijector.forward, z, ndims), dtype, "log_det",
                          f"{name}: forward log-det != log|det| of the autodiff Jacobian")
            _assert_close(ildj, _flat_log_det(bijector.inverse, y, ndims), dtype, "log_det",
                          f"{name}: inverse log-det != log|det| of the autodiff Jacobian")

        size = int(np.prod(batch_shape))
        flat = _outputs(bijector, tf.reshape(z, (size,) + event_shape),
                        tf.reshape(y, (size,) + data_shape), ndims)
        for got, want in zip(flat, (x, fldj, inverse, ildj)):
            _assert_close(tf.reshape(got, want.shape), want, dtype, "batch",
                          f"{name}: a [{size}] batch disagrees with a {list(batch_shape)} batch")

        compiled_here = dtype in compiled_dtypes or (
            dtype == dtypes[0] and not set(dtypes) & set(compiled_dtypes))
        for jit in (False, True) if compiled_here else ():
            compiled = tf.function(lambda a, b, f=bijector: _outputs(f, a, b, ndims),
                                   jit_compile=jit)
            for got, want in zip(compiled(z, y), (x, fldj, inverse, ildj)):
                _assert_close(got, want, dtype, "compiled",
                              f"{name}: tf.function(jit_compile={jit}) disagrees with eager")

        _check_in_tfp(bijector, z, y, event_shape, data_shape, dtype)


def _check_in_tfp(bijector, z, y, event_shape, data_shape, dtype):
    name = type(bijector).__name__
    ndims = len(event_shape)
    scale = 1.5
    chain = tfb.Chain([tfb.Shift(tf.constant(0.25, dtype)), bijector,
                       tfb.Scale(tf.constant(scale, dtype))])
    x = chain.forward(z)
    _assert_close(chain.inverse(tf.identity(x)), z, dtype, "round_trip",
                  f"{name} in tfb.Chain: round trip")
    expected = (bijector.forward_log_det_jacobian(scale * z, event_ndims=ndims)
                + np.prod(event_shape) * np.log(scale))
    _assert_close(chain.forward_log_det_jacobian(z, event_ndims=ndims), expected, dtype,
                  "log_det", f"{name} in tfb.Chain: log-det")

    base = tfd.Sample(tfd.Normal(tf.constant(0.0, dtype), 1.0), sample_shape=event_shape)
    distribution = tfd.TransformedDistribution(base, bijector)
    expected = (base.log_prob(bijector.inverse(y))
                + bijector.inverse_log_det_jacobian(y, event_ndims=ndims))
    _assert_close(distribution.log_prob(tf.identity(y)), expected, dtype, "log_det",
                  f"{name} in tfd.TransformedDistribution: log_prob")
    batch_shape = tuple(z.shape[: z.shape.rank - ndims])
    samples = distribution.sample(batch_shape, seed=(1, 2))
    if tuple(samples.shape) != batch_shape + data_shape:
        raise AssertionError(f"{name} in tfd.TransformedDistribution: samples of shape "
                             f"{tuple(samples.shape)}, expected {batch_shape + data_shape}")


def randomize_weights(layer, seed: int = 0, scale: float = 0.3) -> None:
    """Sets every trainable weight of ``layer`` to ``scale`` times a standard normal draw,
    so that no part of it is the identity (zero-initialised conditioner outputs included).

    Args:
        layer: a built Keras layer.
        seed: NumPy seed.
        scale: standard deviation of the new weights.

    Examples:
        >>> from tfp_flows import layers
        >>> layer = layers.DiagonalLinear()
        >>> layer.build((None, 3))
        >>> randomize_weights(layer, seed=0)
        >>> bool(np.all(layer.trainable_weights[0].numpy() != 0))
        True
    """
    rng = np.random.default_rng(seed)
    for weight in layer.trainable_weights:
        weight.assign(scale * rng.standard_normal(weight.shape).astype(weight.dtype))


def check_layer(make_layer: Callable[[tf.DType], object], event_shape, *, context=None,
                seed: int = 0, scale: float = 0.3, **kwargs) -> None:
    """Checks the bijector of a Keras flow layer, that its call (the training path) and
    its bijector in a ``tfb.Chain`` (TFP's path) compute one map, and that its weights get
    gradients.

    ``make_layer(dtype)`` returns an unbuilt layer; ``event_shape`` is its input (data)
    shape; ``context`` a function ``dtype -> tensor`` for conditional layers.

    Args:
        make_layer: ``dtype -> layer``, an unbuilt flow layer of that dtype.
        event_shape: the layer's input (data) shape, one example.
        context: ``dtype -> context tensor`` for a conditional layer, or None.
        seed: seed of the inputs and of the random weights (`randomize_weights`).
        scale: standard deviation of the random weights.
        **kwargs: passed to `check_bijector` (``batch_shape``, ``dtypes``: float32 among them).

    Raises:
        AssertionError: naming the check that fails (see `check_bijector`), a weight that
            gets no gradient, or a call that disagrees with the bijector.

    Examples:
        >>> from tfp_flows import layers
        >>> check_layer(lambda dtype: layers.DiagonalLinear(dtype=dtype), (3,))  # passes silently
    """
    event_shape = tuple(event_shape)
    layers = {}

    def make(dtype):
        layer = make_layer(dtype)
        layer.build((None,) + event_shape)
        c = None if context is None else context(dtype)
        batch = 1 if c is None else c.shape[0]
        layer(tf.zeros((batch,) + event_shape, dtype), context=c)  # builds lazily-built parts
        randomize_weights(layer, seed, scale)
        layers[dtype] = (layer, c)
        return layer.bijector(c)

    # The layer maps data to latents; the checker's events are latents.
    latent_shape = tuple(make_layer(tf.float32).compute_output_shape((None,) + event_shape)[1:])
    check_bijector(make, latent_shape, seed=seed, **kwargs)

    layer, c = layers[tf.float32]
    x = tf.random.stateless_normal((1 if c is None else c.shape[0],) + event_shape,
                                   seed=(seed, 1))
    # One map, two paths: the layer's call (what training runs) and its bijector's
    # inverse (what TFP's methods run, through a tfb.Chain of the layers' bijectors).
    # A layer that adds dequantization noise maps k + u: give it u = 0.
    noise = {"noise": tf.zeros_like(x)} if getattr(layer, "takes_noise", False) else {}
    z_call, log_det_call = layer(x, context=c, training=False, **noise)
    chain = tfp.bijectors.Chain([layer.bijector(c)])
    z_tfp = chain.inverse(tf.identity(x))
    log_det_tfp = chain.inverse_log_det_jacobian(tf.identity(x), event_ndims=len(event_shape))
    np.testing.assert_allclose(z_call, z_tfp, rtol=1e-5, atol=1e-5,
                               err_msg=f"{layer.name}: call and bijector disagree")
    np.testing.assert_allclose(*np.broadcast_arrays(log_det_call, log_det_tfp),
                               rtol=1e-4, atol=1e-4,
                               err_msg=f"{layer.name}: call and bijector log-dets disagree")
    with tf.GradientTape() as tape:
        z, log_det = layer(x, context=c, training=False)
        loss = tf.reduce_sum(z ** 2) + tf.reduce_sum(log_det)
    gradients = tape.gradient(loss, layer.trainable_weights)
    for weight, gradient in zip(layer.trainable_weights, gradients):
        if gradient is None:
            raise AssertionError(f"{layer.name}: weight {weight.path} receives no gradient")
        gradient = np.asarray(tf.convert_to_tensor(gradient))
        if not np.all(np.isfinite(gradient)) or not np.any(gradient != 0):
            raise AssertionError(f"{layer.name}: weight {weight.path} has a zero or "
                                 f"non-finite gradient")
