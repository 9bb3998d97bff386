"""Affine coupling (RealNVP, Glow)."""

from __future__ import annotations

import tensorflow as tf

from tfp_flows.bijectors._coupling import Coupling, soft_bound

SCALES = ("tanh", "sigmoid")


def check_affine_args(where: str, log_scale_bound, scale) -> tuple[float, str]:
    """``(log_scale_bound, scale)``; ValueError unless ``c > 0`` and ``scale`` in `SCALES`."""
    if not float(log_scale_bound) > 0:
        raise ValueError(f"{where}: expected log_scale_bound > 0; got {log_scale_bound!r}.")
    if scale not in SCALES:
        raise ValueError(f"{where}: expected scale in {list(SCALES)}; got {scale!r}.")
    return float(log_scale_bound), scale


class AffineTransform:
    """``y = x * exp(s) + t`` elementwise from params ``(t, r)``, with one of two scales:

    - ``"tanh"``: ``s = c tanh(r / c)``, ``|s| < c``: zero parameters are the identity.
    - ``"sigmoid"`` (Glow's code, arXiv:1807.03039): the normalizing direction is
      ``x = (y - t) * sigmoid(r + 2)``, so ``s = softplus(-r - 2) > 0``: a coupling
      may only contract towards the latent, by any factor, and never expand, so
      no conditioner output can blow a latent up; expansion is left to ActNorm and
      the linear maps. Zero parameters scale by ``sigmoid(2) = 0.88``.

    ``forward(x, params)`` / ``inverse(y, params)`` return ``(value, elementwise
    log-det of that direction)``. Cost O(size of x).

    Args:
        log_scale_bound: ``c > 0`` of the ``"tanh"`` scale; default 2.
        scale: ``"tanh"`` or ``"sigmoid"``.

    Examples:
        >>> import tensorflow as tf
        >>> params = (tf.constant([1.0]), tf.constant([0.0]))  # (t, r)
        >>> AffineTransform().forward(tf.constant([2.0]), params)[0].numpy()  # 2 exp(0) + 1
        array([3.], dtype=float32)
        >>> AffineTransform(scale="sigmoid").inverse(tf.constant([3.0]), params)[0].numpy()
        array([1.7615942], dtype=float32)
    """

    num_params = 2

    def __init__(self, log_scale_bound: float = 2.0, scale: str = "tanh"):
        self.log_scale_bound, self.scale = check_affine_args("AffineTransform", log_scale_bound,
                                                             scale)

    def forward(self, x, params):
        shift, raw = params
        if self.scale == "sigmoid":
            return x / tf.sigmoid(raw + 2.0) + shift, tf.nn.softplus(-raw - 2.0)
        log_scale = soft_bound(raw, self.log_scale_bound)
        return x * tf.exp(log_scale) + shift, log_scale

    def inverse(self, y, params):
        shift, raw = params
        if self.scale == "sigmoid":
            return (y - shift) * tf.sigmoid(raw + 2.0), tf.math.log_sigmoid(raw + 2.0)
        log_scale = soft_bound(raw, self.log_scale_bound)
        return (y - shift) * tf.exp(-log_scale), -log_scale

    def get_config(self) -> dict:
        return {"class_name": "AffineTransform", "log_scale_bound": self.log_scale_bound,
                "scale": self.scale}


class AffineCoupling(Coupling):
    """``y_b = x_b * exp(s) + t`` with ``(t, r) = conditioner(x_a)`` and ``s = c tanh(r / c)``.

    The log-scale is bounded smoothly by ``c = log_scale_bound`` so that no
    conditioner output can overflow ``exp`` (unbounded scales diverge under XLA).
    ``scale="sigmoid"`` is Glow's parametrisation instead (see `AffineTransform`):
    the normalizing direction ``x_b = (y_b - t) * sigmoid(r + 2)`` only contracts.

    Forward (sampling): O(size of x_b) after one conditioner call.
    Inverse (normalizing): ``x_b = (y_b - t) * exp(-s)``, same cost.
    log|det J| of the forward: ``sum(s)``, O(size of x_b).

    Dinh et al., "Density estimation using Real NVP", arXiv:1605.08803.

    Args: those of `Coupling`, and
        log_scale_bound: ``c > 0``; default 2.
        scale: ``"tanh"`` (default) or ``"sigmoid"``.

    Examples:
        >>> import tensorflow as tf
        >>> params = lambda x_a: tf.concat([tf.zeros_like(x_a), tf.fill(tf.shape(x_a), 0.5)], -1)
        >>> bijector = AffineCoupling(params)  # t = 0, r = 0.5 for every x_a
        >>> y = bijector.forward(tf.constant([[1.0, 2.0]]))
        >>> [round(float(v), 4) for v in y[0]]  # x_b * exp(2 tanh(0.25))
        [1.0, 3.2641]
        >>> round(float(bijector.inverse(tf.identity(y))[0, 1]), 4)
        2.0
    """

    num_params = 2

    def __init__(self, conditioner, partition=None, context=None, event_ndims: int = 1,
                 log_scale_bound: float = 2.0, validate_args: bool = False,
                 name: str = "AffineCoupling", scale: str = "tanh"):
        parameters = dict(locals())
        self._transform = AffineTransform(*check_affine_args("AffineCoupling", log_scale_bound,
                                                             scale))
        super().__init__(conditioner, partition, context, event_ndims, validate_args, name,
                         parameters)
