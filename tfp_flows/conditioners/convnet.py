"""`ConvNet`: Glow's conditioner for image events."""

from __future__ import annotations

import keras
import tensorflow as tf

from tfp_flows import _conv


class _Conv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D` whose gradients stay fast inside XLA loops (see `tfp_flows._conv`)."""

    def convolution_op(self, inputs, kernel):
        if self.data_format == "channels_last" and _conv.supported(
                kernel.shape, self.padding, self.strides, self.dilation_rate):
            return _conv.conv2d(inputs, kernel, self.padding)
        return super().convolution_op(inputs, kernel)


@keras.saving.register_keras_serializable(package="tfp_flows")
class ConvNet(keras.layers.Layer):
    """Glow's conditioner for ``[H, W, C]`` events: 3x3 conv, 1x1 conv, zero-initialised 3x3 conv.

    A context vector is projected to ``hidden_channels`` and added to the first
    hidden feature map at every pixel.

    Cost: O(batch * H * W * hidden_channels * (9 C_in + hidden_channels + 9 C_out)).

    Args:
        output_channels: channels of the output (the coupling's parameters).
        hidden_channels: width of the two hidden layers.

    Raises:
        ValueError: a channel count below 1.

    Examples:
        >>> import numpy as np
        >>> ConvNet(6, hidden_channels=8)(np.ones((2, 4, 4, 3), np.float32)).shape
        TensorShape([2, 4, 4, 6])
    """

    def __init__(self, output_channels: int, hidden_channels: int = 128, **kwargs):
        super().__init__(**kwargs)
        if int(output_channels) < 1 or int(hidden_channels) < 1:
            raise ValueError(f"ConvNet: expected positive channel counts; got "
                             f"output_channels={output_channels}, hidden_channels={hidden_channels}.")
        self.output_channels = int(output_channels)
        self.hidden_channels = int(hidden_channels)
        policy = self.dtype_policy
        self.conv_in = _Conv2D(hidden_channels, 3, padding="same", activation="relu",
                               dtype=policy, name="conv_in")
        self.context_projection = keras.layers.Dense(hidden_channels, dtype=policy, name="context")
        self.conv_mid = _Conv2D(hidden_channels, 1, activation="relu", dtype=policy,
                                name="conv_mid")
        self.conv_out = _Conv2D(output_channels, 3, padding="same", kernel_initializer="zeros",
                                dtype=policy, name="conv_out")

    def build(self, x_shape, context_shape=None):
        self.conv_in.build(tuple(x_shape))
        if context_shape is not None:
            self.context_projection.build(tuple(context_shape))
        hidden = tuple(x_shape[:-1]) + (self.hidden_channels,)
        self.conv_mid.build(hidden)
        self.conv_out.build(hidden)

    def call(self, x, context=None):
        batch_shape = tf.shape(x)[:-3]  # any number of batch axes, folded into one
        h = self.conv_in(tf.reshape(x, tf.concat([[-1], tf.shape(x)[-3:]], 0)))
        if context is not None:
            context = tf.reshape(tf.cast(context, h.dtype), [-1, tf.shape(context)[-1]])
            h = h + self.context_projection(context)[:, None, None, :]
        out = self.conv_out(self.conv_mid(h))
        return tf.reshape(out, tf.concat([batch_shape, tf.shape(out)[1:]], 0))

    def get_config(self):
        return {**super().get_config(), "output_channels": self.output_channels,
                "hidden_channels": self.hidden_channels}
