"""A fixed orthogonal mixing of the last axis (token dimensions, channels, features)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfp_flows.bijectors._linear import Linear


def random_orthogonal(size: int, seed: int | None = None) -> np.ndarray:
    """A Haar-random ``[size, size]`` orthogonal matrix (QR of a Gaussian, signs fixed)."""
    if int(size) < 1:
        raise ValueError(f"random_orthogonal: expected size >= 1; got {size}.")
    gaussian = np.random.default_rng(seed).standard_normal((size, size))
    q, r = np.linalg.qr(gaussian)
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)  # sign fix: Haar, not QR-biased


class OrthogonalMixing(Linear):
    """Normalizing map ``z = W x`` over the last axis, ``W`` orthogonal: log|det J| = 0.

    Inverse (x -> z, normalizing): one matmul ``x @ W^T``, O(d^2) a vector.
    Forward (z -> x, sampling): ``z @ W`` (``W^{-1} = W^T``), O(d^2) a vector.
    log|det J|: 0 in both directions (``|det W| = 1``), O(1).

    Before a coupling that halves the last axis it makes the split a random one,
    as the channel permutations of RealNVP/Glow and the random dimension splits of
    Jet (Kolesnikov et al., arXiv:2412.15129) do, but mixing every dimension into
    both halves. Nothing is learned and nothing is inverted or factorised.

    Examples:
        >>> w = random_orthogonal(3, seed=0)
        >>> b = OrthogonalMixing(w)
        >>> x = np.ones((2, 3), np.float32)
        >>> np.allclose(b.forward(tf.identity(b.inverse(x))), x, atol=1e-5)
        True

    Args:
        matrix: ``[d, d]`` orthogonal ``W`` (a NumPy matrix is checked: ``W W^T = I``
            to 1e-4 relative), e.g. `random_orthogonal`.

    Raises:
        ValueError: a NumPy matrix that is not orthogonal.
    """

    def __init__(self, matrix, validate_args: bool = False, name: str = "OrthogonalMixing"):
        parameters = dict(locals())
        super().__init__({"matrix": (matrix, 2)}, validate_args=validate_args,
                         parameters=parameters, name=name)
        if isinstance(matrix, (np.ndarray, list, tuple)):
            value = np.asarray(matrix, np.float64)
            error = np.abs(value @ value.T - np.eye(self.size)).max()
            if error > 1e-4:
                raise ValueError(f"OrthogonalMixing: expected an orthogonal matrix "
                                 f"(W W^T = I); got max |W W^T - I| = {error:.3g}.")

    def _matmul(self, x):
        return tf.tensordot(x, self._matrix, [[-1], [1]])  # rows: x @ W^T, one GEMM

    def _solve(self, z):
        return tf.tensordot(z, self._matrix, [[-1], [0]])  # rows: z @ W, since W^{-1} = W^T

    def _log_abs_det(self):
        return tf.zeros([], dtype=self.dtype)
