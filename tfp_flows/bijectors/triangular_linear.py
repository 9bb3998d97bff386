"""Lower-triangular linear map."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfp_flows.bijectors._linear import Linear
from tfp_flows.bijectors._lu import strictly_lower_mask


class TriangularLinear(Linear):
    """Normalizing map ``z = T x + shift``, ``T`` lower triangular with diagonal ``exp(log_diagonal)``.

    Inverse (normalizing): one matmul, O(d^2) a row.
    Forward (sampling): one triangular solve, O(d^2) a row.
    log|det J| of the inverse: ``sum(log_diagonal)``, O(d).

    Examples:
        >>> import numpy as np
        >>> b = TriangularLinear(np.ones((2, 2)), np.log([2.0, 3.0]), shift=np.zeros(2))
        >>> b.inverse(np.ones((1, 2))).numpy()  # T = [[2, 0], [1, 3]]
        array([[2., 4.]])

    Args:
        lower: ``[d, d]``; only the strictly lower part is used.
        log_diagonal: ``[d]``, so the diagonal is positive and ``T`` invertible.
        shift: ``[d]``.
    """

    def __init__(self, lower, log_diagonal, shift, validate_args: bool = False,
                 name: str = "TriangularLinear"):
        parameters = dict(locals())
        super().__init__({"log_diagonal": (log_diagonal, 1), "lower": (lower, 2)}, shift,
                         validate_args=validate_args, parameters=parameters, name=name)

    def _weight(self):
        eye = tf.constant(np.eye(self.size), self.dtype)
        return (self._lower * strictly_lower_mask(self.size, self.dtype)
                + eye * tf.exp(self._log_diagonal))

    def _solve_columns(self, columns):
        return tf.linalg.triangular_solve(self._weight(), columns, lower=True)

    def _log_abs_det(self):
        return tf.reduce_sum(self._log_diagonal)
