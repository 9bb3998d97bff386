"""Every bijector through the shared checker, with random non-identity parameters."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows import bijectors, layers
from tfp_flows.bijectors import random_rotation_lu
from tfp_flows.conditioners import MADE, MLP, CausalTransformer, ConvNet, ViT
from tfp_flows.testing import check_bijector, randomize_weights

tfb = tfp.bijectors
RNG = np.random.default_rng(0)


def rand(*shape, scale=0.3):
    return scale * RNG.standard_normal(shape)


def lu_params(size, dtype):
    permutation, lower, upper, log_scale, sign = random_rotation_lu(size, seed=size)
    return (permutation, tf.constant(lower + rand(size, size), dtype),
            tf.constant(upper + rand(size, size), dtype),
            tf.constant(log_scale + rand(size), dtype), tf.constant(sign, dtype),
            tf.constant(rand(size), dtype))


def conditioner(make, dtype, x_shape, context_shape=None, seed=0):
    """A Keras conditioner with random (non-zero) weights in ``dtype``."""
    net = make(dtype)
    net(tf.zeros((1,) + x_shape, dtype),
        None if context_shape is None else tf.zeros((1,) + context_shape, dtype))
    randomize_weights(net, seed)
    return net


def mlp(outputs, x_size, context_size=None):
    return lambda dtype: conditioner(lambda d: MLP(outputs, (16, 16), dtype=d), dtype,
                                     (x_size,), None if context_size is None else (context_size,))


def convnet(outputs, x_shape):
    return lambda dtype: conditioner(lambda d: ConvNet(outputs, 8, dtype=d), dtype, x_shape)


CONTEXT = np.random.default_rng(1).standard_normal((3,))

REGISTRY = {
    "LULinear": ((5,), lambda dt: bijectors.LULinear(*lu_params(5, dt))),
    "Invertible1x1Conv": ((4, 4, 3), lambda dt: bijectors.Invertible1x1Conv(*lu_params(3, dt))),
    "TokenLULinear": ((4, 3), lambda dt: bijectors.TokenLULinear(*lu_params(3, dt))),
    "FullLinear": ((4,), lambda dt: bijectors.FullLinear(
        tf.constant(np.eye(4) + rand(4, 4), dt), tf.constant(rand(4), dt))),
    "TriangularLinear": ((4,), lambda dt: bijectors.TriangularLinear(
        tf.constant(rand(4, 4), dt), tf.constant(rand(4), dt), tf.constant(rand(4), dt))),
    "DiagonalLinear": ((4,), lambda dt: bijectors.DiagonalLinear(
        tf.constant(rand(4), dt), tf.constant(rand(4), dt))),
    "ActNorm/vector": ((4,), lambda dt: bijectors.ActNorm(
        tf.constant(rand(4), dt), tf.constant(rand(4), dt))),
    "ActNorm/image": ((2, 2, 3), lambda dt: bijectors.ActNorm(
        tf.constant(rand(3), dt), tf.constant(rand(3), dt), event_ndims=3)),
    "AffineCoupling/half": ((5,), lambda dt: bijectors.AffineCoupling(mlp(6, 2)(dt))),
    "AffineCoupling/reverse": ((5,), lambda dt: bijectors.AffineCoupling(
        mlp(6, 2)(dt), bijectors.HalfSplit(reverse=True))),
    "AffineCoupling/context": ((4,), lambda dt: bijectors.AffineCoupling(
        mlp(4, 2, 3)(dt), context=tf.constant(np.tile(CONTEXT, (6, 1)).reshape(6, 3), dt))),
    "AffineCoupling/channels": ((4, 4, 4), lambda dt: bijectors.AffineCoupling(
        convnet(4, (4, 4, 2))(dt), event_ndims=3)),
    "AffineCoupling/checkerboard": ((4, 4, 2), lambda dt: bijectors.AffineCoupling(
        convnet(4, (4, 4, 2))(dt), bijectors.Checkerboard(1), event_ndims=3)),
    "AffineCoupling/sigmoid": ((4, 4, 4), lambda dt: bijectors.AffineCoupling(
        convnet(4, (4, 4, 2))(dt), event_ndims=3, scale="sigmoid")),
    "AdditiveCoupling": ((4,), lambda dt: bijectors.AdditiveCoupling(mlp(2, 2)(dt))),
    "AdditiveCoupling/checkerboard": ((4, 4, 2), lambda dt: bijectors.AdditiveCoupling(
        convnet(2, (4, 4, 2))(dt), bijectors.Checkerboard(0), event_ndims=3)),
    "PReLUCoupling": ((4,), lambda dt: bijectors.PReLUCoupling(mlp(4, 2)(dt))),
    "PReLUCoupling/no_shift": ((4,), lambda dt: bijectors.PReLUCoupling(
        mlp(2, 2)(dt), with_shift=False)),
    "PReLUCoupling/channels": ((4, 4, 4), lambda dt: bijectors.PReLUCoupling(
        convnet(4, (4, 4, 2))(dt), event_ndims=3)),
    "Squeeze": ((4, 6, 2), lambda dt: bijectors.Squeeze()),
    "FactorOut/prior": ((4, 4, 4), lambda dt: bijectors.FactorOut(
        bijectors.Invertible1x1Conv(*lu_params(2, dt)), convnet(4, (4, 4, 2))(dt))),
    "FactorOut/plain": ((4, 4, 4), lambda dt: bijectors.FactorOut(
        bijectors.ActNorm(tf.constant(rand(2), dt), tf.constant(rand(2), dt), event_ndims=3))),
    "FactorOut/multiscale": ((4, 4, 2), lambda dt: tfb.Chain([
        tfb.Invert(bijectors.Squeeze()),
        bijectors.Invertible1x1Conv(*lu_params(8, dt)),
        bijectors.FactorOut(tfb.Chain([
            tfb.Invert(bijectors.Squeeze()),
            bijectors.AffineCoupling(convnet(16, (1, 1, 8))(dt), event_ndims=3),
            bijectors.Squeeze()]), convnet(8, (2, 2, 4))(dt)),
        bijectors.Squeeze()])),
    # TFP's own bijectors, alone and mixed with ours: elementwise log-dets sum over the event.
    "tfp/SinhArcsinh": ((3,), lambda dt: tfb.SinhArcsinh(tf.constant(0.3, dt), tf.constant(1.2, dt))),
    "tfp/Scale": ((3,), lambda dt: tfb.Scale(tf.constant([0.5, 2.0, 3.0], dt))),
    "tfp/Chain": ((4,), lambda dt: tfb.Chain([
        tfb.SinhArcsinh(tf.constant(0.2, dt), tf.constant(0.8, dt)),
        bijectors.AffineCoupling(mlp(4, 2)(dt)),
        tfb.Scale(tf.constant([0.5, 2.0, 1.5, 0.7], dt)),
        bijectors.LULinear(*lu_params(4, dt))])),
    "Dequantize": ((2, 2, 1), lambda dt: layers.Dequantize(17, dtype=dt).bijector()),
    "OrthogonalMixing": ((3, 5), lambda dt: bijectors.OrthogonalMixing(
        bijectors.orthogonal_mixing.random_orthogonal(5, seed=1).astype(dt.as_numpy_dtype))),
    "AffineCoupling/token_checkerboard": ((4, 3), lambda dt: bijectors.AffineCoupling(
        conditioner(lambda d: ViT(6, 8, 1, 2, dtype=d), dt, (2, 3)),
        bijectors.TokenCheckerboard((2, 2), 1), event_ndims=2)),
    "AdditiveCoupling/token_stripes": ((6, 2), lambda dt: bijectors.AdditiveCoupling(
        conditioner(lambda d: ViT(2, 8, 1, 2, dtype=d), dt, (3, 2)),
        bijectors.TokenStripes((3, 2), axis=1, parity=0), event_ndims=2)),
    "Patchify/chain": ((4, 6, 2), lambda dt: tfb.Chain([
        tfb.Invert(bijectors.Patchify((4, 6, 2), 2)),
        bijectors.OrthogonalMixing(
            bijectors.orthogonal_mixing.random_orthogonal(8, seed=2).astype(dt.as_numpy_dtype)),
        bijectors.Patchify((4, 6, 2), 2)])),
    # bound 1: a third of the standard-normal inputs fall outside [-B, B] (the identity)
    "SplineCoupling": ((5,), lambda dt: bijectors.SplineCoupling(
        mlp(69, 2)(dt), num_bins=8, bound=1.0)),
    # Outputs scaled down: a random ConvNet's are large, and a spline with extreme bins is
    # ill-conditioned in float32 (the round trip loses ulp(y) / g'(x)).
    "SplineCoupling/checkerboard": ((4, 4, 2), lambda dt: bijectors.SplineCoupling(
        lambda x_a, net=convnet(22, (4, 4, 2))(dt): 0.3 * net(x_a), bijectors.Checkerboard(1),
        event_ndims=3, num_bins=4, bound=1.5)),
    "MaskedAutoregressive/affine": ((4,), lambda dt: bijectors.MaskedAutoregressive(
        conditioner(lambda d: MADE(2, (16, 16), dtype=d), dt, (4,)))),
    # The affine map after the spline (25 = 2 + 23 params per entry); the plain spline is
    # the layer registry's.
    "MaskedAutoregressive/affine_spline_context": ((4,), lambda dt: bijectors.MaskedAutoregressive(
        conditioner(lambda d: MADE(25, (16, 16), "random", seed=3, dtype=d), dt, (4,), (3,)),
        bijectors.SplineTransform(8, 1.5, affine=True),
        context=tf.constant(np.tile(CONTEXT, (6, 1)), dt))),
    "TransformerAutoregressive/reverse": ((3, 2), lambda dt: bijectors.TransformerAutoregressive(
        conditioner(lambda d: CausalTransformer(4, width=8, depth=1, num_heads=2, dtype=d), dt,
                    (3, 2)), reverse=True)),
    "MaskedAutoregressive/iaf": ((3,), lambda dt: bijectors.MaskedAutoregressive(
        conditioner(lambda d: MADE(2, (16,), "reversed", dtype=d), dt, (3,)),
        inverse_autoregressive=True)),
}


ABSTRACT = {"Coupling", "FlowBijector", "Linear"}  # templates, checked through subclasses


def test_every_public_bijector_is_in_the_registry():
    public = {name for name in bijectors.__all__ if isinstance(getattr(bijectors, name), type)
              and issubclass(getattr(bijectors, name), tfp.bijectors.Bijector)}
    assert public - ABSTRACT - {key.split("/")[0] for key in REGISTRY} == set()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_bijector_passes_checker(name):
    event_shape, make = REGISTRY[name]
    # Coupling conditioners see batches of 6 = 2 x 3; the context is tiled to match.
    batch_shape = (6,) if name == "AffineCoupling/context" else (2, 3)
    check_bijector(make, event_shape, batch_shape=batch_shape)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_copy_rebuilds_the_same_map(name):
    """TFP rebuilds bijectors from ``parameters`` (``copy``, batch slicing, composites)."""
    event_shape, make = REGISTRY[name]
    bijector = make(tf.float64)
    batch_shape = (6,) if name == "AffineCoupling/context" else (2, 3)
    z = tf.constant(RNG.standard_normal(batch_shape + event_shape), tf.float64)
    copy = bijector.copy()
    ndims = len(event_shape)
    x = bijector.forward(z)
    np.testing.assert_allclose(copy.forward(z), x, rtol=1e-12)
    np.testing.assert_allclose(copy.inverse(tf.identity(x)), z, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(copy.forward_log_det_jacobian(z, event_ndims=ndims),
                               bijector.forward_log_det_jacobian(z, event_ndims=ndims), rtol=1e-12)


def test_copy_keeps_every_constructor_argument():
    affine = bijectors.AffineCoupling(mlp(6, 2)(tf.float32), log_scale_bound=0.5)
    assert affine.copy().parameters["log_scale_bound"] == 0.5
    z5 = tf.constant(3 * RNG.standard_normal((3, 5)), tf.float32)
    np.testing.assert_allclose(affine.copy().forward(z5), affine.forward(z5))
    prelu = bijectors.PReLUCoupling(mlp(2, 2)(tf.float32), with_shift=False, log_slope_bound=1.0)
    z = tf.constant(RNG.standard_normal((3, 4)), tf.float32)
    np.testing.assert_allclose(prelu.copy().forward(z), prelu.forward(z))


class WrongInverse(bijectors.AffineCoupling):
    def inverse_b(self, y_b, params):
        x_b, log_det = super().inverse_b(y_b, params)
        return x_b * 1.001, log_det


class WrongLogDet(bijectors.AffineCoupling):
    def forward_b(self, x_b, params):
        y_b, log_det = super().forward_b(x_b, params)
        return y_b, log_det * 1.01


@pytest.mark.parametrize("broken, message", [(WrongInverse, "round trip|!= z|!= x"),
                                             (WrongLogDet, "log-det|fldj")])
def test_checker_catches_wrong_bijectors(broken, message):
    with pytest.raises(AssertionError, match=message):
        check_bijector(lambda dt: broken(mlp(6, 2)(dt)), (5,))


def test_lu_forms_no_inverse_or_determinant():
    bijector = bijectors.LULinear(*lu_params(6, tf.float32))
    graph = tf.function(lambda x: (bijector.forward(x), bijector.inverse(x),
                                   bijector.inverse_log_det_jacobian(x, event_ndims=1))
                        ).get_concrete_function(tf.TensorSpec([None, 6])).graph
    ops = {op.type for op in graph.get_operations()}
    assert "MatrixTriangularSolve" in ops  # the sampling direction solves
    assert ops & {"MatMul", "BatchMatMulV2", "BatchMatMulV3"}  # the normalizing one multiplies
    assert not ops & {"MatrixInverse", "MatrixDeterminant", "LogMatrixDeterminant",
                      "MatrixSolve"}, ops


@pytest.mark.parametrize("make, x, message", [
    (lambda: bijectors.LULinear(*lu_params(3, tf.float32)), np.zeros((2, 4), np.float32),
     r"expected event shape \(3,\)"),
    (lambda: bijectors.LULinear(*lu_params(3, tf.float32)), tf.zeros((2, 3), tf.int32),
     "requested dtype float32 for Tensor with dtype int32"),
    (lambda: bijectors.Squeeze(), tf.zeros((1, 4, 4, 1), tf.int32),
     "expected a floating-point tensor"),
    (lambda: bijectors.Squeeze(), np.zeros((1, 3, 4, 1), np.float32), "even height and width"),
    (lambda: bijectors.Squeeze(), np.zeros((4, 4), np.float32), r"images \[..., H, W, C\]"),
    (lambda: bijectors.AffineCoupling(lambda x: tf.zeros([tf.shape(x)[0], 3])),
     np.zeros((2, 4), np.float32), r"expected the conditioner to return shape \(2,\) \+ \(4,\)"),
])
def test_bad_input_is_a_clear_value_error(make, x, message):
    with pytest.raises(ValueError, match=message):
        make().forward(x)


def test_bad_parameters_fail_at_construction():
    with pytest.raises(ValueError, match="expected lower of shape"):
        bijectors.LULinear([0, 1], np.zeros((3, 3)), np.zeros((2, 2)), np.zeros(2), np.ones(2),
                           np.zeros(2))
    with pytest.raises(ValueError, match="expected a callable conditioner"):
        bijectors.AffineCoupling("not a network")
    with pytest.raises(ValueError, match="expected parity 0 or 1"):
        bijectors.Checkerboard(2)
