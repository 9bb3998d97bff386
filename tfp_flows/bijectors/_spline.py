"""The monotone rational-quadratic spline of neural spline flows, as tensor maths.

Durkan, Bekasov, Murray & Papamakarios, "Neural Spline Flows", arXiv:1906.04032.

``K`` bins on ``[-B, B]``; knots ``(x_k, y_k)`` with ``x_0 = y_0 = -B``,
``x_K = y_K = B`` and derivatives ``d_k > 0`` (``d_0 = d_K = 1``). Inside bin
``k``, with ``w = x_{k+1} - x_k``, ``h = y_{k+1} - y_k``, ``s = h / w`` and
``xi = (x - x_k) / w`` in ``[0, 1]``::

    g(x)  = y_k + h (s xi^2 + d_k xi (1 - xi)) / (s + (d_{k+1} + d_k - 2 s) xi (1 - xi))
    g'(x) = s^2 (d_{k+1} xi^2 + 2 s xi (1 - xi) + d_k (1 - xi)^2)
            / (s + (d_{k+1} + d_k - 2 s) xi (1 - xi))^2

and ``g(x) = x`` outside ``[-B, B]`` (linear tails; ``d_0 = d_K = 1`` makes the
derivative continuous at the ends). The inverse solves ``a xi^2 + b xi + c = 0`` in
the form ``xi = 2c / (-b - sqrt(b^2 - 4ac))``, which has no cancellation (A.3).

`tfb.RationalQuadraticSpline` computes the same values, but runs its bin search
(``searchsorted`` and six gathers) once for the value and again for the log-det,
and its inverse log-det is the forward log-det at the recomputed ``x``: three
searches on the training path where one does. Here one search serves the value
and the log-det of either direction, the outer knots are exactly ``-B`` and
``B``, and out-of-range inputs are clipped before the maths so that the unused
branch of ``tf.where`` never carries a NaN into a gradient.

Every function is elementwise over the leading axes: ``x`` has shape ``S`` and the
spline parameters shape ``S + (K + 1,)`` (any batch of splines), so the cost is
O(K) per element.
"""

from __future__ import annotations

import math

import tensorflow as tf

# The smallest knot derivative, and the smallest ratio of two bins' sizes: every bin
# stays invertible in float32. zuko's parametrisation (github.com/probabilists/zuko):
# the conditioner's values are soft-clipped, ``v / (1 + |v| / c)``, to ``|v| < c``, with
# ``c = -log(MIN_SLOPE)`` for log-derivatives (derivatives ``exp(v)`` in
# ``(MIN_SLOPE, 1 / MIN_SLOPE)``) and ``c / 2`` for the sizes before their softmax.
MIN_SLOPE = 1e-3
_LOG_BOUND = -math.log(MIN_SLOPE)


def num_spline_params(num_bins: int) -> int:
    """Unconstrained values per transformed element: ``K`` widths, ``K`` heights and
    ``K - 1`` interior derivatives.

    Args:
        num_bins: ``K``.

    Returns:
        ``3K - 1``.

    Examples:
        >>> num_spline_params(8)
        23
    """
    return 3 * int(num_bins) - 1


def check_spline_args(where: str, num_bins, bound) -> tuple[int, float]:
    """``(num_bins, bound)`` as ``int``, ``float``; ValueError unless K >= 2 and B > 0.

    Args:
        where: what the message names first (the caller).
        num_bins: ``K``, the number of bins.
        bound: ``B``: the spline maps ``[-B, B]`` and is the identity outside.

    Returns:
        ``(int(num_bins), float(bound))``.

    Raises:
        ValueError: ``K < 2`` or ``B <= 0``.

    Examples:
        >>> check_spline_args("NSF", 8, 3)
        (8, 3.0)
    """
    if int(num_bins) != num_bins or int(num_bins) < 2:
        raise ValueError(f"{where}: expected num_bins an integer >= 2; got {num_bins!r}.")
    if not float(bound) > 0:
        raise ValueError(f"{where}: expected bound > 0; got {bound!r}.")
    return int(num_bins), float(bound)


def soft_clip(value, bound: float):
    """``v / (1 + |v| / c)``: the identity near 0, ``|.| < c``, gradient ``1 / (1 + |v| / c)^2``."""
    return value / (1.0 + tf.abs(value) / bound)


def _knots(unnormalized, bound):
    """Knot positions ``[-B, ..., B]`` from ``K`` unconstrained sizes (soft clip, softmax)."""
    sizes = soft_clip(unnormalized, _LOG_BOUND / 2.0)
    # The softmax written out: tf.nn.softmax takes at most 5 axes on a CPU, and image
    # couplings with two batch axes have 6.
    sizes = tf.exp(sizes - tf.reduce_logsumexp(sizes, axis=-1, keepdims=True))
    inner = tf.cumsum(sizes[..., :-1], axis=-1)  # the last knot is pinned to exactly B
    zeros = tf.zeros_like(sizes[..., :1])
    cumulative = tf.concat([zeros, inner, zeros + 1.0], axis=-1)
    return bound * (2.0 * cumulative - 1.0)


def spline_knots(theta, num_bins: int, bound: float):
    """Knots of one spline per element from the conditioner's ``3K - 1`` values.

    Args:
        theta: ``[..., 3K - 1]``: unconstrained widths, heights, interior log-derivatives.
        num_bins: ``K``.
        bound: ``B``.

    Returns:
        ``(x_knots, y_knots, derivatives)``, each ``[..., K + 1]``. Sizes are the
        softmax of the soft-clipped values; derivatives ``exp(soft_clip(r))``, in
        ``(MIN_SLOPE, 1 / MIN_SLOPE)``, and 1 at both ends: a zero-initialised
        conditioner (equal bins, unit slopes) is the identity, and ``log d`` moves one for
        one with ``r`` near it (the gradient a MADE sees; a softplus gives 0.63).
    """
    widths, heights, raw = tf.split(theta, [num_bins, num_bins, num_bins - 1], axis=-1)
    inner = tf.exp(soft_clip(raw, _LOG_BOUND))
    ones = tf.ones_like(inner[..., :1])
    return (_knots(widths, bound), _knots(heights, bound),
            tf.concat([ones, inner, ones], axis=-1))


def _bin(knots, value):
    """One-hot ``[..., K]`` of the bin holding ``value`` (already clipped to ``[-B, B]``).

    A comparison count instead of ``searchsorted``: O(K), and plain elementwise ops
    that XLA fuses. A value exactly on knot ``k`` falls in bin ``k`` (``xi = 0``).
    """
    index = tf.reduce_sum(tf.cast(value[..., None] >= knots[..., 1:-1], tf.int32), axis=-1)
    return tf.one_hot(index, knots.shape[-1] - 1, dtype=value.dtype)


def _pick(one_hot, values):
    """``(values[k], values[k + 1])`` for the bin ``k`` of ``one_hot``."""
    return (tf.reduce_sum(one_hot * values[..., :-1], axis=-1),
            tf.reduce_sum(one_hot * values[..., 1:], axis=-1))


def _bin_terms(knots, value, use_y):
    x_knots, y_knots, derivatives = knots
    one_hot = _bin(y_knots if use_y else x_knots, value)
    x_k, x_k1 = _pick(one_hot, x_knots)
    y_k, y_k1 = _pick(one_hot, y_knots)
    d_k, d_k1 = _pick(one_hot, derivatives)
    width, height = x_k1 - x_k, y_k1 - y_k
    return x_k, y_k, width, height, height / width, d_k, d_k1


def _log_derivative(xi, slope, d_k, d_k1):
    """``log g'`` at ``xi`` in one bin (Durkan et al., eq. 5)."""
    one_minus = 1.0 - xi
    denominator = slope + (d_k1 + d_k - 2.0 * slope) * xi * one_minus
    numerator = d_k1 * xi ** 2 + 2.0 * slope * xi * one_minus + d_k * one_minus ** 2
    return 2.0 * tf.math.log(slope) + tf.math.log(numerator) - 2.0 * tf.math.log(denominator)


def _inside(value, bound):
    return (value > -bound) & (value < bound)


def rational_quadratic_forward(x, knots, bound: float):
    """``(g(x), log g'(x))`` elementwise; ``g`` is the identity outside ``[-B, B]``.

    Cost: O(K) per element (one bin search, closed form).
    """
    inside = _inside(x, bound)
    clipped = tf.clip_by_value(x, -bound, bound)
    x_k, y_k, width, height, slope, d_k, d_k1 = _bin_terms(knots, clipped, use_y=False)
    xi = tf.clip_by_value((clipped - x_k) / width, 0.0, 1.0)
    one_minus = 1.0 - xi
    denominator = slope + (d_k1 + d_k - 2.0 * slope) * xi * one_minus
    y = y_k + height * (slope * xi ** 2 + d_k * xi * one_minus) / denominator
    log_det = _log_derivative(xi, slope, d_k, d_k1)
    return tf.where(inside, y, x), tf.where(inside, log_det, tf.zeros_like(log_det))


def rational_quadratic_inverse(y, knots, bound: float):
    """``(g^-1(y), log |d g^-1 / dy|)`` elementwise, the root of the bin's quadratic.

    Cost: O(K) per element (one bin search, one square root).
    """
    inside = _inside(y, bound)
    clipped = tf.clip_by_value(y, -bound, bound)
    x_k, y_k, width, height, slope, d_k, d_k1 = _bin_terms(knots, clipped, use_y=True)
    relative = clipped - y_k
    curvature = d_k1 + d_k - 2.0 * slope
    a = height * (slope - d_k) + relative * curvature
    b = height * d_k - relative * curvature
    c = -slope * relative
    # b^2 - 4ac >= 0 in exact arithmetic (Durkan et al., A.3); rounding may not agree.
    discriminant = tf.maximum(b ** 2 - 4.0 * a * c, 0.0)
    xi = tf.clip_by_value((2.0 * c) / (-b - tf.sqrt(discriminant)), 0.0, 1.0)
    x = x_k + xi * width
    log_det = -_log_derivative(xi, slope, d_k, d_k1)
    return tf.where(inside, x, y), tf.where(inside, log_det, tf.zeros_like(log_det))


class RationalQuadraticSpline:
    """The elementwise map of `SplineCoupling` and of a spline `MaskedAutoregressive`.

    ``forward(x, params)`` and ``inverse(y, params)`` return ``(value, elementwise
    log-det of that direction)``; ``params`` is the list of ``3K - 1`` tensors shaped
    like ``x`` that a conditioner's output splits into. Zero parameters are the identity.

    Args:
        num_bins: ``K >= 2``.
        bound: ``B > 0``; the identity outside ``[-B, B]``.
    """

    def __init__(self, num_bins: int = 8, bound: float = 3.0):
        self.num_bins, self.bound = check_spline_args("RationalQuadraticSpline", num_bins, bound)
        self.num_params = num_spline_params(self.num_bins)

    def _knots(self, params, dtype):
        theta = tf.cast(tf.stack(params, axis=-1), dtype)
        return spline_knots(theta, self.num_bins, self.bound)

    def forward(self, x, params):
        return rational_quadratic_forward(x, self._knots(params, x.dtype), self.bound)

    def inverse(self, y, params):
        return rational_quadratic_inverse(y, self._knots(params, y.dtype), self.bound)

    def get_config(self) -> dict:
        return {"class_name": "RationalQuadraticSpline", "num_bins": self.num_bins,
                "bound": self.bound}
