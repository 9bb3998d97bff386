"""Dense linear map: the expensive end of the linear family."""

from __future__ import annotations

import tensorflow as tf

from tfp_flows.bijectors._linear import Linear


class FullLinear(Linear):
    """Normalizing map ``z = W x + shift`` with a dense ``W``.

    Inverse (normalizing): one matmul, O(d^2) a row.
    Forward (sampling): an LU solve, O(d^3) for the factorisation plus O(d^2) a row.
    log|det J| of the inverse: ``log|det W| = sum log|diag(R)|`` from a QR
        factorisation (XLA has no kernel for ``slogdet``), O(d^3).

    Nothing keeps ``W`` invertible during training; prefer `LULinear`.

    Examples:
        >>> import numpy as np
        >>> b = FullLinear([[2.0, 0.0], [1.0, 1.0]], shift=[0.0, 1.0])
        >>> b.inverse(np.ones((1, 2), np.float32)).numpy()
        array([[2., 3.]], dtype=float32)
        >>> float(b.inverse_log_det_jacobian(np.ones((1, 2), np.float32), event_ndims=1))
        0.693...

    Args:
        matrix: ``[d, d]``, ``W``.
        shift: ``[d]``.
    """

    def __init__(self, matrix, shift, validate_args: bool = False, name: str = "FullLinear"):
        parameters = dict(locals())
        super().__init__({"matrix": (matrix, 2)}, shift, validate_args=validate_args,
                         parameters=parameters, name=name)

    def _weight(self):
        return self._matrix

    def _solve_columns(self, columns):
        return tf.linalg.solve(self._matrix, columns)

    def _log_abs_det(self):
        upper = tf.linalg.qr(self._matrix)[1]
        return tf.reduce_sum(tf.math.log(tf.abs(tf.linalg.diag_part(upper))))
