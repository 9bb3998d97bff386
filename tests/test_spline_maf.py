"""Spline maths, MADE masks, MAF costs, and NSF / MAF flows end to end (fit, save, export)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

import tfp_flows
from tfp_flows import bijectors, data, layers
from tfp_flows.bijectors import _spline, masked_autoregressive
from tfp_flows.conditioners import MADE, MLP
from tfp_flows.conditioners.made import made_masks
from tfp_flows.testing import randomize_weights

tfb = tfp.bijectors
K, B = 8, 3.0


def knots(dtype, shape=(40, 3), scale=1.0, seed=0):
    theta = scale * np.random.default_rng(seed).standard_normal(shape + (3 * K - 1,))
    return _spline.spline_knots(tf.constant(theta, dtype), K, B)


def tfp_spline(kx, ky, kd):
    return tfb.RationalQuadraticSpline(kx[..., 1:] - kx[..., :-1], ky[..., 1:] - ky[..., :-1],
                                       kd[..., 1:-1], range_min=-B)


# -- the spline ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, tol", [(tf.float32, 2e-5), (tf.float64, 1e-12)])
def test_spline_matches_tfp_and_autodiff(dtype, tol):
    kx, ky, kd = knots(dtype)
    x = tf.constant(np.random.default_rng(1).uniform(-B, B, (40, 3)), dtype)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y, log_det = _spline.rational_quadratic_forward(x, (kx, ky, kd), B)
    reference = tfp_spline(kx, ky, kd)
    np.testing.assert_allclose(y, reference.forward(x), atol=tol)
    np.testing.assert_allclose(log_det, reference.forward_log_det_jacobian(x, 0), atol=50 * tol)
    np.testing.assert_allclose(log_det, np.log(tape.gradient(y, x)), atol=50 * tol)
    back, inverse_log_det = _spline.rational_quadratic_inverse(tf.identity(y), (kx, ky, kd), B)
    np.testing.assert_allclose(back, x, atol=20 * tol)
    np.testing.assert_allclose(inverse_log_det, -log_det, atol=50 * tol)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_spline_is_the_identity_outside_and_exact_on_knots(dtype):
    kx, ky, kd = knots(dtype, (5, 3))
    outside = tf.constant([[-1e4, -B - 1e-3, -B], [B, B + 0.5, 1e4]] * 2 + [[-7, 7, B]], dtype)
    for direction in (_spline.rational_quadratic_forward, _spline.rational_quadratic_inverse):
        value, log_det = direction(outside, (kx, ky, kd), B)
        np.testing.assert_array_equal(value, outside)
        np.testing.assert_array_equal(log_det, 0.0)
    tol = 1e-6 if dtype == tf.float32 else 1e-14
    for k in range(K + 1):  # every knot, the outer ones included: y_k and log d_k
        y, log_det = _spline.rational_quadratic_forward(kx[..., k], (kx, ky, kd), B)
        np.testing.assert_allclose(y, ky[..., k], atol=tol * B)
        np.testing.assert_allclose(log_det, np.log(kd[..., k]), atol=1e3 * tol)
        x, _ = _spline.rational_quadratic_inverse(ky[..., k], (kx, ky, kd), B)
        np.testing.assert_allclose(x, kx[..., k], atol=10 * tol * B)


def test_spline_gradients_are_finite_everywhere():
    theta = tf.Variable(3.0 * np.random.default_rng(2).standard_normal((6, 3 * K - 1)), dtype=tf.float32)
    x = tf.constant([-1e6, -B, -1.0, 0.0, B, 1e6], tf.float32)
    with tf.GradientTape() as tape:
        spline = _spline.spline_knots(theta, K, B)
        y, log_det = _spline.rational_quadratic_forward(x, spline, B)
        back, inverse_log_det = _spline.rational_quadratic_inverse(x, spline, B)
        loss = tf.reduce_sum(y + log_det + back + inverse_log_det)
    assert np.all(np.isfinite(tape.gradient(loss, theta)))


def test_spline_compiles_with_batched_parameters():
    kx, ky, kd = knots(tf.float32, (4, 6, 3))
    x = tf.constant(np.random.default_rng(3).uniform(-4, 4, (4, 6, 3)), tf.float32)

    def both(x, kx, ky, kd):
        return (_spline.rational_quadratic_forward(x, (kx, ky, kd), B)
                + _spline.rational_quadratic_inverse(x, (kx, ky, kd), B))

    compiled = tf.function(both, jit_compile=True)(x, kx, ky, kd)
    for got, want in zip(compiled, both(x, kx, ky, kd)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_zero_parameters_are_the_identity():
    spline = _spline.RationalQuadraticSpline(K, B)
    x = tf.constant(np.linspace(-5, 5, 41), tf.float32)
    zeros = [tf.zeros_like(x)] * spline.num_params
    for direction in (spline.forward, spline.inverse):
        value, log_det = direction(x, zeros)
        np.testing.assert_allclose(value, x, atol=2e-6)
        np.testing.assert_allclose(log_det, 0.0, atol=2e-6)


def test_spline_direction_evaluates_g_where_it_says():
    rng = np.random.default_rng(3)
    x = tf.constant(rng.uniform(-4, 4, (50, 2)), tf.float32)
    params = [tf.constant(rng.standard_normal((50, 2)), tf.float32) for _ in range(3 * K + 1)]
    g = _spline.RationalQuadraticSpline(K, B)
    density = bijectors.SplineTransform(K, B, affine=True)
    sample = bijectors.SplineTransform(K, B, affine=True, direction="sample")
    s = 2.0 * tf.tanh(params[1] / 2.0)  # the affine map's log-scale
    u = (x - params[0]) * tf.exp(-s)
    # "density": z = g((x - t) exp(-s)); "sample": z = g^-1((x - t) exp(-s))
    for transform, spline in ((density, g.forward), (sample, g.inverse)):
        z, log_det = transform.inverse(x, params)
        want_z, want_log_det = spline(u, params[2:])
        np.testing.assert_allclose(z, want_z, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(log_det, want_log_det - s, rtol=1e-5, atol=1e-5)
        x_back, forward_log_det = transform.forward(z, params)
        np.testing.assert_allclose(x_back, x, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(forward_log_det, -log_det, rtol=1e-4, atol=1e-4)
    config = sample.get_config()
    assert config["direction"] == "sample"
    del config["direction"]  # a config saved before the argument: the old arrangement
    assert masked_autoregressive.transform_from_config(config).direction == "sample"
    with pytest.raises(ValueError, match="direction in \\['density', 'sample'\\]"):
        bijectors.SplineTransform(K, B, direction="forward")


# -- MADE ------------------------------------------------------------------------------------

@pytest.mark.parametrize("ordering, context", [("natural", False), ("reversed", False),
                                               ("random", False), ([2, 0, 4, 1, 3], True)])
def test_made_jacobian_is_strictly_triangular_in_its_order(ordering, context):
    d, params = 5, 3
    made = MADE(params, (32, 32), ordering=ordering, seed=4)
    c = tf.constant(np.random.default_rng(0).standard_normal((1, 2)), tf.float32) if context else None
    made(tf.zeros((1, d)), c)
    randomize_weights(made, seed=1)
    x = tf.constant(np.random.default_rng(1).standard_normal((1, d)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        theta = made(x, c)
    jacobian = tape.batch_jacobian(theta, x)[0].numpy().reshape(params, d, d)
    order = made.order
    rank = np.argsort(order)
    allowed = rank[None, :] < rank[:, None]  # [output entry i, input j]: j comes before i
    for block in jacobian:
        assert np.all(block[~allowed] == 0.0)
        assert np.all(block[allowed] != 0.0)  # and every allowed dependence is there
    if ordering == "natural":
        np.testing.assert_array_equal(order, np.arange(d))
    if context:  # the first entry's parameters still depend on the context
        with tf.GradientTape() as tape:
            tape.watch(c)
            first = made(x, c)[:, order[0]]
        assert np.all(tape.gradient(first, c).numpy() != 0.0)


def test_made_takes_an_activation_per_hidden_layer():
    """``("relu", "gelu")``: ReLU, then GELU: the second layer's output is then smooth
    (no kink) where the first layer's units do not switch."""
    x = tf.constant(np.random.default_rng(0).standard_normal((5, 3)), tf.float32)
    mixed, relu = MADE(2, (8, 8), activation=("relu", "gelu")), MADE(2, (8, 8))
    mixed(x), relu(x)
    for made in (mixed, relu):
        randomize_weights(made, seed=2)
    assert not np.allclose(mixed(x).numpy(), relu(x).numpy())
    masks = made_masks(mixed.degrees, 2)
    h = tf.nn.relu(x @ (mixed.kernels[0] * masks[0]) + mixed.biases[0])
    h = tf.nn.gelu(h @ (mixed.kernels[1] * masks[1]) + mixed.biases[1])
    want = h @ (mixed.kernels[2] * masks[2]) + mixed.biases[2]
    np.testing.assert_allclose(mixed(x).numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    assert MADE.from_config(mixed.get_config()).get_config()["activation"] == ["relu", "gelu"]
    with pytest.raises(ValueError, match="one name or a name for each of the 2 hidden layers"):
        MADE(2, (8, 8), activation=("relu",))
    with pytest.raises(ValueError, match="one name or a name for each of the 1 hidden layers"):
        MLP(2, (8,), activation=["relu", "gelu"])
    assert [layer.activation.__name__ for layer in MLP(2, (8, 8), ("tanh", "relu")).hidden] == [
        "tanh", "relu"]


def test_made_rejects_bad_arguments():
    with pytest.raises(ValueError, match="expected ordering"):
        MADE(2, ordering="sideways")
    with pytest.raises(ValueError, match="permutation of range"):
        MADE(2, ordering=[0, 0, 1])(tf.zeros((1, 3)))
    with pytest.raises(ValueError, match="expected num_bins"):
        bijectors.SplineCoupling(lambda x: x, num_bins=1)
    with pytest.raises(ValueError, match="expected transform"):
        tfp_flows.MAF(2, transform="cubic")


class Counting(keras.layers.Layer):
    """A MADE that counts its passes (eager)."""

    def __init__(self, made):
        super().__init__()
        self.made, self.calls = made, 0

    def call(self, x):
        self.calls += 1
        return self.made(x)


@pytest.mark.parametrize("iaf", [False, True])
def test_training_direction_is_one_pass_and_the_other_d(iaf):
    d = 4
    made = MADE(2, (16,))
    made(tf.zeros((1, d)))
    randomize_weights(made)
    counter = Counting(made)
    bijector = bijectors.MaskedAutoregressive(counter, inverse_autoregressive=iaf)
    x = tf.constant(np.random.default_rng(0).standard_normal((3, d)), tf.float32)
    bijector.inverse_and_log_det(x)
    assert counter.calls == (d if iaf else 1)
    counter.calls = 0
    bijector.forward(x)
    assert counter.calls == (1 if iaf else d)


# -- flows end to end ------------------------------------------------------------------------

MOONS = data.two_moons(512)[0]


def fitted(flow, context=None, epochs=2):
    flow.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True, steps_per_execution=4)
    history = flow.fit(MOONS, context, batch_size=64, epochs=epochs, verbose=0)
    return flow, history.history["loss"]


@pytest.mark.parametrize("make", [
    lambda: tfp_flows.NSF(2, num_steps=2, hidden_units=(16,)),
    lambda: tfp_flows.MAF(2, num_steps=2, hidden_units=(16,), transform="spline"),
    lambda: tfp_flows.MAF(3, num_steps=2, hidden_units=(16,), inverse_autoregressive=True,
                          ordering="random"),
], ids=["nsf", "maf_spline", "iaf"])
def test_fit_under_xla_and_keras_round_trip(make, tmp_path):
    flow = make()
    x = MOONS if flow.event_shape == (2,) else np.concatenate([MOONS, MOONS[:, :1]], axis=1)
    flow.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=True, steps_per_execution=4)
    loss = flow.fit(x, batch_size=64, epochs=3, verbose=0).history["loss"]
    assert np.all(np.isfinite(loss)) and loss[-1] < loss[0]
    flow.save(tmp_path / "flow.keras")
    loaded = keras.saving.load_model(tmp_path / "flow.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.log_prob(x[:16]), flow.log_prob(x[:16]), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(loaded.sample(4, seed=3), flow.sample(4, seed=3), atol=1e-5)


def test_maf_export_serves_the_same_numbers(tmp_path):
    context = np.random.default_rng(1).standard_normal((len(MOONS), 3)).astype(np.float32)
    flow, _ = fitted(tfp_flows.MAF(2, num_steps=2, hidden_units=(16,), context_shape=(3,)),
                     context, epochs=1)
    model_dir = flow.export(tmp_path / "maf")
    served = tf.saved_model.load(str(model_dir)).signatures
    x, c = MOONS[:8], context[:8]
    out = served["log_prob"](x=tf.constant(x), context=tf.constant(c))
    np.testing.assert_allclose(out["log_prob"], flow.log_prob(x, c), rtol=1e-5, atol=1e-5)
    z = flow.encode(x, c)
    np.testing.assert_allclose(served["encode"](x=tf.constant(x), context=tf.constant(c))["z"], z,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(served["decode"](z=z, context=tf.constant(c))["x"], x, atol=1e-4)
    sample = served["sample"](num_samples=tf.constant(5), seed=tf.constant(7, tf.int64),
                              temperature=tf.constant(1.0), context=tf.constant(c[0]))["x"]
    np.testing.assert_allclose(sample, flow.sample(5, context=c[0], seed=7), atol=1e-5)
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((model_dir / "saved_model.pb").read_bytes())
    ops = {node.op for meta in proto.meta_graphs for f in meta.graph_def.library.function
           for node in f.node_def}
    library = {f.signature.name for m in proto.meta_graphs for f in m.graph_def.library.function}
    assert {"While", "StatelessWhile"} & ops  # sampling's d passes are a loop in the graph
    assert not {op for op in ops - library if op_def_registry.get(op) is None}


def test_mixed_precision_smoke():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        for flow in (tfp_flows.NSF(2, num_steps=1, hidden_units=(16,)),
                     tfp_flows.MAF(2, num_steps=1, hidden_units=(16,), transform="spline")):
            flow, loss = fitted(flow, epochs=1)
            inner = [layer for layer in flow.flow_layers
                     if isinstance(layer, (layers.SplineCoupling, layers.MaskedAutoregressive))]
            net = getattr(inner[0], "conditioner", None) or inner[0].made
            assert net.compute_dtype == "float16" and inner[0].compute_dtype == "float32"
            assert np.all(np.isfinite(loss)) and np.all(np.isfinite(flow.log_prob(MOONS[:32])))
    finally:
        keras.mixed_precision.set_global_policy("float32")
