"""The coupling template: split, one conditioner call, an elementwise map of ``x_b``, merge."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from tfp_flows.bijectors._base import FlowBijector, check_floating
from tfp_flows.bijectors.partitions import HalfSplit


def soft_bound(value, bound: float):
    """``bound * tanh(value / bound)``: the identity near 0, never beyond ``+-bound``."""
    return bound * tf.tanh(value / bound)


class Coupling(FlowBijector):
    """``y_a = x_a``, ``y_b = g(x_b; theta)`` with ``theta = conditioner(x_a[, context])``.

    The Jacobian is block triangular, so ``log|det J| = sum over x_b of log|g'|``.
    Split and merge are the partition's; the conditioner runs once per call,
    shared by the transform and its log-det in ``inverse_and_log_det``.

    Subclasses set ``num_params`` and implement ``_forward_b(x_b, params)`` and
    ``_inverse_b(y_b, params)``, each returning ``(output, elementwise log|g'|)``
    in its own direction.

    Args:
        conditioner: callable ``x_a -> theta`` (or ``(x_a, context) -> theta`` when a
            context is given), returning ``num_params * C_b`` values on the last axis.
        partition: `HalfSplit` (default) or `Checkerboard`.
        context: optional tensor handed to the conditioner.
        event_ndims: 1 for vectors, 3 for ``[H, W, C]`` images.
        parameters: a subclass's ``dict(locals())``, so that TFP's ``parameters``
            (and ``copy()``) hold every constructor argument of the subclass.
    """

    num_params = 1

    def __init__(self, conditioner: Callable, partition=None, context=None, event_ndims: int = 1,
                 validate_args: bool = False, name: str | None = None, parameters=None):
        parameters = dict(locals()) if parameters is None else parameters
        if not callable(conditioner):
            raise ValueError(f"{type(self).__name__}: expected a callable conditioner; "
                             f"got {type(conditioner).__name__}.")
        self._conditioner = conditioner
        self._partition = partition if partition is not None else HalfSplit()
        self._context = context
        super().__init__(forward_min_event_ndims=event_ndims, validate_args=validate_args,
                         parameters=parameters, name=name or type(self).__name__)

    def _params(self, x_a, x_b):
        theta = (self._conditioner(x_a) if self._context is None
                 else self._conditioner(x_a, self._context))
        theta = tf.cast(theta, x_b.dtype)  # conditioners may compute in float16 / bfloat16
        expected = self.num_params * x_b.shape[-1]
        if theta.shape.rank is not None and (theta.shape[-1] != expected
                                             or theta.shape.rank != x_b.shape.rank):
            raise ValueError(
                f"{type(self).__name__}: expected the conditioner to return shape "
                f"{tuple(x_b.shape[:-1])} + ({expected},) ({self.num_params} parameters for "
                f"each of the {x_b.shape[-1]} entries of x_b on the last axis); "
                f"got {tuple(theta.shape)}.")
        return tf.split(theta, self.num_params, axis=-1)

    def _sum_b(self, log_det):
        log_det = self._partition.select_b(log_det)
        return tf.reduce_sum(log_det, axis=list(range(-self.forward_min_event_ndims, 0)))

    def _run(self, x, direction):
        check_floating(x, type(self).__name__)
        x_a, x_b = self._partition.split(x)
        y_b, log_det = direction(x_b, self._params(x_a, x_b))
        return self._partition.merge(x_a, y_b), self._sum_b(log_det)

    def _forward(self, x):
        return self._run(x, self._forward_b)[0]

    def _forward_log_det_jacobian(self, x):
        return self._run(x, self._forward_b)[1]

    def _inverse(self, y):
        return self._run(y, self._inverse_b)[0]

    def _inverse_log_det_jacobian(self, y):
        return self._run(y, self._inverse_b)[1]

    def _inverse_and_log_det(self, y):
        return self._run(y, self._inverse_b)
