"""Space-to-depth reshaping for multiscale flows."""

from __future__ import annotations

import tensorflow as tf

from tfp_flows.bijectors._base import FlowBijector, check_floating


class Squeeze(FlowBijector):
    """Forward: space-to-depth ``[H, W, C] -> [H/2, W/2, 4C]``; inverse: depth-to-space.

    A permutation of the entries: log|det J| = 0, O(H W C) in both directions.
    In a flow it sits on the data side of a level as ``tfb.Invert(Squeeze())`` so
    that the normalizing direction squeezes.

    Dinh et al., "Density estimation using Real NVP", arXiv:1605.08803, section 3.6.

    Args:
        validate_args: TFP's argument checks.
        name: the bijector's name.

    Examples:
        >>> import tensorflow as tf
        >>> Squeeze().forward(tf.zeros((1, 4, 4, 3))).shape
        TensorShape([1, 2, 2, 12])
    """

    def __init__(self, validate_args: bool = False, name: str = "Squeeze"):
        parameters = dict(locals())
        super().__init__(forward_min_event_ndims=3, inverse_min_event_ndims=3,
                         is_constant_jacobian=True, validate_args=validate_args,
                         parameters=parameters, name=name)

    @staticmethod
    def _check_image(x):
        check_floating(x, "Squeeze")
        if x.shape.rank is not None and x.shape.rank < 3:
            raise ValueError(f"Squeeze: expected images [..., H, W, C]; got shape {tuple(x.shape)}.")
        height, width = x.shape[-3], x.shape[-2]
        if (height is not None and height % 2) or (width is not None and width % 2):
            raise ValueError(f"Squeeze: expected even height and width; got {height}x{width} "
                             f"(shape {tuple(x.shape)}). Pad or crop the images, or use fewer levels.")

    def _forward(self, x):
        self._check_image(x)
        batch = tf.shape(x)[:-3]
        height, width, channels = x.shape[-3:]
        rank = x.shape.rank
        blocks = tf.reshape(x, tf.concat([batch, [height // 2, 2, width // 2, 2, channels]], 0))
        lead = list(range(rank - 3))
        blocks = tf.transpose(blocks, lead + [rank - 3, rank - 1, rank - 2, rank, rank + 1])
        return tf.reshape(blocks, tf.concat([batch, [height // 2, width // 2, 4 * channels]], 0))

    def _inverse(self, y):
        check_floating(y, "Squeeze")
        batch = tf.shape(y)[:-3]
        height, width, channels = y.shape[-3:]
        if channels % 4:
            raise ValueError(f"Squeeze: expected a channel count divisible by 4 to unsqueeze; "
                             f"got {channels} (shape {tuple(y.shape)}).")
        rank = y.shape.rank
        blocks = tf.reshape(y, tf.concat([batch, [height, width, 2, 2, channels // 4]], 0))
        lead = list(range(rank - 3))
        blocks = tf.transpose(blocks, lead + [rank - 3, rank - 1, rank - 2, rank, rank + 1])
        return tf.reshape(blocks, tf.concat([batch, [2 * height, 2 * width, channels // 4]], 0))

    def _forward_event_shape(self, input_shape):
        height, width, channels = input_shape[-3:]
        return input_shape[:-3].concatenate(
            [_scaled(height, 1, 2), _scaled(width, 1, 2), _scaled(channels, 4, 1)])

    def _inverse_event_shape(self, output_shape):
        height, width, channels = output_shape[-3:]
        return output_shape[:-3].concatenate(
            [_scaled(height, 2, 1), _scaled(width, 2, 1), _scaled(channels, 1, 4)])

    def _forward_event_shape_tensor(self, input_shape):
        return tf.concat([input_shape[:-3], input_shape[-3:-1] // 2, 4 * input_shape[-1:]], 0)

    def _inverse_event_shape_tensor(self, output_shape):
        return tf.concat([output_shape[:-3], output_shape[-3:-1] * 2, output_shape[-1:] // 4], 0)

    def _forward_log_det_jacobian(self, x):
        return tf.zeros([], dtype=x.dtype)


def _scaled(size, times: int, over: int):
    """``size * times // over`` for a static size that may be unknown (None)."""
    return None if size is None else size * times // over
