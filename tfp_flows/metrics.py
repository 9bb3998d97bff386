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

    Returns:
        ``nats / (D ln 2)``, of the type of ``nats``.

    Raises:
        ValueError: ``event_size`` is not a whole number of at least 1.

    Examples:
        >>> import math
        >>> round(bits_per_dim(64 * math.log(2.0), 64), 6)
        1.0
    """
    if int(event_size) < 1 or int(event_size) != event_size:
        raise ValueError(f"bits_per_dim: expected a whole event_size >= 1; got {event_size}.")
    return nats / (int(event_size) * math.log(2.0))


def nll(log_prob, sample_weight=None):
    """The training loss of a batch: ``-sum_i w_i log p(x_i) / N``, nats per example.

    Keras' reduction of a weighted loss (``"sum_over_batch_size"``): weights scale each
    example's term and the sum is divided by the batch size ``N``, not by the sum of the
    weights, so weights of any sign (Monte Carlo weights, importance weights) keep
    their meaning. Without weights it is the mean NLL. Cost O(N).

    Args:
        log_prob: ``[N]`` log-densities.
        sample_weight: None or ``[N]`` weights (``[N, 1]`` is accepted).

    Returns:
        A scalar tensor of the dtype of ``log_prob``.

    Examples:
        >>> import tensorflow as tf
        >>> float(nll(tf.constant([-1.0, -3.0]), tf.constant([1.0, 0.0])))
        0.5
    """
    import tensorflow as tf

    if sample_weight is None:
        return -tf.reduce_mean(log_prob)
    weights = tf.cast(tf.reshape(sample_weight, tf.shape(log_prob)), log_prob.dtype)
    return -tf.reduce_sum(weights * log_prob) / tf.cast(tf.size(log_prob), log_prob.dtype)
