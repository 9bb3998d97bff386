"""Activation normalisation: a per-channel affine map, `DiagonalLinear` run the other way."""

from __future__ import annotations

from tfp_flows.bijectors.diagonal_linear import DiagonalLinear


class ActNorm(DiagonalLinear):
    """Normalizing map ``z = (x - loc) * exp(-log_scale)`` per channel (last axis).

    The same elementwise affine map as ``DiagonalLinear(log_scale, shift=loc)``, with
    the directions swapped: ActNorm's sampling direction is DiagonalLinear's
    normalizing one, so ``loc`` and ``exp(log_scale)`` read as the data's mean and
    standard deviation (the layer initialises them so from the first batch).

    Forward (sampling): ``x = z * exp(log_scale) + loc``, O(size of the event).
    log|det J| of the inverse: ``-P * sum(log_scale)``, O(C), with ``P`` the number
    of positions (pixels) in one event.

    Kingma & Dhariwal, "Glow", arXiv:1807.03039, section 3.1.

    Examples:
        >>> import numpy as np
        >>> b = ActNorm(loc=[1.0, 0.0], log_scale=np.log([2.0, 4.0]))
        >>> b.inverse([[3.0, 4.0]]).numpy()
        array([[1., 1.]])
        >>> round(float(b.inverse_log_det_jacobian([[3.0, 4.0]], event_ndims=1)), 4)  # -log 8
        -2.0794

    Args:
        loc: ``[C]``.
        log_scale: ``[C]``.
        event_ndims: 1 for vectors, 3 for ``[H, W, C]`` images.
    """

    def __init__(self, loc, log_scale, event_ndims: int = 1, validate_args: bool = False,
                 name: str = "ActNorm"):
        parameters = dict(locals())
        super().__init__(log_scale, loc, event_ndims=event_ndims, validate_args=validate_args,
                         name=name, parameters=parameters)

    # DiagonalLinear's two directions, swapped.
    def _forward(self, x):
        return super()._inverse(x)

    def _inverse(self, y):
        return super()._forward(y)

    def _forward_log_det_jacobian(self, x):
        return self._event_log_abs_det(x)

    def _inverse_log_det_jacobian(self, y):
        return -self._event_log_abs_det(y)
