"""Conditional flows of 1-D targets: each step an elementwise map conditioned on the context."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows import layers
from tfp_flows.testing import randomize_weights

CONTEXT = 3


def _one_dimensional(builder, **kwargs):
    return builder(1, num_steps=2, hidden_units=(8,), context_shape=(CONTEXT,), **kwargs)


ONE_D = {
    "nsf": lambda: _one_dimensional(tfp_flows.NSF),
    "realnvp affine": lambda: _one_dimensional(tfp_flows.RealNVP),
    "realnvp spline": lambda: _one_dimensional(tfp_flows.RealNVP, coupling="spline"),
    "maf spline": lambda: _one_dimensional(tfp_flows.MAF, transform="spline"),
}


@pytest.mark.parametrize("make", ONE_D.values(), ids=ONE_D.keys())
def test_one_dimensional_targets_given_a_context(make):
    flow = make()
    assert all(isinstance(layer, (layers.MaskedAutoregressive, layers.ActNorm))
               for layer in flow.flow_layers)
    randomize_weights(flow, seed=1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 1)).astype(np.float32)
    context = rng.standard_normal((5, CONTEXT)).astype(np.float32)
    log_p = flow.log_prob(x, context).numpy()
    assert log_p.shape == (5,) and np.all(np.isfinite(log_p))
    # The density depends on the context (its only input besides x) ...
    assert not np.allclose(log_p, flow.log_prob(x, context[::-1]).numpy())
    # ... and the map inverts given the same context.
    z = flow.encode(x, context)
    np.testing.assert_allclose(flow.decode(tf.identity(z), context), x, atol=1e-4)
    assert flow.sample(4, context=context[0], seed=0).shape == (4, 1)


def test_one_dimensional_flow_trains_and_reloads(tmp_path):
    flow = ONE_D["nsf"]()
    flow.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    rng = np.random.default_rng(0)
    context = rng.standard_normal((64, CONTEXT)).astype(np.float32)
    x = (context[:, :1] + 0.1 * rng.standard_normal((64, 1))).astype(np.float32)
    flow.fit(x, context, batch_size=64, epochs=1, verbose=0)
    path = tmp_path / "nsf1.keras"
    flow.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.log_prob(x, context), flow.log_prob(x, context), atol=1e-5)


def test_unconditional_one_dimensional_nsf():
    flow = tfp_flows.NSF(1, num_steps=1, hidden_units=(4,))
    assert flow.log_prob(np.zeros((3, 1), np.float32)).shape == (3,)
    with pytest.raises(ValueError, match="1-D event has no half.*autoregressive=None or True"):
        tfp_flows.NSF(1, autoregressive=False)


def test_nsf_is_autoregressive_given_a_context_and_coupled_without():
    """The arrangement follows the context unless asked; each step of the autoregressive
    one is an affine map and a spline (3K + 1 MADE outputs per entry), no ActNorm."""
    def kinds(flow):
        return [type(layer).__name__ for layer in flow.flow_layers]

    conditional = tfp_flows.NSF(3, num_steps=2, hidden_units=(8,), num_bins=4,
                                context_shape=(CONTEXT,))
    assert kinds(conditional) == ["MaskedAutoregressive"] * 2
    assert [layer.ordering for layer in conditional.flow_layers] == ["natural", "reversed"]
    assert all(layer.transform.affine and layer.transform.num_params == 13
               for layer in conditional.flow_layers)
    assert kinds(tfp_flows.NSF(3, num_steps=1)) == ["ActNorm", "LULinear", "SplineCoupling"]
    assert kinds(tfp_flows.NSF(3, num_steps=1, context_shape=(CONTEXT,), autoregressive=False,
                               actnorm=False)) == ["LULinear", "SplineCoupling"]
    assert kinds(tfp_flows.NSF(3, num_steps=1, autoregressive=True, actnorm=True)) == [
        "ActNorm", "MaskedAutoregressive"]
    assert kinds(tfp_flows.NSF(1, num_steps=1, context_shape=(CONTEXT,))) == [
        "ActNorm", "MaskedAutoregressive"]
    # given a context, the MADEs' last hidden layer is GELU; ReLU elsewhere
    assert [layer.activation for layer in conditional.flow_layers] == ["relu"] * 2
    two_layers = tfp_flows.NSF(3, num_steps=1, context_shape=(CONTEXT,))
    assert two_layers.flow_layers[0].activation == ["relu", "gelu"]
    coupled = tfp_flows.NSF(3, num_steps=1, context_shape=(CONTEXT,), autoregressive=False)
    assert coupled.flow_layers[-1].activation == "relu"
    assert tfp_flows.NSF(3, num_steps=1, autoregressive=True).flow_layers[-1].activation == "relu"


@pytest.mark.parametrize("coupling", ["additive", "prelu"])
def test_realnvp_says_which_couplings_a_1d_event_takes(coupling):
    with pytest.raises(ValueError, match="1-D event.*coupling 'affine' or 'spline'"):
        tfp_flows.RealNVP(1, coupling=coupling, context_shape=(CONTEXT,))


@pytest.mark.parametrize("builder", [tfp_flows.NSF, tfp_flows.RealNVP, tfp_flows.MAF])
def test_builders_reject_an_empty_event(builder):
    with pytest.raises(ValueError, match="event_size >= 1"):
        builder(0)
