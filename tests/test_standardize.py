"""Standardisation of targets and contexts learned from the data (issue 23): the density
stays that of the raw values, and the statistics travel with `.keras` files and exports."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows import layers

RNG = np.random.default_rng(0)
MEAN, STD = np.array([3.0, -20.0, 0.5]), np.array([0.01, 5.0, 1.0])
X = (MEAN + STD * RNG.standard_normal((512, 3))).astype(np.float32)
# A context far from zero mean and unit scale, as SLCP's (std about 4).
CONTEXT = (10.0 + 4.0 * RNG.standard_normal((512, 4))).astype(np.float32)
THETA = np.stack([CONTEXT[:, 0] / 4.0 + 0.1 * RNG.standard_normal(512),
                  RNG.standard_normal(512)], 1).astype(np.float32)


def test_a_standardize_flow_is_the_normal_density_of_the_raw_values():
    flow = tfp_flows.Flow([layers.Standardize()], (3,))
    flow.adapt(X)
    mean, std = X.astype(np.float64).mean(0), X.astype(np.float64).std(0)
    assert np.all(np.abs(mean - MEAN) < 4 * STD / np.sqrt(len(X)))
    np.testing.assert_allclose(std, STD, rtol=0.1)
    # Normal(mean, std) per entry: the log-det of the scaling counted.
    expected = (-0.5 * ((X - mean) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)).sum(1)
    np.testing.assert_allclose(flow.log_prob(X), expected, rtol=1e-5, atol=1e-3)
    # TFP's path (the layer's bijector in a TransformedDistribution) agrees.
    np.testing.assert_allclose(flow.distribution().log_prob(X), expected, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(flow.sample(4096, seed=1).numpy().std(0), std, rtol=0.05)
    assert flow.flow_layers[0].is_adapted


def test_adapt_refuses_non_finite_rows_naming_them_before_any_change():
    flow = tfp_flows.RealNVP(3, num_steps=1, hidden_units=(4,), context_shape=(4,),
                             standardize=True)
    bad = X.copy()
    bad[[5, 200], 1] = [np.nan, np.inf]
    with pytest.raises(ValueError, match=r"2 rows: 5, 200"):
        flow.adapt(bad, CONTEXT)
    bad_context = CONTEXT.copy()
    bad_context[7, 0] = np.nan
    with pytest.raises(ValueError, match=r"context.*1 rows: 7"):
        flow.adapt(X, bad_context)
    with pytest.raises(ValueError, match="at least one row"):
        flow.adapt(X[:0], CONTEXT[:0])
    assert not flow.flow_layers[0].is_adapted
    np.testing.assert_array_equal(flow.context_std.numpy(), 1.0)


def test_dataset_and_arrays_adapt_alike():
    flows = [tfp_flows.MAF(3, num_steps=1, hidden_units=(4,), context_shape=(4,),
                           standardize=True) for _ in range(2)]
    flows[0].adapt(X, CONTEXT)
    flows[1].adapt(tf.data.Dataset.from_tensor_slices((X, CONTEXT)).batch(100))
    for a, b in zip(flows[0].non_trainable_weights, flows[1].non_trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_builders_without_standardisation_adapt_nothing_and_old_files_load_as_identity():
    flow = tfp_flows.NSF(2, num_steps=1, hidden_units=(4,), context_shape=(4,),
                         standardize_context=False)
    assert not any(isinstance(layer, layers.Standardize) for layer in flow.flow_layers)
    flow.adapt(THETA, CONTEXT)
    np.testing.assert_array_equal(flow.context_mean.numpy(), 0.0)
    flow.compile(optimizer="adam")
    flow.fit(THETA, CONTEXT, batch_size=256, verbose=0)
    np.testing.assert_array_equal(flow.context_std.numpy(), 1.0)
    # A file saved before flows had context statistics has no weights of the flow's own.
    flow.context_mean.assign([1.0] * 4)
    flow.load_own_variables({})
    np.testing.assert_array_equal(flow.context_mean.numpy(), 1.0)  # left as it was


def test_conditional_flow_standardises_raw_contexts_in_memory_keras_and_export(tmp_path):
    flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(8,), context_shape=(4,),
                             standardize=True)
    flow.adapt(THETA, CONTEXT)
    embedded = flow.embed_context(tf.constant(CONTEXT)).numpy()
    np.testing.assert_allclose(embedded.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(embedded.std(0), 1.0, atol=1e-4)
    np.testing.assert_allclose(flow.context_std.numpy(), CONTEXT.std(0), rtol=1e-5)
    flow.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    flow.fit(THETA, CONTEXT, batch_size=128, epochs=2, verbose=0)
    log_p = flow.log_prob(THETA[:16], CONTEXT[:16]).numpy()

    flow.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(loaded.log_prob(THETA[:16], CONTEXT[:16]), log_p, rtol=1e-5,
                               atol=1e-5)
    assert loaded.flow_layers[0].is_adapted

    served = tf.saved_model.load(str(flow.export(tmp_path / "served")))
    out = served.signatures["log_prob"](x=tf.constant(THETA[:16]),
                                        context=tf.constant(CONTEXT[:16]))
    np.testing.assert_allclose(out["log_prob"], log_p, rtol=1e-5, atol=1e-5)
    # The statistics matter: the same weights without them give another density.
    flow.context_mean.assign(tf.zeros(4))
    assert np.abs(flow.log_prob(THETA[:16], CONTEXT[:16]).numpy() - log_p).max() > 1e-2


def test_the_first_fit_sets_the_standardisation_adapt_has_not():
    """Builders standardise the context by default; ``fit`` sets what ``adapt`` has not,
    from the rows it trains on (not the validation split), once."""
    flow = tfp_flows.RealNVP(2, num_steps=1, hidden_units=(4,), context_shape=(4,),
                             standardize=True)
    flow.compile(optimizer=keras.optimizers.SGD(1e-3), jit_compile=False)
    flow.fit(THETA, CONTEXT, batch_size=128, validation_split=0.25, verbose=0)
    np.testing.assert_allclose(flow.context_mean.numpy(), CONTEXT[:384].mean(0), rtol=1e-5)
    np.testing.assert_allclose(flow.context_std.numpy(), CONTEXT[:384].std(0), rtol=1e-5)
    np.testing.assert_allclose(flow.flow_layers[0].mean.numpy(), THETA[:384].mean(0), atol=1e-5)
    # Set once: a later fit (the optimizer has stepped) keeps the statistics it learned on.
    flow.fit(THETA[:100] + 50.0, CONTEXT[:100] - 30.0, batch_size=50, verbose=0)
    np.testing.assert_allclose(flow.context_mean.numpy(), CONTEXT[:384].mean(0), rtol=1e-5)
    # A dataset: its first batch; statistics set by adapt are kept.
    dataset = tf.data.Dataset.from_tensor_slices((THETA, CONTEXT)).batch(64)
    fresh = tfp_flows.MAF(2, num_steps=1, hidden_units=(4,), context_shape=(4,))
    fresh.compile(optimizer="adam")
    fresh.fit(dataset, verbose=0)
    np.testing.assert_allclose(fresh.context_std.numpy(), CONTEXT[:64].std(0), rtol=1e-5)
    adapted = tfp_flows.NSF(2, num_steps=1, hidden_units=(4,), context_shape=(4,))
    adapted.adapt(THETA[:10], CONTEXT[:10])
    adapted.compile(optimizer="adam")
    adapted.fit(THETA, CONTEXT, batch_size=256, verbose=0)
    np.testing.assert_allclose(adapted.context_mean.numpy(), CONTEXT[:10].mean(0), rtol=1e-5)
    # Whole pixel values (a dequantized Glow) with a vector context.
    glow = tfp_flows.Glow((4, 4, 1), num_levels=1, num_steps=1, hidden_channels=4, num_values=5,
                          context_shape=(4,))
    glow.adapt(np.zeros((8, 4, 4, 1), np.int32), CONTEXT[:8])
    np.testing.assert_allclose(glow.context_mean.numpy(), CONTEXT[:8].mean(0), rtol=1e-5)
