"""Exported SavedModels: loaded without tfp_flows or TFP, same numbers, stock ops only."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework import op_def_registry

import tfp_flows
from tfp_flows import data


def train(flow, x, context=None, jit=True):
    flow.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=jit)
    flow.fit(x, context, batch_size=32, epochs=1, verbose=0)
    return flow


def make_case(kind, digits_like=None):
    moons = data.two_moons(64)[0]
    if kind == "realnvp":
        return train(tfp_flows.RealNVP(2, num_steps=2, hidden_units=(8,)), moons), moons, None, None
    if kind == "realnvp_vector_context":
        context = np.random.default_rng(1).standard_normal((64, 3)).astype(np.float32)
        flow = tfp_flows.RealNVP(2, num_steps=2, hidden_units=(8,), coupling="prelu",
                                 context_shape=(3,))
        return train(flow, moons, context, jit=False), moons, context, context[0]
    # One Glow (additive couplings, class labels); the affine Glow is exported in
    # float64 by tests/test_trust.py, and flows without a context by the cases above.
    x, labels = digits_like(32)
    flow = tfp_flows.Glow((8, 8, 1), num_steps=1, hidden_channels=8, num_values=17,
                          coupling="additive", num_classes=10)
    return train(flow, x, labels), x, labels.astype(np.int64), np.int64(3)


@pytest.mark.parametrize("kind", ["realnvp", "realnvp_vector_context", "glow_labels"])
def test_every_signature_matches_the_model_without_the_package(kind, tmp_path, digits_like,
                                                               serve):
    flow, x, context, one_context = make_case(kind, digits_like)
    model_dir = flow.export(tmp_path / "model")
    assert model_dir == tmp_path / "model" / "1"
    x = x[:8].astype(np.float32)
    extra = {} if context is None else {"context": context[:8]}
    z = flow.encode(x, None if context is None else context[:8]).numpy()
    inputs = {"serving_default.x": x, "log_prob.x": x, "encode.x": x, "decode.z": z,
              "sample.num_samples": np.int32(5), "sample.seed": np.int64(11),
              "sample.temperature": np.float32(0.8)}
    for key, value in extra.items():
        for sig in ("serving_default", "log_prob", "encode", "decode"):
            inputs[f"{sig}.{key}"] = value
    if one_context is not None:
        inputs["sample.context"] = one_context
    out = serve(model_dir, inputs)  # a fresh process without the package (conftest)

    c = None if context is None else context[:8]
    log_prob = flow.log_prob(x if not flow.discrete else x.astype(np.int32), c).numpy()
    np.testing.assert_allclose(out["serving_default.log_prob"], log_prob, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["log_prob.log_prob"], log_prob, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["log_prob.bits_per_dim"], flow.bits_per_dim(x, c), rtol=1e-5)
    np.testing.assert_allclose(out["log_prob.score"], flow.score(x, c), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["encode.z"], z, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["decode.x"], flow.decode(z, c), rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(out["sample.x"],
                                  flow.sample(5, context=one_context, seed=11, temperature=0.8))
    if kind == "glow_labels":  # the served graph refuses what the flow refuses
        served = tf.saved_model.load(str(model_dir)).signatures["log_prob"]
        pixels = x[:2].copy()
        pixels[0, 0, 0, 0] = 40.0
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"whole pixel values in \[0, 17\)"):
            served(x=tf.constant(pixels), context=tf.constant(context[:2]))
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"integers in \[0, 10\)"):
            served(x=tf.constant(x[:2]), context=tf.constant([1, 12], tf.int64))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("served")
    flow = make_case("realnvp")[0]
    return flow, flow.export(root / "moons")


def test_versions_and_overwrite(exported):
    flow, model_dir = exported
    root = model_dir.parent
    with pytest.raises(FileExistsError, match="next_version=True"):
        flow.export(root)
    assert flow.export(root, next_version=True) == root / "2"
    assert tfp_flows.export.export(flow, root, version=1, overwrite=True) == root / "1"
    assert sorted(p.name for p in root.iterdir()) == ["1", "2"]
    shutil.rmtree(root / "2")


def test_graph_has_only_stock_ops(exported):
    _, model_dir = exported
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((model_dir / "saved_model.pb").read_bytes())
    ops = set()
    for meta in proto.meta_graphs:
        ops |= {node.op for node in meta.graph_def.node}
        for function in meta.graph_def.library.function:
            ops |= {node.op for node in function.node_def}
    library = {f.signature.name for m in proto.meta_graphs for f in m.graph_def.library.function}
    assert ops, "no ops found"
    forbidden = ops & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}
    unknown = {op for op in ops - library if op_def_registry.get(op) is None}
    assert not forbidden and not unknown, (forbidden, unknown)


def test_saved_model_cli_shows_and_runs(exported, tmp_path):
    flow, model_dir = exported
    cli = shutil.which("saved_model_cli") or os.path.join(os.path.dirname(sys.executable),
                                                          "saved_model_cli")
    shown = subprocess.run([cli, "show", "--dir", str(model_dir), "--all"], capture_output=True,
                           text=True, check=True, timeout=300).stdout
    for name in tfp_flows.export.SIGNATURES:
        assert f"signature_def['{name}']" in shown
    assert "shape: (-1, 2)" in shown
    x = data.two_moons(6, seed=9)[0]
    np.save(tmp_path / "x.npy", x)
    subprocess.run([cli, "run", "--dir", str(model_dir), "--tag_set", "serve", "--signature_def",
                    "serving_default", "--inputs", f"x={tmp_path / 'x.npy'}", "--outdir",
                    str(tmp_path / "out")], capture_output=True, text=True, check=True, timeout=300)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "log_prob.npy"), flow.log_prob(x),
                               rtol=1e-5, atol=1e-5)


def test_readme_rest_request_body(exported):
    """The body the README sends to TensorFlow Serving's REST predict endpoint."""
    flow, model_dir = exported
    body = json.loads(json.dumps({"signature_name": "log_prob",
                                  "instances": [{"x": [0.5, 0.25]}, {"x": [1.5, -0.3]}]}))
    model = tf.saved_model.load(str(model_dir))
    signature = model.signatures[body["signature_name"]]
    x = tf.constant([instance["x"] for instance in body["instances"]], tf.float32)
    served = signature(x=x)
    np.testing.assert_allclose(served["log_prob"], flow.log_prob(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((3, 3), np.float32), r"expected x of shape \[batch, 2\]"),
    (np.zeros((3, 2, 1), np.float32), r"expected x of shape \[batch, 2\]|shape"),
    (np.zeros((3, 2), np.int32), "float|dtype|int32"),
])
def test_bad_served_input_names_the_expected_shape(exported, bad, message):
    _, model_dir = exported
    model = tf.saved_model.load(str(model_dir))
    with pytest.raises((tf.errors.InvalidArgumentError, ValueError, TypeError), match=message):
        model.signatures["log_prob"](x=tf.constant(bad))


def test_graph_methods_in_a_user_tf_function_give_the_eager_numbers(digits_like):
    """The public seam the exporter uses: checked tensors in, tensors out, traceable."""
    from tfp_flows.models import inputs
    from tfp_flows.testing import randomize_weights

    keras.utils.set_random_seed(0)
    flow = tfp_flows.Glow((8, 8, 1), num_steps=1, hidden_channels=8, num_values=17, num_classes=10)
    randomize_weights(flow, seed=1)
    x, labels = digits_like(6)

    @tf.function(autograph=False)
    def graph(x, labels):
        x, c = inputs.check_x(flow, x), inputs.check_context(flow, labels, x)
        z = flow.graph_encode(x, c)
        return {"log_prob": flow.graph_log_prob(x, c, seed=tf.constant([5, 0], tf.int64)),
                "score": flow.graph_score(x, c), "z": z, "x": flow.graph_decode(z, c),
                "sample": flow.graph_sample(4, labels[0], seed=7, temperature=0.6)}

    out = graph(tf.constant(x), tf.constant(labels))
    np.testing.assert_allclose(out["log_prob"], flow.log_prob(x, labels, seed=5), rtol=1e-5)
    assert not np.allclose(out["log_prob"], out["score"])  # a draw of u, not the midpoint
    np.testing.assert_allclose(out["score"], flow.score(x, labels), rtol=1e-5)
    np.testing.assert_allclose(out["z"], flow.encode(x, labels), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["x"], flow.decode(out["z"], labels), rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(out["sample"],
                                  flow.sample(4, context=labels[0], seed=7, temperature=0.6))
    assert out["sample"].shape == (4, 8, 8, 1)
    # The training density: fresh noise from the layer's generator on every call (run
    # last, and once before comparing: its first call initialises ActNorm from the data).
    train = tf.function(lambda x, c: flow.graph_log_prob(x, c, training=True), autograph=False)
    first, second, third = (train(tf.constant(x), tf.constant(labels)) for _ in range(3))
    first, second = second, third
    assert np.isfinite(first).all() and not np.allclose(first, second)
    with pytest.raises(ValueError, match="expected a seed"):
        flow.graph_log_prob(tf.constant(x), tf.constant(labels))
    with pytest.raises(ValueError, match="expected seed=None with training=True"):
        flow.graph_log_prob(tf.constant(x), tf.constant(labels), seed=[0, 0], training=True)
