"""The convolution with forward-convolution gradients used inside fused training loops."""

import numpy as np
import pytest
import tensorflow as tf

from tfp_flows import _conv


@pytest.mark.parametrize("padding,kernel,size", [("same", 3, 4), ("same", 3, 2), ("valid", 1, 3),
                                                 ("valid", 3, 5), ("same", 5, 3)])
def test_gradients_match_tensorflow(padding, kernel, size):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((2, size, size + 1, 3)), tf.float64)
    k = tf.constant(rng.standard_normal((kernel, kernel, 3, 4)), tf.float64)
    w = tf.constant(rng.standard_normal((2, size if padding == "same" else size - kernel + 1,
                                         (size if padding == "same" else size - kernel + 1) + 1, 4)))

    def loss(x, k):
        return tf.reduce_sum(w * tf.sin(_conv.conv2d(x, k, padding)))

    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, k])
        plain = loss(x, k)
        with _conv.canonical_gradients():
            ours = loss(x, k)
    np.testing.assert_allclose(ours, plain, rtol=1e-12)
    for a, b in zip(tape.gradient(ours, [x, k]), tape.gradient(plain, [x, k])):
        assert float(tf.reduce_max(tf.abs(b))) > 0.1  # gradients that carry signal
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def test_only_stride_one_and_odd_same_kernels_are_supported():
    assert _conv.supported((3, 3, 2, 2), "same", (1, 1), (1, 1))
    assert _conv.supported((2, 2, 2, 2), "valid", (1, 1), (1, 1))
    assert not _conv.supported((2, 2, 2, 2), "same", (1, 1), (1, 1))
    assert not _conv.supported((3, 3, 2, 2), "same", (2, 2), (1, 1))
    assert not _conv.supported((3, 3, 2, 2), "same", (1, 1), (2, 2))
