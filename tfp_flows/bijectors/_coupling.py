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

    The contract, public so that other code (the inverse-gradient walk of
    `tfp_flows.training.inverse_backprop`) can run a coupling step by step::

        x_a, x_b = bijector.partition.split(x)
        params   = bijector.conditioner_params(x_a, x_b)   # one conditioner call
        y_b, ld  = bijector.forward_b(x_b, params)         # or inverse_b(y_b, params)
        y        = bijector.partition.merge(x_a, y_b)
        log_det  = bijector.sum_b(ld)                      # log|det J| of that direction

    What a subclass supplies: ``num_params`` (a class attribute, or set in
    ``__init__`` before ``super().__init__``) and either ``forward_b(x_b, params)``
    and ``inverse_b(y_b, params)`` or ``self._transform``, an elementwise transform
    whose ``forward`` / ``inverse`` have those signatures (`AffineTransform`; the
    defaults here call it). ``forward_b`` is the sampling direction (``z_b -> x_b``)
    and ``inverse_b`` the normalizing one; each returns ``(output, elementwise
    log|g'| of its own direction)``, both shaped like its input, so
    ``inverse_b(forward_b(x_b, p)[0], p) == (x_b, -forward_b(x_b, p)[1])``. They
    must be elementwise in ``x_b`` (cost O(size of x_b)); ``params`` is the list of
    ``num_params`` tensors shaped like ``x_b``, parameter-major. A subclass that does
    more than keep ``x_a`` (`FactorOut` maps it with deeper levels) overrides
    ``_forward_and_log_det`` and ``_inverse_and_log_det``, built from the same
    pieces.

    Args:
        conditioner: callable ``x_a -> theta`` (or ``(x_a, context) -> theta`` when a
            context is given), returning ``num_params * C_b`` values on the last axis.
        partition: `HalfSplit` (default) or `Checkerboard`.
        context: optional tensor handed to the conditioner.
        event_ndims: 1 for vectors, 3 for ``[H, W, C]`` images.
        parameters: a subclass's ``dict(locals())``, so that TFP's ``parameters``
            (and ``copy()``) hold every constructor argument of the subclass.

    Examples:
        A coupling of one's own: ``y_b = x_b + t`` written against the contract.

        >>> class Shift(Coupling):
        ...     num_params = 1
        ...     def forward_b(self, x_b, params):
        ...         return x_b + params[0], tf.zeros_like(x_b)
        ...     def inverse_b(self, y_b, params):
        ...         return y_b - params[0], tf.zeros_like(y_b)
        >>> bijector = Shift(lambda x_a: tf.ones_like(x_a))
        >>> bijector.forward(tf.constant([[1.0, 2.0]])).numpy()
        array([[1., 3.]], dtype=float32)
    """

    num_params = 1

    def __init__(self, conditioner: Callable, partition=None, context=None, event_ndims: int = 1,
                 validate_args: bool = False, name: str | None = None, parameters=None):
        parameters = dict(locals()) if parameters is None else parameters
        self._check_conditioner(conditioner)
        self._conditioner = conditioner
        self._partition = partition if partition is not None else HalfSplit()
        self._context = context
        super().__init__(forward_min_event_ndims=event_ndims, validate_args=validate_args,
                         parameters=parameters, name=name or type(self).__name__)

    def _check_conditioner(self, conditioner):
        if not callable(conditioner):
            raise ValueError(f"{type(self).__name__}: expected a callable conditioner; "
                             f"got {type(conditioner).__name__}.")

    @property
    def partition(self):
        """How ``x`` splits into the kept ``x_a`` and the changed ``x_b``: ``split(x)``,
        ``merge(x_a, y_b)``, ``select_b(v)`` (`tfp_flows.bijectors.partitions`)."""
        return self._partition

    def conditioner_params(self, x_a, x_b) -> list:
        """The conditioner's parameters for ``x_b`` given the kept half ``x_a``.

        One conditioner call (with the context, if any), cast to ``x_b``'s dtype and
        split into ``num_params`` tensors shaped like ``x_b`` (``x_b`` fixes only the
        dtype and the expected shape). Raises ``ValueError`` on a wrong output shape.
        """
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

    def sum_b(self, log_det):
        """The log-det of the whole step from the elementwise one of ``forward_b`` /
        ``inverse_b``: its entries in the changed part (``partition.select_b``), summed
        over the event axes. One value per example."""
        log_det = self._partition.select_b(log_det)
        return tf.reduce_sum(log_det, axis=list(range(-self.forward_min_event_ndims, 0)))

    def forward_b(self, x_b, params):
        """Sampling direction: ``(g(x_b; params), elementwise log|g'(x_b)|)``."""
        return self._transform.forward(x_b, params)

    def inverse_b(self, y_b, params):
        """Normalizing direction: ``(g^{-1}(y_b; params), elementwise log|(g^{-1})'(y_b)|)``."""
        return self._transform.inverse(y_b, params)

    def _split(self, x):
        check_floating(x, type(self).__name__)
        return self._partition.split(x)

    def _map_b(self, x_a, x_b, direction):
        """``g(x_b; conditioner(x_a))`` in ``direction`` and its log-det, summed over the event."""
        y_b, log_det = direction(x_b, self.conditioner_params(x_a, x_b))
        return y_b, self.sum_b(log_det)

    def _run(self, x, direction):
        x_a, x_b = self._split(x)
        y_b, log_det = self._map_b(x_a, x_b, direction)
        return self._partition.merge(x_a, y_b), log_det

    def _forward_and_log_det(self, x):
        return self._run(x, self.forward_b)

    def _inverse_and_log_det(self, y):
        return self._run(y, self.inverse_b)

    def _forward(self, x):
        return self._forward_and_log_det(x)[0]

    def _forward_log_det_jacobian(self, x):
        return self._forward_and_log_det(x)[1]

    def _inverse(self, y):
        return self._inverse_and_log_det(y)[0]

    def _inverse_log_det_jacobian(self, y):
        return self._inverse_and_log_det(y)[1]
