"""Jet: patch tokens, token partitions, orthogonal mixing, the ViT conditioner and the flow."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows import bijectors, layers
from tfp_flows.bijectors.orthogonal_mixing import random_orthogonal
from tfp_flows.bijectors.partitions import partition_from_config
from tfp_flows.conditioners import ViT
from tfp_flows.layers.base import LayerChain, build_sequence
from tfp_flows.models.builders import COUPLINGS
from tfp_flows.models.jet import jet_layers
from tfp_flows.testing import check_bijector, randomize_weights


def digits_like(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 17, (n, 8, 8, 1)).astype(np.int32), rng.integers(0, 3, n).astype(np.int32)


def tiny_jet(**kwargs):
    settings = dict(num_couplings=3, patch_size=2, width=16, depth=1, num_heads=2, num_values=17)
    return tfp_flows.Jet((8, 8, 1), **{**settings, **kwargs})


# -- the pieces -------------------------------------------------------------------------------

def test_patchify_is_the_vit_token_layout():
    x = np.arange(2 * 4 * 6 * 3, dtype=np.float32).reshape(2, 4, 6, 3)
    patchify = bijectors.Patchify((4, 6, 3), 2)
    tokens = patchify.forward(x).numpy()
    # einops "b (h hp) (w wp) c -> b (h w) (hp wp c)"
    expected = x.reshape(2, 2, 2, 3, 2, 3).transpose(0, 1, 3, 2, 4, 5).reshape(2, 6, 12)
    np.testing.assert_array_equal(tokens, expected)
    np.testing.assert_array_equal(patchify.inverse(tf.identity(tokens)), x)
    assert patchify.forward_event_shape((4, 6, 3)) == (6, 12)
    assert patchify.inverse_event_shape((6, 12)) == (4, 6, 3)
    layer = layers.Patchify(2)
    z, log_det = layer(x)
    np.testing.assert_array_equal(z, expected)
    assert float(tf.reduce_sum(log_det)) == 0.0
    assert layer.compute_output_shape((None, 4, 6, 3)) == (None, 6, 12)
    with pytest.raises(ValueError, match="divides the image sides"):
        bijectors.Patchify((4, 6, 3), 4)
    with pytest.raises(ValueError, match="expected images whose last axes"):
        patchify.forward(np.zeros((1, 6, 4, 3), np.float32))


@pytest.mark.parametrize("partition, kept", [
    (bijectors.TokenCheckerboard((2, 4), 0), [0, 2, 5, 7]),
    (bijectors.TokenCheckerboard((2, 4), 1), [1, 3, 4, 6]),
    (bijectors.TokenStripes((2, 4), axis=0, parity=1), [4, 5, 6, 7]),
    (bijectors.TokenStripes((2, 4), axis=1, parity=0), [0, 2, 4, 6]),
])
def test_token_partitions_split_merge_and_serialise(partition, kept):
    x = tf.constant(np.random.default_rng(0).standard_normal((3, 8, 5)), tf.float32)
    x_a, x_b = partition.split(x)
    np.testing.assert_array_equal(x_a, tf.gather(x, kept, axis=1))
    assert x_a.shape == x_b.shape == (3, 4, 5) and partition.shapes((8, 5)) == ((4, 5), (4, 5))
    np.testing.assert_array_equal(partition.merge(x_a, x_b), x)
    changed = sorted(set(range(8)) - set(kept))
    merged = partition.merge(x_a, x_b + 1.0).numpy() - x.numpy()
    np.testing.assert_allclose(merged[:, changed], 1.0, rtol=1e-6)
    np.testing.assert_array_equal(merged[:, kept], 0.0)
    again = partition_from_config(partition.get_config())
    assert type(again) is type(partition) and again.get_config() == partition.get_config()
    np.testing.assert_array_equal(again.kept, partition.kept)


def test_token_partitions_reject_bad_grids():
    with pytest.raises(ValueError, match="halves the tokens"):
        bijectors.TokenCheckerboard((3, 3))
    with pytest.raises(ValueError, match="halves the tokens"):
        bijectors.TokenStripes((3, 2), axis=0)
    with pytest.raises(ValueError, match="expected axis 0"):
        bijectors.TokenStripes((2, 2), axis=2)
    with pytest.raises(ValueError, match="expected parity 0 or 1"):
        bijectors.TokenCheckerboard((2, 2), parity=3)
    with pytest.raises(ValueError, match=r"expected tokens \[..., 4, D\]"):
        bijectors.TokenCheckerboard((2, 2)).split(tf.zeros((1, 6, 3)))


def test_orthogonal_mixing_is_seeded_orthogonal_and_checked():
    w = random_orthogonal(6, seed=3)
    np.testing.assert_allclose(w @ w.T, np.eye(6), atol=1e-12)
    np.testing.assert_array_equal(w, random_orthogonal(6, seed=3))
    assert not np.allclose(w, random_orthogonal(6, seed=4))
    layer = layers.OrthogonalMixing(seed=3)
    layer.build((None, 4, 6))
    np.testing.assert_allclose(layer.matrix.numpy(), w, rtol=1e-6)
    assert not layer.trainable_weights
    x = tf.constant(np.random.default_rng(1).standard_normal((2, 4, 6)), tf.float32)
    z, _ = layer(x)
    np.testing.assert_allclose(z, x.numpy() @ w.T, atol=1e-5)
    with pytest.raises(ValueError, match="expected an orthogonal matrix"):
        bijectors.OrthogonalMixing(np.eye(3) * 2.0)


def test_vit_starts_at_zero_folds_batch_axes_and_uses_the_context():
    x = tf.constant(np.random.default_rng(0).standard_normal((2, 3, 4, 5)), tf.float32)
    context = tf.constant(np.random.default_rng(1).standard_normal((2, 3, 2)), tf.float32)
    for as_token in (False, True):
        net = ViT(6, width=8, depth=2, num_heads=2, context_as_token=as_token)
        out = net(x, context)
        assert out.shape == (2, 3, 4, 6)
        np.testing.assert_array_equal(out, 0.0)  # zero-initialised head: identity couplings
        randomize_weights(net, 1)
        out = net(x, context)
        flat = net(tf.reshape(x, (6, 4, 5)), tf.reshape(context, (6, 2)))
        np.testing.assert_allclose(tf.reshape(out, (6, 4, 6)), flat, rtol=1e-5, atol=1e-5)
        assert not np.allclose(out, net(x, context + 1.0))
        compiled = tf.function(net.call, jit_compile=True)(x, context)
        np.testing.assert_allclose(compiled, out, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="divisible by num_heads"):
        ViT(4, width=10, num_heads=4)


def test_vit_follows_mixed_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        net = ViT(4, width=8, depth=1, num_heads=2)
        out = net(tf.zeros((2, 4, 3)))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert net.compute_dtype == "bfloat16" and out.dtype == tf.bfloat16
    assert all(w.dtype == "float32" for w in net.weights)


# -- the flow ---------------------------------------------------------------------------------

def test_jet_bijector_passes_checker():
    """The whole continuous Jet (patchify, mixing, a token-dimension and a checkerboard
    coupling with ViTs, unpatchify) with random weights, float32 and float64."""
    def make(dtype):
        flow_layers = jet_layers((4, 4, 2), num_couplings=2, patch_size=2, width=8, depth=1,
                                 num_heads=2, num_values=None, spatial_every=2, dtype=dtype.name)
        build_sequence(flow_layers, (None, 4, 4, 2))
        LayerChain(flow_layers).inverse_and_log_det(tf.zeros((1, 4, 4, 2), dtype))
        for seed, layer in enumerate(flow_layers):
            randomize_weights(layer, seed)
        kinds = [type(layer).__name__ for layer in flow_layers]
        assert kinds == ["Patchify", "OrthogonalMixing", "AffineCoupling", "AffineCoupling",
                         "Unpatchify"], kinds
        assert isinstance(flow_layers[3].partition, bijectors.TokenCheckerboard)
        return LayerChain(flow_layers)

    check_bijector(make, (4, 4, 2), batch_shape=(6,))  # Keras layers take one batch axis


@pytest.fixture(scope="module")
def trained_jet():
    x, _ = digits_like(256)
    keras.utils.set_random_seed(0)
    flow = tiny_jet()
    before = float(np.mean(flow.score(x)))
    flow.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=True, steps_per_execution=4)
    history = flow.fit(x, batch_size=32, epochs=2, verbose=0)
    return flow, x, before, history


def test_jet_fits_under_xla(trained_jet):
    flow, x, before, history = trained_jet
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    after = float(np.mean(flow.score(x)))
    assert after > before + 5.0, (before, after)  # nats per 64-pixel image
    np.testing.assert_allclose(flow.score(x[:8]), flow.distribution().log_prob(x[:8] + 0.5),
                               rtol=1e-5, atol=1e-3)
    samples = flow.sample(4, seed=1)
    assert samples.shape == (4, 8, 8, 1) and np.all(np.isfinite(samples))
    z = flow.encode(x[:4].astype(np.float32))
    np.testing.assert_allclose(flow.decode(z), x[:4] + 0.5, atol=1e-3)


def test_jet_saves_loads_and_serves_the_same_numbers(trained_jet, tmp_path, serve):
    flow, x, _, _ = trained_jet
    flow.save(tmp_path / "jet.keras")
    loaded = tfp_flows.load_flow(tmp_path / "jet.keras")
    np.testing.assert_allclose(loaded.score(x[:8]), flow.score(x[:8]), rtol=1e-6, atol=1e-5)
    assert [type(a) for a in loaded.flow_layers] == [type(b) for b in flow.flow_layers]

    served = serve(flow.export(tmp_path / "served"), {"log_prob.x": x[:8].astype(np.float32)})
    served = {key.split(".")[1]: value for key, value in served.items()}
    np.testing.assert_allclose(served["log_prob"], flow.log_prob(x[:8]), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(served["score"], flow.score(x[:8]), rtol=1e-5, atol=1e-4)


def test_jet_class_conditional_and_other_couplings():
    x, labels = digits_like(8)
    flow = tiny_jet(num_classes=3, coupling="prelu", spatial_every=2,
                    spatial_patterns=("rows", "checkerboard"))
    for layer in flow.flow_layers:
        randomize_weights(layer, 0)
    log_p = flow.score(x, labels)
    assert np.all(np.isfinite(log_p))
    assert not np.allclose(log_p, flow.score(x, (labels + 1) % 3))
    spatial = [layer.partition for layer in flow.flow_layers if hasattr(layer, "partition")
               and not isinstance(layer.partition, bijectors.HalfSplit)]
    assert [type(p).__name__ for p in spatial] == ["TokenStripes"]
    flow.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=False)
    history = flow.fit(x, labels, batch_size=8, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    additive = tiny_jet(coupling="additive", context_shape=(2,), context_as_token=True)
    assert np.all(np.isfinite(additive.score(x, np.zeros((8, 2), np.float32))))


def test_jet_mixed_bfloat16_smoke():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        flow = tiny_jet(num_couplings=2, spatial_every=2)
        flow.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True,
                     steps_per_execution=2)
        history = flow.fit(digits_like(64)[0], batch_size=16, epochs=1, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    vits = [layer.conditioner for layer in flow.flow_layers if hasattr(layer, "conditioner")]
    assert vits and all(v.compute_dtype == "bfloat16" for v in vits)
    assert all(layer.compute_dtype == "float32" for layer in flow.flow_layers)
    assert np.isfinite(history.history["loss"][0])
    assert np.all(np.isfinite(flow.score(digits_like(4)[0])))


@pytest.mark.parametrize("coupling", sorted(COUPLINGS))
def test_every_coupling_of_the_registry_takes_the_token_partitions(coupling):
    flow = tiny_jet(coupling=coupling)
    for seed, layer in enumerate(flow.flow_layers):
        randomize_weights(layer, seed, scale=0.1)
    x = digits_like(4)[0].astype(np.float32)
    np.testing.assert_allclose(flow.decode(flow.encode(x)), x + 0.5, atol=1e-3)
    assert np.all(np.isfinite(flow.score(x)))


@pytest.mark.parametrize("kwargs, message", [
    (dict(patch_size=3), "divides the image sides"),
    (dict(num_couplings=0), "num_couplings >= 1"),
    (dict(coupling="spiral"), "expected coupling in"),
    (dict(spatial_patterns=("zigzag",)), "expected spatial_patterns"),
    (dict(width=10, num_heads=4), "divisible by num_heads"),
    (dict(patch_size=1), "at least 2 values"),
])
def test_jet_bad_arguments_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny_jet(**kwargs)


def test_cli_builds_a_jet():
    import argparse

    from tfp_flows.cli import UsageError, build_model

    args = argparse.Namespace(model="jet", num_steps=2, hidden=16, coupling="additive", seed=0,
                              num_levels=2)
    flow = build_model(digits_like(4)[0], args, 17)
    assert flow.name == "jet" and flow.latent_shape == (8, 8, 1)
    patchify = [layer for layer in flow.flow_layers if isinstance(layer, layers.Patchify)]
    assert patchify[0].patch_size == 2
    with pytest.raises(UsageError, match="jet needs images"):
        build_model(np.zeros((4, 3), np.float32), args, None)
