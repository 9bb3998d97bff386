"""What every bijector of the package shares: the one-pass normalizing step.

Direction (as in TFP): ``forward`` is the sampling direction ``z -> x`` and
``inverse`` the normalizing direction ``x -> z`` that training evaluates.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_probability as tfp

tfb = tfp.bijectors


class FlowBijector(tfb.Bijector):
    """A `tfb.Bijector` that can return ``inverse`` and its log-det in one pass.

    Subclasses implement the usual ``_forward``, ``_inverse``,
    ``_forward_log_det_jacobian`` and may override ``_inverse_and_log_det``
    when both results share work (a coupling's conditioner call). Their
    ``__init__`` starts with ``parameters = dict(locals())`` and hands it on, so
    ``copy()`` and TFP's composites rebuild the same map.

    TFP caches results by input tensor *and* bijector, and two bijectors compare
    equal when their ``parameters`` do. Ours are built from live Keras weights (the
    same variables and conditioners before and after a training step), so equal
    parameters do not mean an equal map: each instance is its own cache key. The
    cache still serves ``inverse(forward(x))`` on one instance (one call of
    ``TransformedDistribution.sample`` and ``log_prob`` of its samples); a new
    ``flow.bijector()`` or ``flow.distribution()`` always computes afresh.

    Its arguments are `tfb.Bijector`'s.

    Examples:
        >>> import tensorflow as tf
        >>> class Double(FlowBijector):
        ...     def __init__(self):
        ...         parameters = dict(locals())
        ...         super().__init__(forward_min_event_ndims=0, is_constant_jacobian=True,
        ...                          parameters=parameters, name="double")
        ...     def _forward(self, x):
        ...         return 2.0 * x
        ...     def _inverse(self, y):
        ...         return y / 2.0
        ...     def _forward_log_det_jacobian(self, x):
        ...         return tf.math.log(2.0) * tf.ones_like(x)
        >>> x, ildj = Double().inverse_and_log_det(tf.constant([4.0]))
        >>> float(x[0]), round(float(ildj[0]), 4)
        (2.0, -0.6931)
    """

    def __eq__(self, other):
        return self is other

    def __hash__(self):
        return id(self)

    def inverse_and_log_det(self, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Returns ``(inverse(y), inverse_log_det_jacobian(y))``, sharing work."""
        y = tf.convert_to_tensor(y, dtype_hint=self.dtype)
        check_floating(y, type(self).__name__)
        return self._inverse_and_log_det(y)

    def _inverse_and_log_det(self, y):
        return self.inverse(y), self.inverse_log_det_jacobian(
            y, event_ndims=self.inverse_min_event_ndims)


def inverse_and_log_det(bijector: tfb.Bijector, y: tf.Tensor, event_ndims: int | None = None):
    """``(inverse(y), ildj(y))`` for any bijector, in one pass where it can be.

    ``event_ndims`` (default: the bijector's ``inverse_min_event_ndims``) is the
    number of event axes of ``y``: the log-det is summed over them, so an
    elementwise bijector (``tfb.Scale``, ``tfb.SinhArcsinh``) gives one value per
    event, as ``inverse_log_det_jacobian(y, event_ndims)`` does. A `tfb.Chain` is
    walked link by link in the normalizing order so that each `FlowBijector` in it
    computes its inverse and log-det together.

    Args:
        bijector: any `tfb.Bijector`.
        y: a batch of its outputs (the data side).
        event_ndims: event axes of ``y``; default the bijector's ``inverse_min_event_ndims``.

    Returns:
        ``(x, ildj)``: ``bijector.inverse(y)`` and its log-det, one value per event.

    Examples:
        >>> import tensorflow_probability as tfp
        >>> x, ildj = inverse_and_log_det(tfp.bijectors.Scale(2.0), tf.constant([[2.0, 4.0]]), 1)
        >>> x.numpy(), round(float(ildj), 4)  # -2 log 2 for the event
        (array([[1., 2.]], dtype=float32), -1.3863)
    """
    if event_ndims is None:
        event_ndims = bijector.inverse_min_event_ndims
    if isinstance(bijector, FlowBijector) and event_ndims == bijector.inverse_min_event_ndims:
        return bijector.inverse_and_log_det(y)
    if isinstance(bijector, tfb.Chain) and bijector.bijectors:
        total = 0.0
        for link in bijector.bijectors:  # Chain([a, b]).inverse = b^-1(a^-1(y))
            ndims = link.inverse_event_ndims(event_ndims)
            y_next, log_det = inverse_and_log_det(link, y, event_ndims)
            total = total + log_det
            y, event_ndims = y_next, ndims
        return y, total
    return bijector.inverse(y), bijector.inverse_log_det_jacobian(y, event_ndims=event_ndims)


def check_floating(x: tf.Tensor, where: str) -> None:
    """Raises ValueError for integer input, which no bijector can transform."""
    if not x.dtype.is_floating:
        raise ValueError(
            f"{where}: expected a floating-point tensor (float16/32/64); got {x.dtype.name}. "
            "Cast the data with tf.cast(x, tf.float32), or put a Dequantize layer first "
            "for integer (pixel) data.")


def check_event(x: tf.Tensor, event_shape, where: str) -> None:
    """Raises ValueError unless the trailing axes of ``x`` match ``event_shape``.

    ``event_shape`` entries that are None are not checked.
    """
    rank = len(event_shape)
    shape = x.shape
    if shape.rank is None:
        return
    if shape.rank < rank:
        raise ValueError(
            f"{where}: expected a tensor whose last {rank} axes are {tuple(event_shape)}; "
            f"got shape {tuple(shape)} of rank {shape.rank}.")
    trailing = shape[shape.rank - rank:]
    for got, want in zip(trailing, event_shape):
        if want is not None and got is not None and got != want:
            raise ValueError(
                f"{where}: expected event shape {tuple(event_shape)} on the last axes; "
                f"got shape {tuple(shape)}.")


def event_size(x: tf.Tensor, event_ndims: int) -> tf.Tensor:
    """Number of elements in the last ``event_ndims`` axes (static when known)."""
    static = x.shape[x.shape.rank - event_ndims:]
    if static.is_fully_defined():
        return static.num_elements()
    return tf.reduce_prod(tf.shape(x)[-event_ndims:])
