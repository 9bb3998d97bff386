"""``compile(backprop="inverse")``: the gradients of stored autodiff, without its memory."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows import layers
from tfp_flows.bijectors import Checkerboard
from tfp_flows.testing import randomize_weights

RTOL = 1e-4  # the floor: float32, relative, on every weight
# For weights whose gradient is zero in exact arithmetic (an attention layer's key bias:
# softmax ignores it), both modes return rounding noise; it is compared against this
# fraction of the largest weight gradient instead.
ATOL_OF_LARGEST = 1e-7


def relative_errors(expected, actual):
    """``|a - e| / |e|`` per weight (Frobenius norms); every weight must have a gradient."""
    assert len(expected) == len(actual) > 0
    assert all(g is not None for g in list(expected) + list(actual))
    expected = [np.asarray(tf.convert_to_tensor(e)) for e in expected]
    actual = [np.asarray(tf.convert_to_tensor(a)) for a in actual]
    largest = max(np.linalg.norm(e) for e in expected)
    assert largest > 0  # randomised weights: the comparison is not between zeros
    return np.array([np.linalg.norm(a - e) / max(np.linalg.norm(e), ATOL_OF_LARGEST * largest / RTOL)
                     for e, a in zip(expected, actual)])


def prepared(flow, seed=0):
    """Random non-identity weights; ActNorm counted as initialised (as `fit` leaves it)."""
    randomize_weights(flow, seed, 0.1)
    for layer in flow.layers_tree():
        if isinstance(layer, layers.ActNorm):
            layer.initialized.assign(1.0)
    return flow


def gradients_of_both_modes(flow, data, before_each=lambda: None):
    """``{mode: (nll, gradients)}`` of one eager step with stored and with inverse backprop."""
    results = {}
    for mode in ("store", "inverse"):
        flow.compile(optimizer=keras.optimizers.SGD(0.1), backprop=mode)
        before_each()
        results[mode] = flow.nll_and_gradients(data)  # eager here; XLA and graphs below
    return results


def assert_same_gradients(flow, results):
    errors = relative_errors(results["store"][1], results["inverse"][1])
    assert len(errors) == len(flow.trainable_variables)
    assert errors.max() < RTOL, dict(zip([v.path for v in flow.trainable_variables], errors))


def run_script(tmp_path, source):
    """Runs ``source`` in a fresh Python (its own TensorFlow devices and flags); returns the
    JSON object it printed last."""
    script = tmp_path / "script.py"
    script.write_text(source)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])


rng = np.random.default_rng(0)
CASES = {
    # multiscale: FactorOut with its split prior and a deeper level, 1x1 convolutions
    "glow_affine": lambda: (tfp_flows.Glow((4, 4, 2), num_levels=2, num_steps=1,
                                           hidden_channels=8, num_values=None),
                            rng.normal(size=(6, 4, 4, 2)).astype(np.float32), None),
    # dequantization noise replayed, class-label embedding, PReLU coupling
    "glow_prelu_dequantized_labels": lambda: (
        tfp_flows.Glow((4, 4, 1), num_levels=2, num_steps=1, hidden_channels=8, num_values=17,
                       num_classes=3, coupling="prelu"),
        rng.integers(0, 17, (6, 4, 4, 1)), rng.integers(0, 3, 6)),
    # additive coupling, no split prior, a continuous context
    "glow_additive_context_no_prior": lambda: (
        tfp_flows.Glow((4, 4, 2), num_levels=2, num_steps=1, hidden_channels=8, num_values=None,
                       coupling="additive", split_prior=False, context_shape=(2,)),
        rng.normal(size=(6, 4, 4, 2)).astype(np.float32),
        rng.normal(size=(6, 2)).astype(np.float32)),
    # vectors: LU linear maps, MLP conditioners
    "realnvp_lu": lambda: (tfp_flows.RealNVP(4, num_steps=2, hidden_units=(8,)),
                           rng.normal(size=(6, 4)).astype(np.float32), None),
    # checkerboard partitions, a FactorOut whose input is the first trainable layer's
    "checkerboard": lambda: (tfp_flows.Flow(
        [layers.Squeeze(), layers.FactorOut([layers.AffineCoupling(hidden_channels=8)],
                                            hidden_channels=8),
         layers.Unsqueeze(), layers.AffineCoupling(Checkerboard(0), hidden_channels=8),
         layers.Invertible1x1Conv(seed=1), layers.PReLUCoupling(Checkerboard(1), hidden_channels=8)],
        (4, 4, 2)), rng.normal(size=(6, 4, 4, 2)).astype(np.float32), None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_gradients_match_stored_autodiff(case):
    flow, x, context = CASES[case]()
    prepared(flow)
    data = (tf.convert_to_tensor(x),) if context is None else (tf.convert_to_tensor(x),
                                                                tf.convert_to_tensor(context))
    noise = [layer.noise.state for layer in flow.flow_layers if isinstance(layer, layers.Dequantize)]
    start = [state.numpy() for state in noise]

    def same_noise():  # in both modes
        for state, value in zip(noise, start):
            state.assign(value)

    results = gradients_of_both_modes(flow, data, same_noise)
    assert float(results["inverse"][0]) == pytest.approx(float(results["store"][0]), rel=1e-6)
    assert len(flow.trainable_variables) > 5
    assert_same_gradients(flow, results)


def registered_layers():
    """Every flow layer of the package, as `tests/test_layers.py` registers it."""
    from test_layers import REGISTRY  # noqa: PLC0415  (this directory is on the path)

    return REGISTRY


# Dequantize and GaussianNoise add noise, which no recomputation could replay: compile
# refuses them after a layer with weights (test_backprop_argument_is_checked_and_saved,
# tests/test_tarflow.py).
@pytest.mark.parametrize("name", sorted(set(registered_layers()) - {"Dequantize",
                                                                     "GaussianNoise"}))
def test_every_registered_layer(name):
    """Each layer between two ActNorms, so its input is recomputed from its output."""
    event_shape, make, context = registered_layers()[name]
    flow = prepared(tfp_flows.Flow([layers.ActNorm(), make(tf.float32), layers.ActNorm()],
                                   event_shape, context_shape=None if context is None else (3,)))
    x = tf.random.stateless_normal((6,) + tuple(event_shape), seed=(1, 2))
    data = (x,) if context is None else (x, context(tf.float32))
    assert_same_gradients(flow, gradients_of_both_modes(flow, data))


def test_fit_fused_xla_steps_make_the_same_updates():
    """``fit`` under XLA, two steps per execution in one compiled loop; SGD updates agree."""
    x = rng.integers(0, 17, (16, 4, 4, 1))
    labels = rng.integers(0, 3, 16)
    deltas, losses = {}, {}
    for mode in ("store", "inverse"):
        keras.utils.set_random_seed(0)
        flow = tfp_flows.Glow((4, 4, 1), num_levels=2, num_steps=1, hidden_channels=8,
                              num_values=17, num_classes=3)
        randomize_weights(flow, 0, 0.05)  # ActNorm is then initialised by fit
        flow.compile(optimizer=keras.optimizers.SGD(0.01), jit_compile=True,
                     steps_per_execution=2, backprop=mode)
        before = [v.numpy() for v in flow.trainable_variables]
        losses[mode] = flow.fit(x, labels, batch_size=8, epochs=1, shuffle=False,
                                verbose=0).history["loss"]
        deltas[mode] = [v.numpy() - b for v, b in zip(flow.trainable_variables, before)]
    np.testing.assert_allclose(losses["inverse"], losses["store"], rtol=1e-6)
    assert relative_errors(deltas["store"], deltas["inverse"]).max() < RTOL


MEMORY = textwrap.dedent("""
    import glob, json, os, re, shutil, tempfile
    dump = tempfile.mkdtemp(prefix="xla_dump_")
    os.environ["XLA_FLAGS"] = f"--xla_dump_to={dump} --xla_dump_hlo_as_text " \\
        "--xla_dump_hlo_module_re=.*(train_step|_loop).*"
    import keras, numpy as np, tfp_flows
    def temp_bytes(mode, num_steps):
        before = set(glob.glob(dump + "/*buffer-assignment.txt"))
        keras.utils.set_random_seed(0)
        flow = tfp_flows.Glow((8, 8, 2), num_levels=1, num_steps=num_steps,
                              hidden_channels=16, num_values=None)
        flow.compile(optimizer="sgd", jit_compile=True, steps_per_execution=1, backprop=mode)
        x = np.random.default_rng(0).normal(size=(32, 8, 8, 2)).astype(np.float32)
        flow.fit(x, batch_size=32, epochs=1, verbose=0)
        sizes = [sum(int(m) for m in re.findall(r"size (\\d+), preallocated-temp", open(f).read()))
                 for f in set(glob.glob(dump + "/*buffer-assignment.txt")) - before]
        return max(sizes)
    report = {f"{mode}_{n}": temp_bytes(mode, n)
              for mode, n in [("inverse", 1), ("inverse", 4), ("store", 4)]}
    shutil.rmtree(dump, ignore_errors=True)
    print(json.dumps(report))
""")


def test_compiled_step_memory_does_not_grow_with_depth(tmp_path):
    """XLA's own buffer assignment of the compiled step: its temporaries (activations)."""
    temp = run_script(tmp_path, MEMORY)
    assert temp["inverse_4"] < 1.5 * temp["inverse_1"], temp  # the floor, at 4x depth
    assert temp["store_4"] > 2 * temp["inverse_4"], temp  # autodiff keeps every step's


def test_backprop_argument_is_checked_and_saved():
    flow = tfp_flows.RealNVP(2, num_steps=1, hidden_units=(4,))
    with pytest.raises(ValueError, match="expected backprop in"):
        flow.compile(optimizer="sgd", backprop="recompute")
    flow.compile(optimizer="sgd")
    assert flow.get_compile_config()["backprop"] == "store"
    flow.compile(optimizer="sgd", backprop="inverse")
    assert flow.get_compile_config()["backprop"] == "inverse"
    # noise after a layer with weights could not be replayed
    for noise in (layers.Dequantize(17), layers.GaussianNoise(0.1)):
        noisy = tfp_flows.Flow([layers.ActNorm(), noise], (4,))
        with pytest.raises(ValueError, match="before the first layer with weights"):
            noisy.compile(optimizer="sgd", backprop="inverse")


def test_eager_and_graph_training_agree():
    """Without XLA (graph) and eagerly, one SGD step of each mode gives the same weights."""
    x = rng.normal(size=(8, 4)).astype(np.float32)
    weights = {}
    for mode, eager in [("store", False), ("inverse", False), ("inverse", True)]:
        keras.utils.set_random_seed(0)
        flow = prepared(tfp_flows.RealNVP(4, num_steps=2, hidden_units=(8,), coupling="prelu"))
        flow.compile(optimizer=keras.optimizers.SGD(0.01), jit_compile=False, run_eagerly=eager,
                     backprop=mode)
        before = [v.numpy() for v in flow.trainable_variables]
        flow.fit(x, batch_size=8, epochs=1, verbose=0)
        weights[mode, eager] = [v.numpy() - b for v, b in zip(flow.trainable_variables, before)]
    assert relative_errors(weights["store", False], weights["inverse", False]).max() < RTOL
    assert relative_errors(weights["store", False], weights["inverse", True]).max() < RTOL
