"""The linear family's template: ``z = W x + shift`` over the last axis."""

from __future__ import annotations

import tensorflow as tf
from tensorflow_probability.python.internal import dtype_util

from tfp_flows.bijectors._base import FlowBijector, check_event, check_floating, event_size


class Linear(FlowBijector):
    """Normalizing map ``z = W x + shift`` applied to the last axis, ``W`` a ``[d, d]`` matrix.

    Inverse (x -> z, normalizing): ``W x + shift``, a multiplication.
    Forward (z -> x, sampling): ``W^{-1} (z - shift)``, a solve.
    log|det J| of the inverse: ``P log|det W|``, with ``P`` the number of vectors in
        one event (1 for vectors, ``H * W`` pixels for ``[H, W, C]`` images); the
        forward's is its negative.

    The costs are those of ``W``'s structure, given by each subclass (sampling
    solve / log-det): dense `FullLinear` O(d^3) / O(d^3); triangular
    `TriangularLinear` O(d^2) a row / O(d); LU `LULinear` and `Invertible1x1Conv`
    O(d^2) a row / O(d); diagonal `DiagonalLinear` and `ActNorm` O(d) / O(d);
    orthogonal `OrthogonalMixing` O(d^2) a row (``W^T``) / 0. The normalizing
    product is O(d^2) a row (O(d) diagonal).

    Subclasses start their ``__init__`` with ``parameters = dict(locals())`` and
    hand their weights to this one, which takes their common float dtype,
    converts them (stored as ``self._<name>``), checks their shapes and sets
    ``size`` (``d``). They then supply only ``W``'s structure:

    - ``_log_abs_det()``: ``log|det W|``;
    - ``_weight()``: ``W`` as a ``[d, d]`` tensor and ``_solve_columns(columns)``:
      ``W^{-1} columns`` for a ``[d, n]`` matrix (every input row is one column,
      so one solve serves the whole batch); or, when the structure is cheaper
      than a matrix, ``_matmul(x)`` and ``_solve(z)`` on rows directly.

    Examples:
        An upper-triangular member of the family:

        >>> class UpperLinear(Linear):
        ...     def __init__(self, upper, shift):
        ...         parameters = dict(locals())
        ...         super().__init__({"upper": (upper, 2)}, shift, parameters=parameters)
        ...     def _weight(self):
        ...         return tf.linalg.band_part(self._upper, 0, -1)
        ...     def _solve_columns(self, columns):
        ...         return tf.linalg.triangular_solve(self._weight(), columns, lower=False)
        ...     def _log_abs_det(self):
        ...         return tf.reduce_sum(tf.math.log(tf.abs(tf.linalg.diag_part(self._upper))))
        >>> b = UpperLinear([[2.0, 1.0], [0.0, 4.0]], shift=[0.0, 0.0])
        >>> b.inverse([[1.0, 1.0]]).numpy()
        array([[3., 4.]], dtype=float32)
        >>> b.forward([[3.0, 4.0]]).numpy()
        array([[1., 1.]], dtype=float32)
        >>> round(float(b.inverse_log_det_jacobian([[1.0, 1.0]], event_ndims=1)), 4)  # log 8
        2.0794

    Args:
        weights: ``name -> (value, rank)`` in constructor order, rank 1 for a
            ``[d]`` vector and 2 for a ``[d, d]`` matrix; the first sets ``d``.
        shift: ``[d]`` added in the normalizing direction, or None.
        event_ndims: 1 for vectors, 3 for ``[H, W, C]`` images (the map acts on
            the channels of every pixel).
        parameters: the subclass's ``dict(locals())``.

    Raises:
        ValueError: ``event_ndims < 1``, or a weight whose shape is not ``[d]`` or
            ``[d, d]`` as its rank says.
    """

    def __init__(self, weights: dict, shift=None, event_ndims: int = 1,
                 validate_args: bool = False, parameters: dict | None = None,
                 name: str | None = None):
        name = name or type(self).__name__
        if int(event_ndims) < 1:
            raise ValueError(f"{name}: expected event_ndims >= 1; got {event_ndims}.")
        values = [value for value, _ in weights.values()] + ([] if shift is None else [shift])
        with tf.name_scope(name) as scope:
            dtype = dtype_util.common_dtype(values, tf.float32)
            tensors = {key: tf.convert_to_tensor(value, dtype=dtype)
                       for key, (value, _) in weights.items()}
            self._first = next(iter(tensors))
            self._size = tensors[self._first].shape[-1]
            for key, (_, rank) in weights.items():
                self._check_shape(key, tensors[key], rank)
                setattr(self, "_" + key, tensors[key])
            self._shift = None if shift is None else tf.convert_to_tensor(shift, dtype=dtype)
            if shift is not None:
                self._check_shape("shift", self._shift, 1)
            super().__init__(forward_min_event_ndims=int(event_ndims), is_constant_jacobian=True,
                             dtype=dtype, validate_args=validate_args, parameters=parameters,
                             name=scope)

    @property
    def size(self) -> int:
        """``d``, the length of the last axis."""
        return self._size

    def _check_shape(self, key, tensor, rank):
        expected = (self._size,) * rank
        if tuple(tensor.shape) != expected:
            match = "" if key == self._first else f" to match {self._first} of size {self._size}"
            raise ValueError(f"{type(self).__name__}: expected {key} of shape {expected}{match}; "
                             f"got {tuple(tensor.shape)}.")

    def _check(self, x):
        check_floating(x, type(self).__name__)
        check_event(x, (None,) * (self.forward_min_event_ndims - 1) + (self.size,),
                    type(self).__name__)

    def _inverse(self, y):
        self._check(y)
        z = self._matmul(y)
        return z if self._shift is None else z + self._shift

    def _forward(self, x):
        self._check(x)
        return self._solve(x if self._shift is None else x - self._shift)

    def _inverse_log_det_jacobian(self, y):
        return self._event_log_abs_det(y)

    def _forward_log_det_jacobian(self, x):
        return -self._event_log_abs_det(x)

    def _event_log_abs_det(self, x):
        """``P log|det W|`` for events like ``x``: ``W`` acts on each of their ``P`` vectors."""
        log_det = self._log_abs_det()
        if self.forward_min_event_ndims == 1:
            return log_det
        positions = event_size(x, self.forward_min_event_ndims) // self.size
        return log_det * tf.cast(positions, self.dtype)

    def _matmul(self, x):
        """``W x`` for rows ``x``."""
        return tf.linalg.matvec(self._weight(), x)

    def _solve(self, z):
        """``W^{-1} z`` for rows ``z``: the rows become the columns of one ``[d, n]`` solve."""
        columns = tf.transpose(tf.reshape(z, [-1, self.size]))
        return tf.reshape(tf.transpose(self._solve_columns(columns)), tf.shape(z))

    def _weight(self):
        raise NotImplementedError(f"{type(self).__name__} must define _weight or _matmul.")

    def _solve_columns(self, columns):
        raise NotImplementedError(f"{type(self).__name__} must define _solve_columns or _solve.")

    def _log_abs_det(self):
        raise NotImplementedError(f"{type(self).__name__} must define _log_abs_det.")
