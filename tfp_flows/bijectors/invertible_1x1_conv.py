"""Glow's invertible 1x1 convolution: `LULinear` over the channels of images."""

from __future__ import annotations

import tensorflow as tf

from tfp_flows.bijectors.lu_linear import LULinear


class Invertible1x1Conv(LULinear):
    """``z[h, w] = W x[h, w] + shift`` at every pixel of ``[H, W, C]`` events, ``W`` in LU form.

    Inverse (normalizing): one ``[N*H*W, C] x [C, C]`` matmul, O(H W C^2).
    Forward (sampling): two triangular solves over all pixels at once (the pixels
        are the right-hand-side columns of one solve), O(H W C^2).
    log|det J| of the inverse: ``H * W * sum(log_scale)``, O(C).

    Kingma & Dhariwal, "Glow", arXiv:1807.03039, section 3.2.

    Takes the arguments of `LULinear`, with ``d = C``.
    """

    _event_ndims = 3

    def _positions(self, x):
        shape = x.shape[-3:-1]
        if shape.is_fully_defined():
            return shape.num_elements()
        return tf.reduce_prod(tf.shape(x)[-3:-1])
