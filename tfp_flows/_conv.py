"""Stride-1 2-D convolutions that XLA's CPU backend runs at matrix-product speed.

A convolution ``y[b, h, w, o] = sum_{i, j, c} pad(x)[b, h + i, w + j, c] K[i, j, c, o]``
is computed in one of three forms, the cheapest for its shape (all exact, same results
as ``tf.nn.conv2d`` up to rounding):

- **1x1**: one matrix product over the channels, ``y = x K[0, 0]``.
- **Unfolded** (a side with few channels, or an image smaller than the kernel): one
  matrix product with the unfolded side. With few input channels, the input's
  ``kh kw C_in`` patches times ``K`` reshaped to ``[kh kw C_in, C_out]``
  (``patches_times_kernel``). With few output channels, each tap's product
  ``t = x K[i, j]`` first (one ``[C_in, kh kw C_out]`` product), then the sum of the
  shifted windows ``y[h, w] = sum_{i, j} pad(t)[h + i, w + j, (i, j)]``
  (``taps_then_shift``). Extra memory: ``kh kw min(C_in, C_out)`` values per pixel,
  at most the larger side's. Glow's conditioners open with a 3x3 convolution from 2
  to 12 channels and end with one to 4 to 24: Eigen runs those shapes and their
  gradients far below its matrix speed, and XLA differentiates these forms into
  matrix products, pads and slices. The 2-level digits Glow trained at 2,903 images/s
  before and 5,799 after on a 2-core CPU (``python -m benchmarks glow_digits``). XLA also
  swaps the operands of a convolution whose kernel is larger than its image (3x3
  on Glow's 2x2 last level), a form its CPU backend leaves to a naive loop.
- **Convolution** otherwise, with the gradients written as forward ``NHWC``
  convolutions on a CPU (`forward_gradients`): inside a ``tf.while_loop`` (the fused
  training loop) TensorFlow's filter gradient (``Conv2DBackpropFilter``, lowered with
  batch and feature axes swapped) falls to XLA's naive loop emitter and is 20x slower,
  while

      dx = conv(pad(dy), flip(K)^T)                      (a "full" correlation)
      dK[i, j, c, o] = sum_{b, h, w} pad(x)[b, h + i, w + j, c] dy[b, h, w, o]
                     = conv(pad(x)^T, dy^T)  with batch <-> channels swapped

  stay on the fast kernel: one convolution each, plus two transposes.

Which forms run (`tfp_flows.config.set_convolutions`): ``"auto"`` (the default) takes
the forms above where no GPU is visible and TensorFlow's own ``tf.nn.conv2d`` (cuDNN's
convolutions and gradients) where one is, since they were chosen by CPU profiles and no
GPU measurement shows them faster there; ``"matrix"`` and ``"native"`` force one or the
other on any device (``benchmarks/gpu.sh`` measures both).

Cost of every form: O(batch H W kh kw C_in C_out).
"""

from __future__ import annotations

import os

import tensorflow as tf

FORMS = ("auto", "matrix", "native")
"""The settings of `tfp_flows.config.set_convolutions`."""

ENVIRONMENT = "TFP_FLOWS_CONVOLUTIONS"
"""The environment variable that sets the forms at import (one of `FORMS`)."""

_setting = {"forms": os.environ.get(ENVIRONMENT, "auto")}


def set_forms(forms: str) -> None:
    """See `tfp_flows.config.set_convolutions`."""
    if forms not in FORMS:
        raise ValueError(f"set_convolutions: expected one of {list(FORMS)}; got {forms!r}.")
    _setting["forms"] = forms


def forms() -> str:
    """The forms steps traced now take: ``"matrix"`` or ``"native"`` (``"auto"``
    resolved on the visible devices)."""
    setting = _setting["forms"]
    if setting not in FORMS:
        raise ValueError(f"{ENVIRONMENT}: expected one of {list(FORMS)}; got {setting!r}.")
    if setting == "auto":
        return "native" if tf.config.list_logical_devices("GPU") else "matrix"
    return setting


def forward_gradients() -> bool:
    """Whether convolutions take the forward-convolution gradients above: where no GPU
    is visible (a GPU keeps cuDNN's own gradients). Read when a step is traced."""
    return not tf.config.list_logical_devices("GPU")


def supported(kernel_shape, padding: str, strides, dilation_rate) -> bool:
    """Stride 1, no dilation, ``valid`` or ``same`` with odd kernel sides."""
    odd = all(int(k) % 2 == 1 for k in kernel_shape[:2])
    return (tuple(strides) == (1, 1) and tuple(dilation_rate) == (1, 1)
            and (padding == "valid" or padding == "same" and odd))


def conv2d(x, kernel, padding: str):
    """``NHWC`` convolution, stride 1; ``padding`` is ``"same"`` or ``"valid"``: in the
    cheapest matrix-product form, or ``tf.nn.conv2d`` where `forms` says ``"native"``."""
    if forms() == "native":
        return tf.nn.conv2d(x, kernel, 1, padding.upper())
    kh, kw, channels_in, channels_out = (int(n) for n in kernel.shape)
    if kh == kw == 1:
        return tf.tensordot(x, kernel[0, 0], 1)
    image = x.shape[-3:-1]
    if None not in image and x.shape.rank == 4:
        unfolded = kh * kw * min(channels_in, channels_out)
        if unfolded <= max(channels_in, channels_out) or image[0] * image[1] < kh * kw:
            if channels_in <= channels_out:
                return patches_times_kernel(x, kernel, padding)
            return taps_then_shift(x, kernel, padding)
    if not forward_gradients():
        return tf.nn.conv2d(x, kernel, 1, padding.upper())
    return conv2d_with_forward_gradients(x, kernel, padding)


def _padding(kernel, padding):
    kh, kw = int(kernel.shape[0]), int(kernel.shape[1])
    return (kh // 2, kw // 2) if padding == "same" else (0, 0)


def _output_size(x, kernel, padding):
    (ph, pw), (kh, kw) = _padding(kernel, padding), kernel.shape[:2]
    return int(x.shape[-3]) + 2 * ph - int(kh) + 1, int(x.shape[-2]) + 2 * pw - int(kw) + 1


def patches_times_kernel(x, kernel, padding):
    """``[B, H, W, kh kw C_in]`` patches of ``pad(x)`` times ``K`` as a ``[kh kw C_in, C_out]``
    matrix. Cost O(B H W kh kw C_in C_out); memory ``kh kw C_in`` values per pixel."""
    kh, kw, channels_in, channels_out = (int(n) for n in kernel.shape)
    (ph, pw), (height, width) = _padding(kernel, padding), _output_size(x, kernel, padding)
    x_padded = tf.pad(x, [[0, 0], [ph, ph], [pw, pw], [0, 0]])
    patches = tf.concat([x_padded[:, i:i + height, j:j + width, :]
                         for i in range(kh) for j in range(kw)], axis=-1)
    return tf.tensordot(patches, tf.reshape(kernel, [kh * kw * channels_in, channels_out]), 1)


def taps_then_shift(x, kernel, padding):
    """``t = x K[i, j]`` for every tap at once, then ``y[h, w] = sum_{i, j} pad(t)[h + i,
    w + j, (i, j)]``. Cost O(B H W kh kw C_in C_out); memory ``kh kw C_out`` values per pixel."""
    kh, kw, channels_in, channels_out = (int(n) for n in kernel.shape)
    (ph, pw), (height, width) = _padding(kernel, padding), _output_size(x, kernel, padding)
    per_tap = tf.reshape(tf.transpose(kernel, [2, 0, 1, 3]), [channels_in, kh * kw * channels_out])
    t = tf.tensordot(x, per_tap, 1)
    t = tf.reshape(t, tf.concat([tf.shape(t)[:-1], [kh * kw, channels_out]], 0))
    t = tf.pad(t, [[0, 0], [ph, ph], [pw, pw], [0, 0], [0, 0]])
    return tf.add_n([t[:, i:i + height, j:j + width, i * kw + j, :]
                     for i in range(kh) for j in range(kw)])


def conv2d_with_forward_gradients(x, kernel, padding):
    """``tf.nn.conv2d`` whose gradients are forward convolutions (see above)."""
    kh, kw = int(kernel.shape[0]), int(kernel.shape[1])
    ph, pw = _padding(kernel, padding)

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

    return conv(x, tf.convert_to_tensor(kernel))  # a tensor: the variable's gradient flows
