"""The Flow model as users touch it: fit, XLA, conditional, sampling, saving, bad input."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows import data


@pytest.fixture(scope="module")
def moons():
    (x, _), (x_test, _) = data.load_two_moons(num_train=2048, num_test=512)
    return x, x_test


@pytest.fixture(scope="module")
def trained_realnvp(moons):
    """One small RealNVP trained under XLA, shared by the tests that only read it."""
    x, _ = moons
    keras.utils.set_random_seed(0)
    flow = tfp_flows.RealNVP(2, num_steps=4, hidden_units=(32, 32))
    flow.compile(optimizer=keras.optimizers.Adam(2e-3), jit_compile=True, steps_per_execution=8)
    history = flow.fit(x, batch_size=128, epochs=12, verbose=0)
    return flow, history


def small_glow(**kwargs):
    return tfp_flows.Glow((8, 8, 1), num_levels=2, num_steps=1, hidden_channels=8, num_values=17,
                          **kwargs)


def test_fit_logs_nll_and_bits_per_dim_and_learns(trained_realnvp, moons):
    flow, history = trained_realnvp
    losses = history.history["loss"]
    assert set(history.history) == {"loss", "bits_per_dim"}
    np.testing.assert_allclose(history.history["bits_per_dim"], np.array(losses) / (2 * math.log(2)),
                               rtol=1e-5)
    assert losses[-1] < losses[0] - 0.3, losses
    test_nll = -float(np.mean(flow.log_prob(moons[1])))
    assert np.isfinite(test_nll) and test_nll < 1.6, test_nll  # a fresh flow scores about 1.9


def test_log_prob_is_the_transformed_distribution(trained_realnvp, moons):
    flow, _ = trained_realnvp
    x = moons[1][:16]
    np.testing.assert_allclose(flow.log_prob(x), flow.distribution().log_prob(x), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(flow.decode(flow.encode(x)), x, atol=1e-4)
    np.testing.assert_allclose(flow.bits_per_dim(x), -flow.log_prob(x) / (2 * math.log(2)), rtol=1e-6)
    np.testing.assert_allclose(flow(x), flow.log_prob(x), rtol=1e-5, atol=1e-5)  # eager vs graph


def test_sampling_is_repeatable_and_tempered(trained_realnvp):
    flow, _ = trained_realnvp
    a, b = flow.sample(256, seed=7), flow.sample(256, seed=7)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, flow.sample(256, seed=8))
    cold = flow.sample(256, seed=7, temperature=0.0)
    np.testing.assert_allclose(cold, np.repeat(cold[:1], 256, 0), atol=1e-5)  # all at the mode of z


def test_xla_step_matches_the_uncompiled_step(moons):
    x, _ = moons
    losses = []
    for jit in (False, True):
        keras.utils.set_random_seed(3)
        flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(16,), seed=1)
        flow.compile(optimizer=keras.optimizers.SGD(0.05), jit_compile=jit)
        losses.append(flow.fit(x[:512], batch_size=128, epochs=2, shuffle=False,
                               verbose=0).history["loss"])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-4)


def test_fused_xla_steps_match_keras_train_function(moons):
    """Our fused loop (all the steps of an execution in one XLA program) trains exactly as
    Keras' own train function with the same settings, also across a short last group, a
    smaller last batch (600 rows: 4 x 128 + 88), ``train_on_batch`` and (x, context) pairs;
    the unconditional fused path is the shared fixture's."""
    x = moons[0][:600]
    context = np.random.default_rng(0).normal(size=(600, 3)).astype(np.float32)
    results = {}
    for fused in (False, True):
        keras.utils.set_random_seed(3)
        flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(16,), context_shape=(3,), seed=1)
        flow.compile(optimizer=keras.optimizers.Adam(0.01), jit_compile=True,
                     steps_per_execution=2, engine="fused" if fused else "keras")
        history = flow.fit(x, context, batch_size=128, epochs=2, shuffle=False, verbose=0)
        logs = flow.train_on_batch(x[:64], context[:64], return_dict=True)
        results[fused] = (history.history["loss"], logs["loss"],
                          [v.numpy() for v in flow.trainable_variables], flow.train_function)
    (keras_loss, keras_batch, keras_weights, theirs), (loss, batch, weights, ours) = \
        results[False], results[True]
    assert hasattr(ours, "trainer") and not hasattr(theirs, "trainer")
    np.testing.assert_allclose(loss, keras_loss, rtol=1e-5)
    np.testing.assert_allclose(batch, keras_batch, rtol=1e-5)
    for a, b in zip(keras_weights, weights):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-6)


def test_fused_glow_steps_match_keras_train_function(digits_like):
    """The fused loop's convolution gradients (tfp_flows._conv) train a Glow as Keras' own
    train function does (two steps per execution, XLA)."""
    x, _ = digits_like(64)
    weights = []
    for fused in (False, True):
        keras.utils.set_random_seed(5)
        flow = small_glow()
        initial = [v.numpy() for v in flow.trainable_variables]
        flow.compile(optimizer=keras.optimizers.SGD(0.01), jit_compile=True,
                     steps_per_execution=2, engine="fused" if fused else "keras")
        flow.fit(x, batch_size=16, epochs=1, shuffle=False, verbose=0)
        assert fused == hasattr(flow.train_function, "trainer")
        weights.append([v.numpy() for v in flow.trainable_variables])
    moved = max(float(np.max(np.abs(b - a))) for a, b in zip(initial, weights[1]))
    assert moved > 1e-3, moved  # four steps changed the weights, so equal weights mean equal steps
    for a, b in zip(*weights):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_tf_data_callbacks_and_validation(tmp_path, moons):
    x, x_test = moons
    flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(16,))
    flow.compile(optimizer="adam", jit_compile=True)
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(256)
    callbacks = [keras.callbacks.ModelCheckpoint(str(tmp_path / "best.keras"), save_best_only=True),
                 keras.callbacks.EarlyStopping(patience=5),
                 keras.callbacks.TensorBoard(str(tmp_path / "logs")),
                 keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))]
    history = flow.fit(dataset, validation_data=(x_test,), epochs=2, callbacks=callbacks, verbose=0)
    assert "val_loss" in history.history and "val_bits_per_dim" in history.history
    restored = keras.saving.load_model(tmp_path / "best.keras")
    assert np.all(np.isfinite(restored.log_prob(x_test[:8])))
    assert any((tmp_path / "logs").rglob("*tfevents*"))
    loss, bpd = flow.evaluate(x_test, batch_size=256, verbose=0)
    np.testing.assert_allclose(bpd, loss / (2 * math.log(2)), rtol=1e-5)


def _round_trip(flow, tmp_path, x, context=None):
    path = tmp_path / f"{flow.name}.keras"
    flow.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.log_prob(x, context), flow.log_prob(x, context), atol=1e-6)
    sample_context = None if context is None else context[0]
    np.testing.assert_array_equal(loaded.sample(4, context=sample_context, seed=5),
                                  flow.sample(4, context=sample_context, seed=5))
    weights = tmp_path / f"{flow.name}.weights.h5"
    flow.save_weights(weights)
    return loaded, weights


@pytest.mark.parametrize("kind", ["realnvp", "realnvp_labels", "glow", "glow_vector"])
def test_save_and_load_give_identical_densities_and_samples(kind, tmp_path, moons, digits_like):
    if kind.startswith("realnvp"):
        x = moons[0][:64]
        labels = kind.endswith("labels")
        context = (x[:, 0] > 0.5).astype(np.int32) if labels else None
        flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(16,), coupling="prelu",
                                 num_classes=2 if labels else None)
    else:
        x, labels = digits_like()
        vector = kind.endswith("vector")
        context = np.eye(10, dtype=np.float32)[labels] if vector else None
        flow = small_glow(context_shape=(10,) if vector else None)
    flow.compile(optimizer="adam")
    flow.fit(x, context, batch_size=32, epochs=1, verbose=0)
    loaded, weights = _round_trip(flow, tmp_path, x, context)
    loaded.load_weights(weights)
    np.testing.assert_allclose(loaded.log_prob(x, context), flow.log_prob(x, context), atol=1e-6)


def test_class_conditional_glow_trains_and_samples_per_class(digits_like):
    x, labels = digits_like(96)
    flow = small_glow(num_classes=10)
    flow.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
    history = flow.fit(x, labels, batch_size=32, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    samples = flow.sample(5, context=3, seed=1)
    assert samples.shape == (5, 8, 8, 1)
    assert np.all((samples.numpy() >= 0) & (samples.numpy() <= 17))
    other = flow.sample(5, context=4, seed=1)
    assert not np.allclose(samples, other)  # the context reaches the conditioners
    lp = flow.log_prob(x[:4], labels[:4])
    assert lp.shape == (4,) and np.all(np.isfinite(lp))


def test_actnorm_initialises_from_training_data_not_from_sampling(digits_like):
    flow = small_glow()
    actnorms = [layer for layer in flow.layers_tree() if isinstance(layer, tfp_flows.layers.ActNorm)]
    flow.sample(3, seed=0)
    flow.log_prob(digits_like(8)[0])
    assert all(float(a.initialized.numpy()) == 0.0 for a in actnorms)
    flow.compile(optimizer="adam", jit_compile=True)
    flow.fit(digits_like(32)[0], batch_size=32, epochs=1, verbose=0)
    assert all(float(a.initialized.numpy()) == 1.0 for a in actnorms)
    assert all(np.any(a.loc.numpy() != 0) for a in actnorms)


def test_dequantized_log_prob_is_the_bound_and_score_the_midpoint(digits_like):
    flow = small_glow()
    x = digits_like(8)[0]
    midpoint = flow.distribution().log_prob(x.astype(np.float32) + 0.5)
    np.testing.assert_allclose(flow.score(x), midpoint, rtol=1e-5)
    # log_prob(k) is log p(k + u) for u ~ U(0, 1) drawn from the seed (Philox, stateless).
    u = tf.random.stateless_uniform(x.shape, seed=tf.constant([0, 0]), alg="philox")
    bound = flow.distribution().log_prob(x.astype(np.float32) + u)
    np.testing.assert_allclose(flow.log_prob(x, seed=0), bound, rtol=1e-5)
    np.testing.assert_allclose(flow.bits_per_dim(x), -bound / (64 * math.log(2)), rtol=1e-5)
    assert not np.allclose(flow.log_prob(x), midpoint, rtol=1e-4)
    # An untrained flow on uniform 17-level data scores near log2(17) bits, never below 0.
    assert 3.0 < float(np.mean(flow.bits_per_dim(x))) < 6.0


@pytest.mark.parametrize("policy, tolerance", [("mixed_float16", 5e-2), ("mixed_bfloat16", 2e-1)])
def test_mixed_precision_keeps_the_density_in_float32(policy, tolerance, moons):
    x = moons[0][:256]
    reference = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(16,), actnorm=True)
    reference.compile(optimizer="adam")
    reference.fit(x, batch_size=64, epochs=1, verbose=0)
    try:
        keras.mixed_precision.set_global_policy(policy)
        flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(16,), actnorm=True)
        conditioner = next(layer.conditioner for layer in flow.flow_layers
                           if isinstance(layer, tfp_flows.layers.AffineCoupling))
        actnorm = next(layer for layer in flow.flow_layers
                       if isinstance(layer, tfp_flows.layers.ActNorm))
        assert conditioner.compute_dtype != "float32" and actnorm.compute_dtype == "float32"
        flow.set_weights(reference.get_weights())
        log_prob = flow.log_prob(x)
        assert log_prob.dtype == tf.float32
        np.testing.assert_allclose(log_prob, reference.log_prob(x), atol=tolerance)
        flow.compile(optimizer="adam", jit_compile=True)
        history = flow.fit(x, batch_size=64, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][-1])
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_bad_input_fails_before_training_and_changes_nothing(moons):
    flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(8,))
    flow.compile(optimizer="adam")
    before = [w.copy() for w in flow.get_weights()]
    with pytest.raises(ValueError, match=r"expected data of shape \(batch, 2\); got \(10, 3\)"):
        flow.fit(np.zeros((10, 3), np.float32), verbose=0)
    bad = moons[0][:100].copy()
    bad[[3, 50], 1] = np.nan
    bad[7, 0] = np.inf
    with pytest.raises(ValueError, match="3 of 100 training rows contain NaN or infinity"):
        flow.fit(bad, verbose=0)
    with pytest.raises(ValueError, match="integer data.*Dequantize"):
        flow.log_prob(np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError, match="not conditional"):
        flow.log_prob(moons[0][:2], context=np.zeros((2, 1)))
    for got, want in zip(flow.get_weights(), before):
        np.testing.assert_array_equal(got, want)


def test_conditional_flow_needs_its_context(moons):
    flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(8,), context_shape=(3,))
    x = moons[0][:4]
    with pytest.raises(ValueError, match=r"needs context=.*shape \(batch, 3\)"):
        flow.log_prob(x)
    with pytest.raises(ValueError, match=r"expected context as float vectors of shape \(batch, 3\) or \(3,\); got shape \(4, 2\)"):
        flow.log_prob(x, np.zeros((4, 2), np.float32))
    with pytest.raises(ValueError, match="needs context"):
        flow.compile(optimizer="adam") or flow.fit(x, verbose=0)
    with pytest.raises(ValueError, match="needs context"):
        flow.sample(2)
    with pytest.raises(ValueError, match="not conditional"):
        tfp_flows.RealNVP(2, num_steps=1, hidden_units=(4,)).sample(2, context=np.zeros(3))
    with pytest.raises(ValueError, match="cannot be halved 3 times"):
        tfp_flows.Glow((12, 12, 1), num_levels=3)
