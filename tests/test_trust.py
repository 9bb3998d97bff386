"""Every path to log p(x) agrees: the dequantization bound, no stale TFP results, full
``parameters``, TFP's own bijectors in our path, float64 end to end, strict inputs."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_flows
from tfp_flows import data, layers
from tfp_flows.testing import check_bijector, randomize_weights

tfb, tfd = tfp.bijectors, tfp.distributions


def small_glow(**kwargs):
    return tfp_flows.Glow((8, 8, 1), num_levels=2, num_steps=1, hidden_channels=8, num_values=17,
                          **kwargs)


@pytest.fixture(scope="module")
def glow(digits_like):
    """A small digits Glow trained a few steps (so no part of it is the identity)."""
    x, labels = digits_like(128)
    flow = small_glow(num_classes=10)
    flow.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
    flow.fit(x, labels, batch_size=32, epochs=1, verbose=0)
    return flow, x, labels


# 1. Bits/dim is the uniform-dequantization bound -------------------------------------------

def test_bits_per_dim_is_the_dequantization_bound(glow):
    flow, x, labels = glow
    x, labels = x[:16], labels[:16]
    one = flow.log_prob(x, labels, seed=3).numpy()
    u = tf.random.stateless_uniform(x.shape, seed=tf.constant([3, 0]), alg="philox")
    by_hand = flow.distribution(labels).log_prob(x.astype(np.float32) + u)
    np.testing.assert_allclose(one, by_hand, rtol=1e-5, atol=1e-4)
    # Repeatable for a seed, fresh for another.
    np.testing.assert_array_equal(flow.log_prob(x, labels, seed=3), one)
    assert not np.allclose(flow.log_prob(x, labels, seed=4), one)
    # K draws: their mean, and Flow++'s importance-weighted bound above it (Jensen).
    bound = flow.log_prob(x, labels, num_draws=8, seed=1).numpy()
    weighted = flow.log_prob(x, labels, num_draws=8, seed=1, importance_weighted=True).numpy()
    assert np.all(weighted >= bound - 1e-4)
    np.testing.assert_allclose(flow.bits_per_dim(x, labels, num_draws=8, seed=1),
                               -bound / (64 * math.log(2)), rtol=1e-6)
    # The midpoint is a score, not the bound.
    midpoint = flow.distribution(labels).log_prob(x.astype(np.float32) + 0.5)
    np.testing.assert_allclose(flow.score(x, labels), midpoint, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="num_draws >= 1"):
        flow.log_prob(x, labels, num_draws=0)


def test_evaluate_reports_the_bound_repeatably(glow):
    flow, x, labels = glow
    first = flow.evaluate(x, labels, batch_size=32, verbose=0, return_dict=True)
    second = flow.evaluate(x, labels, batch_size=32, verbose=0, return_dict=True)
    assert first == second
    midpoint = -float(np.mean(flow.score(x, labels)))
    many = -float(np.mean(flow.log_prob(x, labels, num_draws=16, seed=9)))
    # One fresh draw per example: the bound up to Monte Carlo error, not the midpoint.
    assert abs(first["loss"] - many) < 0.05 * abs(many)
    assert first["loss"] != pytest.approx(midpoint, rel=1e-4)
    np.testing.assert_allclose(first["bits_per_dim"], first["loss"] / (64 * math.log(2)), rtol=1e-6)


# 2. No stale results through TFP ----------------------------------------------------------

def test_tfp_paths_follow_the_weights_after_training():
    x_train = data.two_moons(512, seed=3)[0]
    flow = tfp_flows.RealNVP(2, num_steps=4, hidden_units=(16,))
    flow.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=True)
    samples = flow.distribution().sample(256, seed=(1, 2))
    latents = flow.bijector().inverse(samples)
    before = flow.distribution().log_prob(samples).numpy()
    flow.fit(x_train, batch_size=64, epochs=3, verbose=0)
    after = flow.log_prob(samples).numpy()
    assert np.max(np.abs(after - before)) > 0.1  # training changed the density
    np.testing.assert_allclose(flow.distribution().log_prob(samples), after, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(flow.bijector().inverse(samples), flow.encode(samples), rtol=1e-5,
                               atol=1e-5)
    assert not np.allclose(flow.bijector().inverse(samples), latents, atol=1e-3)
    by_hand = tfd.TransformedDistribution(flow.base(), flow.bijector())
    np.testing.assert_allclose(by_hand.log_prob(samples), after, rtol=1e-5, atol=1e-5)
    # Within one bijector the cache still serves inverse(forward(z)).
    bijector = flow.bijector()
    z = tf.random.stateless_normal((4, 2), seed=(0, 1))
    assert bijector.inverse(bijector.forward(z)) is z


# 4. Any TFP bijector is a flow step --------------------------------------------------------

def test_a_fixed_tfp_bijector_is_a_flow_step(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.beta(2.0, 5.0, (256, 3)).astype(np.float32)  # data in (0, 1)
    flow = tfp_flows.Flow([layers.FixedBijector(tfb.Sigmoid()), layers.ActNorm(),
                           layers.AffineCoupling(hidden_units=(8,)),
                           layers.FixedBijector(tfb.Scale(tf.constant([0.5, 2.0, 1.5])))], (3,))
    flow.compile(optimizer="adam", jit_compile=True)
    flow.fit(x, batch_size=64, epochs=1, verbose=0)
    for layer in flow.flow_layers[1:3]:
        randomize_weights(layer, seed=1, scale=0.2)
    # By hand: logit, then the rest; the sigmoid's log-det counts once per entry.
    logit = np.log(x) - np.log1p(-x)
    rest = tfp_flows.Flow(flow.flow_layers[1:], (3,))
    expected = rest.log_prob(logit) - np.sum(np.log(x) + np.log1p(-x), axis=1)
    np.testing.assert_allclose(flow.log_prob(x), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(flow.distribution().log_prob(x), expected, rtol=1e-4, atol=1e-4)
    flow.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.log_prob(x), flow.log_prob(x), rtol=1e-6)


# 5. float64 end to end -------------------------------------------------------------------------

@pytest.fixture
def float64():
    # Keras fixes its default policy from floatx on first use: set both, as a user
    # who switches precision mid-session must.
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_floatx("float32")
    keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("kind", ["realnvp", "glow"])
def test_float64_flows_compute_train_save_and_export_in_float64(kind, float64, tmp_path,
                                                                 digits_like):
    if kind == "realnvp":
        x = data.two_moons(256)[0].astype(np.float64)
        flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(8,))
    else:
        x = digits_like(64)[0]
        flow = small_glow()
    assert [w.path for w in flow.weights if w.dtype.startswith("float") and w.dtype != "float64"] == []
    flow.compile(optimizer="adam", jit_compile=True)
    flow.fit(x, batch_size=32, epochs=1, verbose=0)
    log_p = flow.log_prob(x[:8])
    assert log_p.dtype == tf.float64 and flow.sample(3, seed=0).dtype == tf.float64
    # Whole flow through the checker in float64, at its 1e-8 log-det tolerance.
    for layer in flow.layers_tree():
        randomize_weights(layer, seed=2, scale=0.05)
    bijector = flow.bijector()
    if flow.discrete:  # the continuous part: latents -> k + u
        bijector = tfb.Chain([flow.flow_layers[0].bijector(),
                              layers.LayerChain(flow.flow_layers[1:], event_ndims=3)])
    check_bijector(lambda dtype: bijector, flow.latent_shape, dtypes=(tf.float64,), scale=0.3)
    flow.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded.log_prob(x[:8]), flow.log_prob(x[:8]))
    served = tf.saved_model.load(str(flow.export(tmp_path / "served")))
    out = served.signatures["log_prob"](x=tf.constant(x[:8], tf.float64))
    assert out["log_prob"].dtype == tf.float64
    np.testing.assert_allclose(out["log_prob"], flow.log_prob(x[:8]), rtol=1e-12)


# 6. Bad input is refused, and nothing is lost -----------------------------------------------

def test_labels_must_be_integers_in_range(glow):
    flow, x, _ = glow
    before = [w.copy() for w in flow.get_weights()]
    for bad, shown in [(1.7, "1.7"), (-1, "-1"), (10, "10")]:
        labels = np.full(4, bad)
        with pytest.raises(ValueError, match=rf"integers in \[0, 10\); got {shown}"):
            flow.log_prob(x[:4], labels)
        with pytest.raises(ValueError, match=rf"integers in \[0, 10\); got {shown}"):
            flow.fit(x[:4], labels, verbose=0)
    with pytest.raises(ValueError, match=r"integers in \[0, 10\); got 5.5"):
        flow.sample(2, context=5.5)
    # Whole-number floats are labels; one label serves every example.
    np.testing.assert_array_equal(flow.log_prob(x[:4], np.full(4, 3.0)),
                                  flow.log_prob(x[:4], np.full(4, 3)))
    np.testing.assert_array_equal(flow.log_prob(x[:4], 3), flow.log_prob(x[:4], np.full(4, 3)))
    for got, want in zip(flow.get_weights(), before):
        np.testing.assert_array_equal(got, want)


def test_vector_contexts_have_the_right_length():
    flow = tfp_flows.RealNVP(2, num_steps=1, hidden_units=(4,), context_shape=(3,))
    x = np.zeros((4, 2), np.float32)
    with pytest.raises(ValueError, match=r"shape \(batch, 3\) or \(3,\); got shape \(4, 2\)"):
        flow.log_prob(x, np.zeros((4, 2)))
    with pytest.raises(ValueError, match="3 contexts for 4 examples"):
        flow.log_prob(x, np.zeros((3, 3)))
    one = np.array([0.1, -0.2, 0.3])
    np.testing.assert_array_equal(flow.log_prob(x, one), flow.log_prob(x, np.tile(one, (4, 1))))


def test_pixels_must_lie_in_range(glow):
    flow, x, labels = glow
    before = [w.copy() for w in flow.get_weights()]
    for value, match in [(40, r"\[0, 17\); got values in \[0, 40\]"),
                         (-3.0, r"\[0, 17\); got values in \[-3.0, 16.0\]"),
                         (17, r"\[0, 17\); got values in \[0, 17\]"),
                         (2.5, "non-whole values such as 2.5")]:
        bad = x[:8].astype(np.float32 if isinstance(value, float) else np.int32)
        bad[0, 0, 0, 0] = value
        with pytest.raises(ValueError, match=match):
            flow.log_prob(bad, labels[:8])
        with pytest.raises(ValueError, match=match):
            flow.fit(bad, labels[:8], verbose=0)
        with pytest.raises(ValueError, match=match):
            flow.evaluate(bad, labels[:8], verbose=0)
    # A dataset's first batch is checked in Python, before any step; every batch is
    # also checked in its pipeline, so a bad later batch stops with TensorFlow's error.
    bad = x[:64].copy()
    bad[3, 2, 2, 0] = 17
    dataset = tf.data.Dataset.from_tensor_slices((bad, labels[:64])).batch(32)
    with pytest.raises(ValueError, match=r"\[0, 17\); got values in \[0, 17\]"):
        flow.fit(dataset, verbose=0)
    for got, want in zip(flow.get_weights(), before):
        np.testing.assert_array_equal(got, want)
    later = tf.data.Dataset.from_tensor_slices((np.roll(bad, 32, axis=0), labels[:64])).batch(32)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"whole pixel values in \[0, 17\)"):
        flow.evaluate(later, verbose=0)
    # The served graph checks pixels and labels as well: tests/test_export.py.
