"""Every Keras flow layer through the checker, with random weights, and its gradients."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows import bijectors, layers
from tfp_flows.bijectors import Checkerboard, HalfSplit, TokenStripes
from tfp_flows.conditioners import ViT
from tfp_flows.testing import check_layer

tfb = tfp.bijectors
CONTEXT = np.random.default_rng(2).standard_normal((1, 3))


def context(dtype):
    return tf.constant(np.repeat(CONTEXT, 6, axis=0), dtype)


REGISTRY = {
    "LULinear": ((5,), lambda dt: layers.LULinear(seed=1, dtype=dt), None),
    "LULinear/reversal": ((5,), lambda dt: layers.LULinear(start="reversal", dtype=dt), None),
    "Invertible1x1Conv": ((2, 2, 3), lambda dt: layers.Invertible1x1Conv(seed=1, dtype=dt), None),
    "TokenLULinear": ((4, 3), lambda dt: layers.TokenLULinear(seed=1, dtype=dt), None),
    "FullLinear": ((4,), lambda dt: layers.FullLinear(dtype=dt), None),
    "TriangularLinear": ((4,), lambda dt: layers.TriangularLinear(dtype=dt), None),
    "DiagonalLinear": ((4,), lambda dt: layers.DiagonalLinear(dtype=dt), None),
    "ActNorm": ((2, 2, 3), lambda dt: layers.ActNorm(dtype=dt), None),
    "AffineCoupling": ((5,), lambda dt: layers.AffineCoupling(
        HalfSplit(True), hidden_units=(8,), dtype=dt), None),
    "AffineCoupling/context": ((4,), lambda dt: layers.AffineCoupling(
        hidden_units=(8,), dtype=dt), context),
    "AffineCoupling/checkerboard": ((4, 4, 2), lambda dt: layers.AffineCoupling(
        Checkerboard(0), hidden_channels=8, dtype=dt), None),
    "AffineCoupling/sigmoid": ((2, 2, 4), lambda dt: layers.AffineCoupling(
        hidden_channels=8, scale="sigmoid", dtype=dt), None),
    "AdditiveCoupling": ((2, 2, 4), lambda dt: layers.AdditiveCoupling(
        hidden_channels=8, dtype=dt), None),
    "PReLUCoupling": ((4,), lambda dt: layers.PReLUCoupling(hidden_units=(8,), dtype=dt), None),
    "PReLUCoupling/image": ((2, 2, 4), lambda dt: layers.PReLUCoupling(
        hidden_channels=8, dtype=dt), context),
    "Squeeze": ((4, 2, 1), lambda dt: layers.Squeeze(dtype=dt), None),
    "Unsqueeze": ((2, 2, 4), lambda dt: layers.Unsqueeze(dtype=dt), None),
    "Permute": ((5,), lambda dt: layers.Permute(seed=3, dtype=dt), None),
    "FactorOut": ((2, 2, 8), lambda dt: layers.FactorOut(
        [layers.Squeeze(dtype=dt), layers.Invertible1x1Conv(seed=0, dtype=dt),
         layers.AffineCoupling(hidden_channels=8, dtype=dt), layers.Unsqueeze(dtype=dt)],
        hidden_channels=8, dtype=dt), context),
    "OrthogonalMixing": ((4, 5), lambda dt: layers.OrthogonalMixing(seed=2, dtype=dt), None),
    "AffineCoupling/vit_token_dims": ((4, 4), lambda dt: layers.AffineCoupling(
        conditioner=ViT(4, 8, 1, 2, dtype=dt), dtype=dt), context),
    "PReLUCoupling/vit_token_stripes": ((4, 3), lambda dt: layers.PReLUCoupling(
        TokenStripes((2, 2), axis=0, parity=1),
        conditioner=ViT(6, 8, 1, 2, context_as_token=True, dtype=dt), dtype=dt), context),
    "SplineCoupling": ((4,), lambda dt: layers.SplineCoupling(
        hidden_units=(8,), num_bins=4, bound=1.0, dtype=dt), None),
    "SplineCoupling/image_context": ((2, 2, 4), lambda dt: layers.SplineCoupling(
        HalfSplit(True), hidden_channels=4, num_bins=4, dtype=dt), context),
    "MaskedAutoregressive": ((3,), lambda dt: layers.MaskedAutoregressive(
        hidden_units=(8,), ordering="reversed", dtype=dt), None),
    "MaskedAutoregressive/spline_context": ((3,), lambda dt: layers.MaskedAutoregressive(
        bijectors.SplineTransform(4, 1.5), hidden_units=(8,), ordering="random", dtype=dt),
        context),
    "MaskedAutoregressive/iaf": ((3,), lambda dt: layers.MaskedAutoregressive(
        hidden_units=(8,), inverse_autoregressive=True, dtype=dt), None),
    "FixedBijector": ((3,), lambda dt: layers.FixedBijector(
        tfb.SinhArcsinh(tf.constant(0.3, dt), tf.constant(1.2, dt)), dtype=dt), None),
    "Standardize": ((2, 3), lambda dt: layers.Standardize(
        mean=[[0.5, -1.0, 2.0], [0.0, 3.0, -0.2]], std=[[2.0, 0.5, 1.5], [0.3, 4.0, 1.0]],
        dtype=dt), None),
    "Dequantize": ((2, 2, 1), lambda dt: layers.Dequantize(17, dtype=dt), None),
    "TransformerAutoregressive/reverse_context": ((3, 2), lambda dt:
        layers.TransformerAutoregressive(8, 1, 2, reverse=True, dtype=dt), context),
    # The identity outside training (its training noise: tests/test_tarflow.py).
    "GaussianNoise": ((2, 3), lambda dt: layers.GaussianNoise(0.1, seed=1, dtype=dt), None),
}
ABSTRACT = {"FlowLayer"}  # templates, checked through their subclasses
# Rank-changing maps: the checker's event rank is one on both sides; their bijectors
# pass it inside a chain (tests/test_bijectors.py, "Patchify/chain") and tests/test_jet.py
# trains and saves them.
RANK_CHANGING = {"Patchify", "Unpatchify"}


def test_every_public_layer_is_in_the_registry():
    public = {name for name in layers.__all__ if isinstance(getattr(layers, name), type)
              and issubclass(getattr(layers, name), layers.FlowLayer)}
    assert public - ABSTRACT - RANK_CHANGING - {key.split("/")[0] for key in REGISTRY} == set()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_layer_passes_checker(name):
    event_shape, make, ctx = REGISTRY[name]
    batch = (6,) if ctx is not None else (2, 3)
    check_layer(make, event_shape, context=ctx, batch_shape=batch)


def test_actnorm_initialises_from_the_first_training_batch_only():
    layer = layers.ActNorm(min_scale=1e-3)
    x = tf.constant(np.random.default_rng(0).normal(3.0, 2.0, (256, 4)), tf.float32)
    layer(x, training=False)  # inference never initialises
    np.testing.assert_allclose(layer.loc.numpy(), 0.0)
    z, _ = layer(x, training=True)
    np.testing.assert_allclose(tf.reduce_mean(z, 0), 0.0, atol=1e-5)
    np.testing.assert_allclose(tf.math.reduce_std(z, 0), 1.0, atol=1e-4)
    before = layer.loc.numpy().copy()
    layer(x + 10.0, training=True)  # a second batch changes nothing
    np.testing.assert_allclose(layer.loc.numpy(), before)
    constant = layers.ActNorm(min_scale=0.1)
    constant(tf.ones((8, 2)), training=True)  # zero variance: the floor holds
    np.testing.assert_allclose(constant.log_scale.numpy(), np.log(0.1), rtol=1e-6)


def test_lu_layer_starts_from_a_rotation():
    layer = layers.LULinear(seed=0)
    layer.build((None, 6))
    weight = tf.linalg.matmul(layer.bijector().inverse(tf.eye(6)), tf.eye(6), transpose_a=True)
    np.testing.assert_allclose(weight.numpy() @ weight.numpy().T, np.eye(6), atol=1e-5)
    assert not np.allclose(weight.numpy(), np.eye(6))


def test_lu_layer_can_start_from_the_reversal_and_says_so_in_its_config():
    layer = layers.LULinear(start="reversal")
    x = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    z, log_det = layer(x)
    np.testing.assert_array_equal(z, x[:, ::-1])
    np.testing.assert_array_equal(log_det, 0.0)
    assert len(layer.trainable_weights) == 4  # lower, upper, log-scale, shift: all learned
    config = layer.get_config()
    assert config["start"] == "reversal"
    assert layers.LULinear.from_config(config).start == "reversal"
    old = {key: value for key, value in config.items() if key != "start"}
    assert layers.LULinear.from_config(old).start == "rotation"  # files saved before the key
    with pytest.raises(ValueError, match=r"expected start in \['rotation', 'reversal'\]; got 'eye'"):
        layers.LULinear(start="eye")


def test_dequantize_counts_the_scaling():
    layer = layers.Dequantize(num_values=4)
    x = tf.constant([[0, 3], [1, 2]])
    v, log_det = layer(x, training=False)
    np.testing.assert_allclose(v.numpy(), (x.numpy() + 0.5) / 4 - 0.5)
    np.testing.assert_allclose(log_det.numpy(), [-2 * np.log(4)] * 2)
    noisy, _ = layer(x, training=True)
    assert np.all((noisy.numpy() >= x.numpy() / 4 - 0.5) & (noisy.numpy() < (x.numpy() + 1) / 4 - 0.5))


def test_wrong_conditioner_size_is_a_value_error_on_first_call():
    from tfp_flows.conditioners import MLP
    layer = layers.AffineCoupling(conditioner=MLP(3, (4,)))
    layer.build((None, 4))
    with pytest.raises(ValueError, match="expected the conditioner to return"):
        layer(tf.zeros((2, 4)))


def test_squeeze_rejects_odd_sides_at_build():
    with pytest.raises(ValueError, match="even H and W"):
        layers.Squeeze().build((None, 3, 4, 1))
