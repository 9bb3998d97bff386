"""Context encoders (issue 23): a Keras model maps raw observations to the conditioners'
context, trains with the flow through fit, and travels with `.keras` files and exports."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows import diagnostics
from tfp_flows.encoders import DeepSet

RNG = np.random.default_rng(0)
THETA = RNG.uniform(-3.0, 3.0, (256, 2)).astype(np.float32)
# Sets of 10 noisy copies of theta, far from zero mean and unit scale.
SETS = (5.0 + THETA[:, None] + 2.0 * RNG.standard_normal((256, 10, 2))).astype(np.float32)


def set_flow(**kwargs):
    # two hidden layers: the MADEs' default ReLU-then-GELU travels through save and export
    return tfp_flows.NSF(2, num_steps=2, hidden_units=(16, 16), context_shape=(None, 2),
                         context_encoder=DeepSet(8, hidden_units=(16,)), standardize=True,
                         **kwargs)


@pytest.fixture(scope="module")
def trained():
    flow = set_flow()
    flow.adapt(THETA, SETS)
    before = [w.numpy().copy() for w in flow.context_encoder.trainable_weights]
    flow.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    history = flow.fit(THETA, SETS, batch_size=64, epochs=2, verbose=0)
    return flow, before, history


def test_fit_trains_the_encoder_with_the_flow(trained):
    flow, before, history = trained
    assert np.all(np.isfinite(history.history["loss"]))
    after = flow.context_encoder.trainable_weights
    assert len(after) == len(before) == 6  # phi, rho and out: kernel and bias each
    for old, new in zip(before, after):
        assert np.abs(new.numpy() - old).max() > 1e-4, new.path
    assert {id(w) for w in after} <= {id(w) for w in flow.trainable_weights}


def test_statistics_are_per_feature_and_the_set_order_does_not_matter(trained):
    flow = trained[0]
    pooled = SETS.reshape(-1, 2).astype(np.float64)
    np.testing.assert_allclose(flow.context_mean.numpy(), pooled.mean(0), rtol=1e-5)
    np.testing.assert_allclose(flow.context_std.numpy(), pooled.std(0), rtol=1e-5)
    log_p = flow.log_prob(THETA[:8], SETS[:8]).numpy()
    shuffled = SETS[:8][:, RNG.permutation(10)]
    np.testing.assert_allclose(flow.log_prob(THETA[:8], shuffled), log_p, rtol=1e-5, atol=1e-5)
    # Sets of another size (context_shape (None, 2)) and one set for every example.
    assert np.all(np.isfinite(flow.log_prob(THETA[:8], SETS[:8, :3])))
    one = flow.log_prob(THETA[:3], SETS[0]).numpy()
    np.testing.assert_allclose(one, flow.log_prob(THETA[:3], SETS[[0, 0, 0]]), rtol=1e-6)


def test_save_load_and_export_give_the_same_density(trained, tmp_path):
    flow = trained[0]
    log_p = flow.log_prob(THETA[:16], SETS[:16]).numpy()
    flow.save(tmp_path / "set.keras")
    loaded = tfp_flows.load_flow(tmp_path / "set.keras")
    assert isinstance(loaded.context_encoder, DeepSet)
    np.testing.assert_allclose(loaded.log_prob(THETA[:16], SETS[:16]), log_p, rtol=1e-5,
                               atol=1e-5)
    served = tf.saved_model.load(str(flow.export(tmp_path / "served")))
    out = served.signatures["log_prob"](x=tf.constant(THETA[:16]), context=tf.constant(SETS[:16]))
    np.testing.assert_allclose(out["log_prob"], log_p, rtol=1e-5, atol=1e-5)
    small = served.signatures["log_prob"](x=tf.constant(THETA[:4]),
                                          context=tf.constant(SETS[:4, :7]))["log_prob"]
    np.testing.assert_allclose(small, flow.log_prob(THETA[:4], SETS[:4, :7]), rtol=1e-5,
                               atol=1e-5)
    draws = served.signatures["sample"](num_samples=tf.constant(5), seed=tf.constant(3, tf.int64),
                                        temperature=tf.constant(1.0), context=tf.constant(SETS[0]))
    np.testing.assert_allclose(draws["x"], flow.sample(5, context=SETS[0], seed=3), atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected context of shape"):
        served.signatures["log_prob"](x=tf.constant(THETA[:4]),
                                      context=tf.constant(SETS[:4, :, :1].repeat(3, -1)))


def test_sample_given_a_batch_of_observations(trained):
    flow = trained[0]
    draws = flow.sample(7, context=SETS[:5], seed=1).numpy()
    assert draws.shape == (5, 7, 2) and np.all(np.isfinite(draws))
    # Chunks of one observation per pass draw the same numbers: noise seeded per observation.
    np.testing.assert_allclose(flow.sample(7, context=SETS[:5], seed=1, batch_size=1), draws,
                               atol=1e-5)
    assert not np.allclose(draws[0], draws[1])
    assert flow.sample(7, context=SETS[0], seed=1).shape == (7, 2)
    result = diagnostics.calibration(flow, THETA[:6], SETS[:6], num_samples=9, batch_size=20)
    assert result.samples.shape == (6, 9, 2) and result.ranks.shape == (6, 2)
    assert result.hpd_ranks.shape == (6,) and result.ranks.max() <= 9
    # The draws' log-densities are the flow's: the HPD rank counts denser draws.
    log_q = flow.log_prob(result.samples[0], SETS[[0] * 9]).numpy()
    assert result.hpd_ranks[0] == (log_q > flow.log_prob(THETA[:1], SETS[:1]).numpy()[0]).sum()


def test_labels_sample_one_row_per_label():
    flow = tfp_flows.RealNVP(2, num_steps=1, hidden_units=(4,), num_classes=3)
    assert flow.sample(4, context=np.array([0, 2, 1, 1, 0]), seed=0).shape == (5, 4, 2)


def test_a_convolution_over_a_series_is_an_encoder(tmp_path):
    series = RNG.standard_normal((64, 20, 3)).astype(np.float32) * [1.0, 10.0, 0.1]
    theta = series[:, :, :1].mean(1).astype(np.float32)
    encoder = keras.Sequential([keras.layers.Conv1D(8, 3, activation="relu"),
                                keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(4)])
    flow = tfp_flows.MAF(1, num_steps=1, hidden_units=(8,), context_shape=(20, 3),
                         context_encoder=encoder, standardize=True)
    flow.adapt(theta, series)
    assert flow.context_std.shape == (3,)
    np.testing.assert_allclose(flow.context_std.numpy(), series.reshape(-1, 3).std(0), rtol=1e-4)
    flow.compile(optimizer="adam", jit_compile=False)
    flow.fit(theta, series, batch_size=32, epochs=1, verbose=0)
    flow.save(tmp_path / "series.keras")
    loaded = keras.saving.load_model(tmp_path / "series.keras", safe_mode=True)
    np.testing.assert_allclose(loaded.log_prob(theta, series), flow.log_prob(theta, series),
                               rtol=1e-5, atol=1e-5)


def test_shapes_that_do_not_fit_raise_a_clear_error(trained):
    flow = trained[0]
    with pytest.raises(ValueError, match=r"expected context as floats of shape \(batch, None, 2\)"
                                         r" or \(None, 2\); got shape \(4, 10, 3\)"):
        flow.log_prob(THETA[:4], np.zeros((4, 10, 3), np.float32))
    with pytest.raises(ValueError, match="one context per example or one for all"):
        flow.log_prob(THETA[:4], SETS[:3])
    with pytest.raises(ValueError, match=r"returns vectors \(batch, k\); got output shape "
                                         r"\(2, 10, 4\)"):
        tfp_flows.NSF(2, context_shape=(10, 2), context_encoder=keras.layers.Dense(4))
    with pytest.raises(ValueError, match=r"takes observations of shape \(batch, 10, 2\)"):
        tfp_flows.NSF(2, context_shape=(10, 2), context_encoder=keras.Sequential(
            [keras.Input((5, 2)), keras.layers.Flatten(), keras.layers.Dense(3)]))
    with pytest.raises(ValueError, match="expected context_shape .* and no num_classes"):
        tfp_flows.NSF(2, num_classes=3, context_encoder=DeepSet(4))
    with pytest.raises(ValueError, match="whose last entry .* is known"):
        tfp_flows.NSF(2, context_shape=(10, None), context_encoder=DeepSet(4))
    with pytest.raises(ValueError, match="expected a Keras layer or model"):
        tfp_flows.NSF(2, context_shape=(10, 2), context_encoder=lambda x: x)
    with pytest.raises(ValueError, match=r"vector context_shape like \(k,\) \(or a context_encoder"):
        tfp_flows.NSF(2, context_shape=(10, 2))
    with pytest.raises(ValueError, match="backprop='inverse' does not reach"):
        set_flow().compile(backprop="inverse")
