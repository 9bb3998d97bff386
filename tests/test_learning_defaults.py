"""The defaults that learn (issue 13, ``docs/ablation.md``): what the builders and the
conditioners choose when a user passes nothing, and that old saved files keep theirs."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows import bijectors, layers
from tfp_flows.conditioners import MADE, MLP


def kinds(flow):
    return [type(layer).__name__ for layer in flow.layers_tree()]


@pytest.mark.parametrize("build, actnorm", [
    (lambda: tfp_flows.RealNVP(2, num_steps=2), False),             # reversal + affine
    (lambda: tfp_flows.RealNVP(4, num_steps=2), True),              # LU mixing
    (lambda: tfp_flows.RealNVP(4, num_steps=2, linear="lu_reversal"), True),
    (lambda: tfp_flows.RealNVP(2, num_steps=2, coupling="additive"), True),
    (lambda: tfp_flows.RealNVP(2, num_steps=2, coupling="prelu"), True),
    (lambda: tfp_flows.RealNVP(2, num_steps=2, actnorm=True), True),  # explicit wins
    (lambda: tfp_flows.MAF(2, num_steps=2), False),
    (lambda: tfp_flows.MAF(3, num_steps=2), True),
])
def test_actnorm_default_follows_the_mixing(build, actnorm):
    assert ("ActNorm" in kinds(build())) == actnorm


def test_lu_from_the_reversal_is_the_reversal_flow_until_trained():
    """``linear="lu_reversal"``: the flow of ``linear="reverse"`` (same couplings, same
    halves) with learned LU maps in place of the fixed reversals."""
    x = np.random.default_rng(0).normal(size=(8, 5)).astype(np.float32)
    context = np.random.default_rng(1).normal(size=(8, 3)).astype(np.float32)
    flows = [tfp_flows.RealNVP(5, num_steps=3, hidden_units=(8,), linear=linear, actnorm=True,
                               context_shape=(3,)) for linear in ("reverse", "lu_reversal")]
    assert kinds(flows[1]).count("LULinear") == 3 and "Permute" not in kinds(flows[1])
    assert all(layer.start == "reversal" for layer in flows[1].layers_tree()
               if isinstance(layer, layers.LULinear))
    for flow in flows:
        flow.log_prob(x, context)  # builds
    for reference, layer in zip(*(flow.layers_tree() for flow in flows)):
        if isinstance(reference, (layers.AffineCoupling, layers.ActNorm)):
            for weight in reference.weights:
                weight.assign(np.random.default_rng(2).normal(0.0, 0.3, weight.shape))
            layer.set_weights(reference.get_weights())
    want = flows[0].log_prob(x, context).numpy()
    np.testing.assert_allclose(flows[1].log_prob(x, context), want, rtol=1e-5, atol=1e-5)
    assert np.std(want) > 0.1  # the couplings are not the identity
    with pytest.raises(ValueError, match=r"expected linear in \['auto', 'lu', 'lu_reversal'"):
        tfp_flows.RealNVP(5, linear="rotation")


def test_realnvp_bounds_affine_log_scales_at_three_and_glow_uses_sigmoid_scales():
    flow = tfp_flows.RealNVP(2, num_steps=2)
    couplings = [layer for layer in flow.layers_tree() if isinstance(layer, layers.AffineCoupling)]
    assert couplings and all(c.log_scale_bound == 3.0 and c.scale == "tanh" for c in couplings)
    glow = tfp_flows.Glow((4, 4, 1), num_levels=1, num_steps=2, hidden_channels=4, num_values=4)
    couplings = [layer for layer in glow.layers_tree() if isinstance(layer, layers.AffineCoupling)]
    assert couplings and all(c.scale == "sigmoid" for c in couplings)


def test_sigmoid_scale_only_contracts_towards_the_latent():
    transform = bijectors.AffineTransform(scale="sigmoid")
    y = tf.constant([[0.5, -2.0, 3.0]])
    shift, raw = tf.constant([[0.1, 0.0, -0.3]]), tf.constant([[-9.0, 0.0, 9.0]])
    z, log_det = transform.inverse(y, (shift, raw))
    np.testing.assert_allclose(z, (y - shift) * tf.sigmoid(raw + 2.0), rtol=1e-6)
    np.testing.assert_allclose(log_det, tf.math.log_sigmoid(raw + 2.0), rtol=1e-6)
    assert np.all(log_det.numpy() < 0)                       # a contraction, by any factor
    back, forward_log_det = transform.forward(z, (shift, raw))
    np.testing.assert_allclose(back, y, rtol=1e-5)
    np.testing.assert_allclose(forward_log_det, -log_det, rtol=1e-6)
    with pytest.raises(ValueError, match="expected scale in"):
        bijectors.AffineTransform(scale="exp")


def test_mlp_starts_with_fan_in_uniform_kernels_and_biases_and_a_zero_last_layer():
    keras.utils.set_random_seed(0)
    mlp = MLP(3, (64, 32))
    mlp.build((None, 1))
    assert mlp.activation == "relu"
    for layer, fan_in in zip(mlp.hidden, (1, 64)):
        bound = 1.0 / math.sqrt(fan_in)
        for weight in (layer.kernel.numpy(), layer.bias.numpy()):
            assert np.all(np.abs(weight) <= bound) and weight.std() > bound / 3
    # every first-layer unit has its kink somewhere else (zero biases put all at 0)
    assert len(np.unique(mlp.hidden[0].bias.numpy())) == 64
    assert not np.any(mlp.out.kernel.numpy()) and not np.any(mlp.out.bias.numpy())
    restored = MLP.from_config(mlp.get_config())
    assert restored.get_config() == mlp.get_config()


def test_made_initialisation_is_fan_in_uniform_or_tfps():
    keras.utils.set_random_seed(0)
    made = MADE(2, (16,))
    made.build((None, 4))
    assert np.all(np.abs(made.biases[0].numpy()) <= 0.5) and np.any(made.biases[0].numpy())
    assert not np.any(made.kernels[-1].numpy())
    glorot = MADE(2, (16,), initializer="glorot_uniform")
    glorot.build((None, 4))
    assert not np.any(glorot.biases[0].numpy())


def test_couplings_saved_before_relu_load_with_tanh():
    old = layers.AffineCoupling(hidden_units=(8,)).get_config()
    del old["activation"]                                   # files written before the key
    assert layers.AffineCoupling.from_config(old).activation == "tanh"
    assert layers.AffineCoupling().activation == "relu"
    assert layers.PReLUCoupling().activation == "tanh"
