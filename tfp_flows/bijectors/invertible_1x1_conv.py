"""Glow's invertible 1x1 convolution: `LULinear` over the channels of images."""

from __future__ import annotations

from tfp_flows.bijectors.lu_linear import LULinear


class Invertible1x1Conv(LULinear):
    """``z[h, w] = W x[h, w] + shift`` at every pixel of ``[H, W, C]`` events, ``W`` in LU form.

    Inverse (normalizing): one ``[N*H*W, C] x [C, C]`` matmul, O(H W C^2).
    Forward (sampling): two triangular solves over all pixels at once (the pixels
        are the right-hand-side columns of one solve), O(H W C^2).
    log|det J| of the inverse: ``H * W * sum(log_scale)``, O(C).

    Kingma & Dhariwal, "Glow", arXiv:1807.03039, section 3.2.

    Takes the arguments of `LULinear`, with ``d = C``.

    Examples:
        >>> import numpy as np
        >>> from tfp_flows.bijectors import random_rotation_lu
        >>> permutation, lower, upper, log_scale, sign = random_rotation_lu(2, seed=0)
        >>> b = Invertible1x1Conv(permutation, lower, upper, log_scale + 0.5, sign, np.zeros(2))
        >>> x = np.ones((1, 4, 4, 2))  # 16 pixels, each with log|det W| = 0 + 2 * 0.5
        >>> round(float(b.inverse_log_det_jacobian(x, event_ndims=3)), 6)
        16.0
    """

    _event_ndims = 3


class TokenLULinear(LULinear):
    """``z[t] = W x[t] + shift`` for every token of ``[T, d]`` events, ``W`` in LU form:
    a learned mixing of each token's values (TarFlow's ``mixing="lu"``).

    Inverse (normalizing): one ``[N*T, d] x [d, d]`` matmul, O(T d^2).
    Forward (sampling): two triangular solves over all tokens at once, O(T d^2).
    log|det J| of the inverse: ``T * sum(log_scale)``, O(d).

    Takes the arguments of `LULinear`.

    Examples:
        >>> import numpy as np
        >>> from tfp_flows.bijectors import random_rotation_lu
        >>> permutation, lower, upper, log_scale, sign = random_rotation_lu(2, seed=0)
        >>> b = TokenLULinear(permutation, lower, upper, log_scale + 0.5, sign, np.zeros(2))
        >>> x = np.ones((1, 5, 2))  # 5 tokens, each with log|det W| = 0 + 2 * 0.5
        >>> round(float(b.inverse_log_det_jacobian(x, event_ndims=2)), 6)
        5.0
    """

    _event_ndims = 2
