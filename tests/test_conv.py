"""Convolutions as matrix products, and with forward-convolution gradients inside fused loops."""

import numpy as np
import pytest
import tensorflow as tf

import tfp_flows
from tfp_flows import _conv

FORMS = [  # padding, kernel side, image side, channels in and out: the form it takes
    ("same", 3, 4, 3, 4),  # convolution
    ("valid", 3, 5, 3, 4),  # convolution
    ("same", 5, 3, 3, 4),  # an image smaller than the kernel: patches
    ("same", 3, 2, 4, 3),  # an image smaller than the kernel: taps
    ("valid", 1, 3, 3, 4),  # 1x1: one product
    ("same", 3, 4, 2, 24),  # few input channels: patches
    ("valid", 3, 5, 2, 24),
    ("same", 3, 4, 24, 2),  # few output channels: taps
    ("valid", 3, 5, 24, 2),
]


@pytest.mark.parametrize("padding,kernel,size,channels_in,channels_out", FORMS)
def test_values_and_gradients_match_tensorflow(padding, kernel, size, channels_in,
                                               channels_out):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((2, size, size + 1, channels_in)), tf.float64)
    k = tf.constant(rng.standard_normal((kernel, kernel, channels_in, channels_out)), tf.float64)
    side = size if padding == "same" else size - kernel + 1
    w = tf.constant(rng.standard_normal((2, side, side + 1, channels_out)))

    def loss(x, k, conv=_conv.conv2d):
        return tf.reduce_sum(w * tf.sin(conv(x, k, padding)))

    def tensorflow(x, k, padding):
        return tf.nn.conv2d(x, k, 1, padding.upper())

    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, k])
        theirs = loss(x, k, tensorflow)
        plain = loss(x, k)
        in_loops = loss(x, k, lambda x, k, p: _conv.conv2d_with_forward_gradients(x, k, p))
    expected = tape.gradient(theirs, [x, k])
    for ours in (plain, in_loops):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
        for a, b in zip(tape.gradient(ours, [x, k]), expected):
            assert float(tf.reduce_max(tf.abs(b))) > 0.1  # gradients that carry signal
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_each_shape_takes_its_form():
    def ops(x_shape, k_shape, padding="same"):
        fn = tf.function(lambda x, k: _conv.conv2d(x, k, padding)).get_concrete_function(
            tf.TensorSpec(x_shape), tf.TensorSpec(k_shape))
        return {op.type for op in fn.graph.get_operations()}

    assert "Conv2D" in ops((None, 4, 4, 3), (3, 3, 3, 4))
    for x_shape, k_shape in [((None, 4, 4, 2), (3, 3, 2, 24)), ((None, 4, 4, 24), (3, 3, 24, 2)),
                             ((None, 2, 2, 8), (3, 3, 8, 8)), ((None, 4, 4, 8), (1, 1, 8, 8))]:
        assert "Conv2D" not in ops(x_shape, k_shape) and "MatMul" in ops(x_shape, k_shape)
    assert "Conv2D" in ops((None, None, None, 2), (3, 3, 2, 24))  # unknown image size


def test_only_stride_one_and_odd_same_kernels_are_supported():
    assert _conv.supported((3, 3, 2, 2), "same", (1, 1), (1, 1))
    assert _conv.supported((2, 2, 2, 2), "valid", (1, 1), (1, 1))
    assert not _conv.supported((2, 2, 2, 2), "same", (1, 1), (1, 1))
    assert not _conv.supported((3, 3, 2, 2), "same", (2, 2), (1, 1))
    assert not _conv.supported((3, 3, 2, 2), "same", (1, 1), (2, 2))


def test_convolution_forms_are_visible_and_overridable():
    """"auto" is the matrix forms on this CPU; "native" is ``tf.nn.conv2d`` (one Conv2D in
    the graph, none in the matrix form of a 2 -> 12 channel kernel); bad values refuse."""
    x = tf.random.normal([2, 5, 5, 2])
    kernel = tf.random.normal([3, 3, 2, 24])

    def ops():
        graph = tf.function(lambda x, k: _conv.conv2d(x, k, "same")).get_concrete_function(
            x, kernel).graph
        return {op.type for op in graph.get_operations()}

    assert tfp_flows.config.convolutions() == "matrix"  # no GPU here
    assert "Conv2D" not in ops()
    try:
        tfp_flows.config.set_convolutions("native")
        assert tfp_flows.config.convolutions() == "native" and "Conv2D" in ops()
        np.testing.assert_allclose(_conv.conv2d(x, kernel, "same"),
                                   tf.nn.conv2d(x, kernel, 1, "SAME"), atol=1e-5)
    finally:
        tfp_flows.config.set_convolutions("auto")
    with pytest.raises(ValueError, match="expected one of"):
        tfp_flows.config.set_convolutions("cudnn")
