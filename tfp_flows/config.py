"""Process-wide settings of `tfp_flows`, as ``keras.config`` holds Keras'."""

from __future__ import annotations

from tfp_flows import _conv

__all__ = ["convolutions", "set_convolutions"]


def set_convolutions(forms: str) -> None:
    """Chooses how the image conditioners' stride-1 convolutions are computed.

    ``"auto"`` (the default): matrix-product forms where no GPU is visible (exact, and 2x
    faster to train a Glow on a 2-core CPU: ``python -m benchmarks glow_digits``), and
    TensorFlow's own ``tf.nn.conv2d`` (cuDNN's kernels and gradients) where one is.
    ``"matrix"`` or ``"native"``: that form on every device. The environment variable
    ``TFP_FLOWS_CONVOLUTIONS`` sets it at import. Applies to steps traced after the
    call: set it before ``compile``/``fit`` (the forms are in ``tfp_flows._conv``).

    Args:
        forms: ``"auto"``, ``"matrix"`` or ``"native"``.

    Raises:
        ValueError: for any other value.

    Examples:
        >>> import tfp_flows
        >>> tfp_flows.config.set_convolutions("native")
        >>> tfp_flows.config.convolutions()
        'native'
        >>> tfp_flows.config.set_convolutions("auto")
    """
    _conv.set_forms(forms)


def convolutions() -> str:
    """The convolution forms that steps traced now take: ``"matrix"`` or ``"native"``
    (``"auto"`` resolved on the visible devices; see `set_convolutions`).

    Returns:
        ``"matrix"`` or ``"native"``.

    Raises:
        ValueError: where ``TFP_FLOWS_CONVOLUTIONS`` holds an unknown value.

    Examples:
        >>> convolutions() in ("matrix", "native")
        True
    """
    return _conv.forms()
