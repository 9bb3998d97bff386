"""A stride-1 2-D convolution whose gradients are plain ``NHWC`` convolutions.

Why: XLA's CPU backend rewrites a convolution into the ``NHWC x HWIO`` form its fast
(Eigen) kernel takes only outside loops. Inside the ``tf.while_loop`` of
`tfp_flows.models.fused_steps`, TensorFlow's filter gradient (``Conv2DBackpropFilter``,
lowered with batch and feature axes swapped) falls to XLA's naive loop emitter and
is 20x slower. Written out as forward convolutions the gradients stay fast:

    dx = conv(pad(dy), flip(K)^T)                      (a "full" correlation)
    dK[i, j, c, o] = sum_{b, h, w} pad(x)[b, h + i, w + j, c] dy[b, h, w, o]
                   = conv(pad(x)^T, dy^T)  with batch <-> channels swapped

Same cost as TensorFlow's gradients (one convolution each) plus two transposes.
Used only while `canonical_gradients` is active (the fused training loop).
"""

from __future__ import annotations

import contextlib
import threading

import tensorflow as tf

_state = threading.local()


@contextlib.contextmanager
def canonical_gradients():
    """Inside: `conv2d` uses the forward-convolution gradients above."""
    previous = getattr(_state, "active", False)
    _state.active = True
    try:
        yield
    finally:
        _state.active = previous


def supported(kernel_shape, padding: str, strides, dilation_rate) -> bool:
    """Stride 1, no dilation, ``valid`` or ``same`` with odd kernel sides."""
    odd = all(int(k) % 2 == 1 for k in kernel_shape[:2])
    return (tuple(strides) == (1, 1) and tuple(dilation_rate) == (1, 1)
            and (padding == "valid" or padding == "same" and odd))


def conv2d(x, kernel, padding: str):
    """``NHWC`` convolution, stride 1; ``padding`` is ``"same"`` or ``"valid"``."""
    if not getattr(_state, "active", False):
        return tf.nn.conv2d(x, kernel, 1, padding.upper())
    return _conv2d_with_forward_gradients(x, kernel, padding)


def _conv2d_with_forward_gradients(x, kernel, padding):
    kh, kw = int(kernel.shape[0]), int(kernel.shape[1])
    ph, pw = (kh // 2, kw // 2) if padding == "same" else (0, 0)

    @tf.custom_gradient
    def conv(x, kernel):
        def grad(dy):
            flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
            full = [[0, 0], [kh - 1 - ph] * 2, [kw - 1 - pw] * 2, [0, 0]]
            dx = tf.nn.conv2d(tf.pad(dy, full), flipped, 1, "VALID")
            dk = tf.nn.conv2d(tf.transpose(x_padded, [3, 1, 2, 0]),
                              tf.transpose(dy, [1, 2, 0, 3]), 1, "VALID")
            return dx, tf.transpose(dk, [1, 2, 0, 3])

        x_padded = tf.pad(x, [[0, 0], [ph, ph], [pw, pw], [0, 0]])  # kept for dk
        return tf.nn.conv2d(x_padded, kernel, 1, "VALID"), grad

    return conv(x, kernel)
