"""TarFlow: the causal Transformer, the autoregressive block, noise and denoising, the flow."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows import bijectors, layers
from tfp_flows.conditioners import CausalTransformer
from tfp_flows.models import denoise
from tfp_flows.testing import randomize_weights

SHAPE = (4, 4, 1)  # patches of 2: 4 tokens of 4 values


def tiny(**kwargs):
    settings = dict(num_blocks=2, layers_per_block=1, patch_size=2, width=16, num_heads=2,
                    num_values=17, noise_std=0.02, mixing=True)  # the option, not the default
    return tfp_flows.TarFlow(SHAPE, **{**settings, **kwargs})


def pixels(n, seed=0):
    return np.random.default_rng(seed).integers(0, 17, (n, *SHAPE)).astype(np.int32)


def blocks(flow):
    return [layer for layer in flow.flow_layers
            if isinstance(layer, layers.TransformerAutoregressive)]


# -- the conditioner and the block --------------------------------------------------------

def test_causal_transformer_sees_only_earlier_tokens_and_its_cache_is_the_same_map():
    net = CausalTransformer(6, width=16, depth=2, num_heads=2, dropout=0.5)  # while training
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((3, 5, 3)), tf.float32)
    context = tf.constant(rng.standard_normal((3, 2)), tf.float32)
    net(x, context)
    randomize_weights(net, 0)  # the head starts at zero: randomise it, or nothing can change
    out = net(x, context).numpy()
    for t in range(5):
        changed = x.numpy().copy()
        changed[:, t] += 1.0
        moved = net(changed, context).numpy()
        # Outputs at positions <= t are the parameters of tokens <= t: untouched by token t.
        np.testing.assert_array_equal(moved[:, :t + 1], out[:, :t + 1])
        if t < 4:
            assert np.abs(moved[:, t + 1:] - out[:, t + 1:]).max() > 1e-3, t
    cache, previous = net.initial_cache(3), tf.zeros((3, 3))
    for t in range(5):
        theta, cache = net.step(previous, tf.constant(t), cache, context=context)
        np.testing.assert_allclose(theta, out[:, t], rtol=1e-5, atol=1e-5)
        previous = x[:, t]
    assert not np.allclose(net(x, context + 1.0), out)
    assert np.abs(net(x, context, training=True) - out).max() > 1e-3
    block = layers.TransformerAutoregressive(width=16, depth=1, num_heads=2, dropout=0.5)
    block(x)
    randomize_weights(block, 1)
    np.testing.assert_array_equal(block(x)[0], block(x)[0])
    assert np.abs(block(x, training=True)[0] - block(x)[0]).max() > 1e-3
    with pytest.raises(ValueError, match="divisible by num_heads"):
        CausalTransformer(4, width=10, num_heads=4)


def test_block_forward_is_autoregressive_with_the_paper_log_det():
    """z_t = (x_t - mu_t) exp(-alpha_t), log-det -sum(alpha), reversal by token order."""
    net = CausalTransformer(2 * 3, width=8, depth=1, num_heads=2)
    x = tf.constant(np.random.default_rng(2).standard_normal((2, 4, 3)), tf.float32)
    net(x)
    randomize_weights(net, 1)
    bound = 3.0
    for reverse in (False, True):
        bijector = bijectors.TransformerAutoregressive(net, reverse=reverse)
        z, log_det = bijector.inverse_and_log_det(x)
        ordered = x[:, ::-1] if reverse else x
        shift, raw = np.split(net(ordered).numpy(), 2, axis=-1)
        alpha = bound * np.tanh(raw / bound)
        expected = (ordered.numpy() - shift) * np.exp(-alpha)
        np.testing.assert_allclose(z, expected[:, ::-1] if reverse else expected, rtol=1e-5,
                                   atol=1e-5)
        np.testing.assert_allclose(log_det, -alpha.sum(axis=(1, 2)), rtol=1e-5, atol=1e-5)
        # Token order (reversed or not): the first token's z ignores every other token.
        first = 3 if reverse else 0
        nudged = x.numpy().copy()
        nudged[:, 3 - first] += 1.0
        np.testing.assert_array_equal(bijector.inverse(nudged)[:, first], z[:, first])


def test_gaussian_noise_only_while_training():
    layer = layers.GaussianNoise(0.1, seed=3)
    x = tf.zeros((4000, 4))
    y, log_det = layer(x, training=True)
    assert abs(float(tf.math.reduce_std(y)) - 0.1) < 0.005
    assert float(tf.reduce_max(tf.abs(log_det))) == 0.0
    assert not np.allclose(layer(x, training=True)[0], y)  # fresh noise each step
    np.testing.assert_array_equal(layer(x + 1.0, training=False)[0], x + 1.0)
    with pytest.raises(ValueError, match="noise_std >= 0"):
        layers.GaussianNoise(-1.0)


def test_denoising_is_tweedies_step_in_data_units():
    """At initialisation (zero heads) a TarFlow is a rotation of v = (k + u)/n - 1/2, so
    log p(x) = log N(v; 0, I) - D log n and x + s^2 grad log p(x) = x - sigma^2 n v."""
    flow = tiny(noise_std=0.1)
    assert denoise.noise_std(flow) == pytest.approx(0.1 * 17)
    x = tf.constant(np.random.default_rng(4).uniform(0, 17, (3, *SHAPE)), tf.float32)
    expected = x - 0.1 ** 2 * 17 * (x / 17 - 0.5)
    np.testing.assert_allclose(denoise.graph_denoise(flow, x), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="GaussianNoise"):
        denoise.noise_std(tiny(noise_std=0.0))


# -- the flow ---------------------------------------------------------------------------------
# One tiny class-conditional flow of one block, trained once per test process, serves every
# test of the whole flow: so the labels travel through training, the cache, saving and
# serving. (The block's reversed order: the bijector test above and tests/test_layers.py.)

LABELS = np.arange(64) % 3


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    flow = tiny(num_blocks=1, num_classes=3, label_dropout=0.25)
    x = pixels(64)
    # Zero heads: the untrained flow (a rotation) is N(0, I) on v = (k + 1/2) / 17 - 1/2.
    v = (x + 0.5) / 17 - 0.5
    before = float(np.mean(np.sum(-0.5 * v ** 2 - 0.5 * np.log(2 * np.pi) - np.log(17),
                                  axis=(1, 2, 3))))
    flow.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=False, steps_per_execution=8)
    history = flow.fit(x, LABELS, batch_size=16, epochs=2, verbose=0)
    return flow, x, before, history


def test_tarflow_trains_round_trips_and_reads_its_labels(trained):
    flow, x, before, history = trained
    kinds = [type(layer).__name__ for layer in flow.flow_layers]
    assert kinds == ["Dequantize", "GaussianNoise", "Patchify", "OrthogonalMixing",
                     "TransformerAutoregressive", "Unpatchify"], kinds
    three = tiny(num_blocks=3)
    assert [type(layer).__name__ for layer in three.flow_layers[3:-1]] == \
        ["OrthogonalMixing", "TransformerAutoregressive"] * 3
    assert [block.reverse for block in blocks(three)] == [False, True, False]
    assert not any(isinstance(layer, layers.OrthogonalMixing)
                   for layer in tiny(mixing=False).flow_layers)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    score = flow.score(x, LABELS).numpy()
    assert float(np.mean(score)) > before + 2.0
    assert np.abs(score - flow.score(x, (LABELS + 1) % 3)).max() > 1e-3  # the label is read
    np.testing.assert_allclose(score[:8], flow.distribution(LABELS[:8]).log_prob(x[:8] + 0.5),
                               rtol=1e-5, atol=1e-3)
    z = flow.encode(x[:8], LABELS[:8])
    np.testing.assert_allclose(flow.decode(z, LABELS[:8]), x[:8] + 0.5, atol=1e-3)


def test_cached_sampling_equals_uncached(trained):
    """Both run T tokens; the cache must give what re-running the whole Transformer does."""
    flow = trained[0]
    z = tf.random.stateless_normal((6, *flow.latent_shape), seed=(1, 2))
    labels = tf.constant(LABELS[:6], tf.int32)
    decoded = {}
    try:
        for cached in (True, False):
            for block in blocks(flow):
                block.use_cache = cached
            decoded[cached] = flow.graph_decode(z, labels).numpy()
    finally:
        for block in blocks(flow):
            block.use_cache = True
    np.testing.assert_allclose(decoded[True], decoded[False], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(flow.bijector(labels).inverse(tf.identity(decoded[True])), z,
                               rtol=1e-4, atol=1e-4)


def test_guidance_is_the_combined_map_of_label_and_null_label(trained):
    """(mu, alpha) = (1 + w) (mu, alpha)_c - w (mu, alpha)_u, one invertible map, cached
    as uncached; w = 0 is plain sampling; training drops labels at the given rate."""
    flow, x, _, _ = trained
    from tfp_flows.bijectors.transformer_autoregressive import Guidance

    labels = tf.constant(LABELS[:6], tf.int32)
    dropped = flow.embed_context(tf.zeros([2000], tf.int32), training=True)
    null = flow.embed_context(tf.fill([6], 3))
    rate = np.mean(np.all(np.isclose(dropped, null[:1]), axis=1))
    assert 0.2 < rate < 0.3, rate
    block = blocks(flow)[0]
    guided = Guidance(flow.embed_context(labels), null, tf.constant(1.5))
    tokens = tf.random.stateless_normal((6, 4, 4), seed=(5, 6))
    z, log_det = block.bijector(guided).inverse_and_log_det(tokens)
    # By hand: the conditioner given each label and given the null label.
    shift, raw = {}, {}
    for name, context in (("c", guided.context), ("u", null)):
        shift[name], raw[name] = tf.split(block.conditioner(tokens, context), 2, axis=-1)
    alpha_c, alpha_u = (3.0 * tf.tanh(raw[k] / 3.0) for k in "cu")
    mu = 2.5 * shift["c"] - 1.5 * shift["u"]
    alpha = 2.5 * alpha_c - 1.5 * alpha_u
    np.testing.assert_allclose(z, (tokens - mu) * tf.exp(-alpha), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(log_det, -tf.reduce_sum(alpha, [1, 2]), rtol=1e-5, atol=1e-4)
    decoded = {}
    try:
        for cached in (True, False):
            block.use_cache = cached
            decoded[cached] = block.bijector(guided).forward(z).numpy()
    finally:
        block.use_cache = True
    np.testing.assert_allclose(decoded[True], tokens, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(decoded[False], tokens, rtol=1e-4, atol=1e-4)

    plain = flow.sample(4, context=1, seed=3)
    np.testing.assert_array_equal(flow.sample(4, context=1, seed=3, guidance=0.0), plain)
    strong = flow.sample(4, context=1, seed=3, guidance=2.0)
    assert strong.shape == plain.shape and np.abs(strong - plain).max() > 1e-3
    per_label = flow.sample(4, context=np.array([1, 2]), seed=3, guidance=2.0)
    assert per_label.shape == (2, 4, *SHAPE)
    with pytest.raises(ValueError, match="guidance needs a class-label flow"):
        flow.sample(2, guidance=1.0)
    with pytest.raises(ValueError, match="label_dropout"):
        tiny(num_blocks=1, label_dropout=0.1)
    with pytest.raises(ValueError, match="label_dropout < 1"):
        tiny(num_blocks=1, num_classes=3, label_dropout=1.0)


def test_tarflow_saves_loads_and_serves_the_sampling_signatures(trained, tmp_path):
    flow, x, _, _ = trained
    flow.save(tmp_path / "tarflow.keras")
    loaded = tfp_flows.load_flow(tmp_path / "tarflow.keras")
    assert [block.use_cache for block in blocks(loaded)] == [True]
    assert loaded.label_dropout == 0.25
    np.testing.assert_allclose(loaded.sample(3, context=1, seed=2, guidance=1.5),
                               flow.sample(3, context=1, seed=2, guidance=1.5), atol=1e-4)
    # The score reads every weight (the sampling path reads the same ones).
    score = flow.score(x[:8], LABELS[:8])
    np.testing.assert_allclose(loaded.score(x[:8], LABELS[:8]), score, rtol=1e-6, atol=1e-5)

    # The sampling signatures, served (stock ops only: tests/test_jet.py loads a served
    # flow where tfp_flows cannot be imported; this graph adds a while loop and a gradient).
    model = tf.saved_model.load(str(flow.export(tmp_path / "served")))
    scalars = dict(num_samples=tf.constant(3), seed=tf.constant(4, tf.int64),
                   temperature=tf.constant(1.0), context=tf.constant(2, tf.int64))
    served = {name: model.signatures[name](**scalars)["x"].numpy()
              for name in ("sample", "sample_denoised")}
    guided = model.signatures["sample_guided"](**scalars, guidance=tf.constant(1.5))["x"]
    np.testing.assert_allclose(guided, flow.sample(3, context=2, seed=4, guidance=1.5),
                               atol=1e-4)
    np.testing.assert_allclose(served["sample"], flow.sample(3, context=2, seed=4), atol=1e-4)
    # One score step from the served sample, computed eagerly here.
    expected = np.clip(denoise.graph_denoise(flow, served["sample"], tf.fill([3], 2)), 0, 17)
    np.testing.assert_allclose(served["sample_denoised"], expected, atol=1e-4)
    assert 0 < np.abs(served["sample_denoised"] - served["sample"]).max() < 17
    served_log_prob = model.signatures["log_prob"](x=tf.constant(x[:8], tf.float32),
                                                   context=tf.constant(LABELS[:8], tf.int64))
    np.testing.assert_allclose(served_log_prob["score"], score, rtol=1e-5, atol=1e-4)


def test_mixed_bfloat16_trains_and_samples():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        mixed = tiny()
        for layer in mixed.flow_layers:
            randomize_weights(layer, 0, 0.1)
        with tf.GradientTape() as tape:
            nll = -tf.reduce_mean(mixed(pixels(8), training=True))
        gradients = tape.gradient(nll, mixed.trainable_variables)
        sample = mixed.graph_decode(tf.random.stateless_normal((2, *SHAPE), seed=(0, 1)))
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert all(b.conditioner.compute_dtype == "bfloat16" for b in blocks(mixed))
    assert all(layer.compute_dtype == "float32" for layer in mixed.flow_layers)
    assert np.isfinite(float(nll)) and all(g is not None for g in gradients)
    assert sample.dtype == tf.float32 and np.all(np.isfinite(sample))


def test_inverse_backprop_gives_the_stored_gradients():
    """The block's input is recomputed by its cached sampling pass; gradients agree."""
    flow = tiny(num_values=None, noise_std=0.0)
    for layer in flow.flow_layers:
        randomize_weights(layer, 1, 0.1)
    x = tf.constant(np.random.default_rng(5).standard_normal((6, *SHAPE)), tf.float32)
    results = {}
    for mode in ("store", "inverse"):
        flow.compile(optimizer=keras.optimizers.SGD(0.1), backprop=mode)
        results[mode] = flow.nll_and_gradients(x)
    np.testing.assert_allclose(results["store"][0], results["inverse"][0], rtol=1e-6)
    for variable, a, b in zip(flow.trainable_variables, results["store"][1],
                              results["inverse"][1]):
        a, b = np.asarray(tf.convert_to_tensor(a)), np.asarray(tf.convert_to_tensor(b))
        scale = max(np.linalg.norm(a), 1e-3)
        assert np.linalg.norm(a - b) / scale < 1e-4, variable.path


@pytest.mark.parametrize("kwargs, message", [
    (dict(patch_size=3), "divides the image sides"),
    (dict(num_blocks=0), "num_blocks >= 1"),
    (dict(width=10, num_heads=4), "divisible by num_heads"),
    (dict(noise_std=-0.1), "noise_std >= 0"),
    (dict(log_scale_bound=0.0), "log_scale_bound > 0"),
])
def test_tarflow_bad_arguments_are_value_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tiny(**kwargs)


def test_cli_builds_a_tarflow():
    import argparse

    from tfp_flows.cli import build_model

    args = argparse.Namespace(model="tarflow", num_steps=2, hidden=16, coupling="affine",
                              seed=0, num_levels=2)
    flow = build_model(np.zeros((4, 8, 8, 1), np.int32), args, 17)
    assert flow.name == "tarflow" and flow.latent_shape == (8, 8, 1)
    assert len(blocks(flow)) == 2 and blocks(flow)[0].width == 16
