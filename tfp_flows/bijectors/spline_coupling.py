"""Rational-quadratic spline coupling (neural spline flows)."""

from __future__ import annotations

from tfp_flows.bijectors._coupling import Coupling
from tfp_flows.bijectors._spline import RationalQuadraticSpline, check_spline_args


class SplineCoupling(Coupling):
    """``y_b = g(x_b; theta)``, ``g`` a monotone rational-quadratic spline per entry.

    ``theta = conditioner(x_a)`` holds ``3K - 1`` values per entry of ``x_b``: ``K``
    bin widths and ``K`` heights (softmax with a floor, so the ``K`` bins tile
    ``[-B, B]``) and ``K - 1`` interior knot derivatives (softplus with a floor;
    the two outer ones are 1). Outside ``[-B, B]`` the map is the identity, with a
    continuous derivative at ``+-B``. A zero conditioner output is the identity.
    The conditioner's last axis is ``3K - 1`` blocks of ``C_b`` values: parameter
    ``j`` of entry ``i`` is at ``j * C_b + i``. The maths is in
    `tfp_flows.bijectors._spline`.

    Forward (sampling): O(K * size of x_b) after one conditioner call, closed form.
    Inverse (normalizing): the root of one quadratic per entry, same cost.
    log|det J| of the forward: ``sum log g'(x_b)``, elementwise, O(size of x_b).

    Durkan et al., "Neural Spline Flows", arXiv:1906.04032.

    Args: those of `Coupling`, and
        num_bins: ``K >= 2``; default 8.
        bound: ``B > 0``; default 3.

    Examples:
        >>> import tensorflow as tf
        >>> zero = lambda x_a: tf.zeros(tf.concat([tf.shape(x_a)[:-1], [23]], 0))
        >>> SplineCoupling(zero, num_bins=8).forward(tf.ones((2, 2))).shape
        TensorShape([2, 2])
    """

    def __init__(self, conditioner, partition=None, context=None, event_ndims: int = 1,
                 num_bins: int = 8, bound: float = 3.0, validate_args: bool = False,
                 name: str = "SplineCoupling"):
        parameters = dict(locals())
        self._spline = RationalQuadraticSpline(*check_spline_args("SplineCoupling", num_bins,
                                                                  bound))
        self.num_params = self._spline.num_params
        super().__init__(conditioner, partition, context, event_ndims, validate_args, name,
                         parameters)

    @property
    def num_bins(self) -> int:
        return self._spline.num_bins

    @property
    def bound(self) -> float:
        return self._spline.bound

    def forward_b(self, x_b, params):
        return self._spline.forward(x_b, params)

    def inverse_b(self, y_b, params):
        return self._spline.inverse(y_b, params)
