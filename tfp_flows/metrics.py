"""Bits per dimension: the figure image-flow papers report, computed in one place."""

from __future__ import annotations

import math


def bits_per_dim(nats, event_size: int):
    """``nats / (D ln 2)``: a negative log-likelihood in nats per example, in bits per entry.

    For discrete data pass the uniform-dequantization bound ``-E_u[log p(k + u)]`` (what
    `Flow.log_prob` returns, negated) to get the bits/dim of the Glow, RealNVP and
    Flow++ papers. Works on Python floats, NumPy arrays and tensors alike, elementwise.

    Args:
        nats: negative log-likelihood(s) of whole examples, in nats.
        event_size: ``D``, the number of entries of one example (``H * W * C`` of an image).

    Example:
        >>> import math
        >>> round(bits_per_dim(64 * math.log(2.0), 64), 6)
        1.0
    """
    if int(event_size) < 1 or int(event_size) != event_size:
        raise ValueError(f"bits_per_dim: expected a whole event_size >= 1; got {event_size}.")
    return nats / (int(event_size) * math.log(2.0))
