"""The contract of a flow layer, and the bijector that runs a list of them."""

from __future__ import annotations

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.bijectors import FlowBijector, inverse_and_log_det

tfb = tfp.bijectors


class FlowLayer(keras.layers.Layer):
    """A Keras layer that owns a transform's weights and hands out its bijector.

    ``bijector(context, training)`` builds a `tfb.Bijector` from the current
    weights (cheap: no copies, and free under ``tf.function``). ``call(x)`` runs
    the normalizing direction and returns ``(z, log|det dz/dx|)``.

    Flow layers compute in the variable dtype of the global policy (float32, or
    float64 under ``keras.config.set_floatx("float64")``) or the dtype passed, even
    under a mixed precision policy; the conditioners inside them follow the global
    policy.

    Its keyword arguments are those of ``keras.layers.Layer`` (``name``, ``dtype``, ...).

    Examples:
        A layer of one's own supplies ``bijector``; ``call`` then runs its inverse:

        >>> import numpy as np, tensorflow_probability as tfp
        >>> class Double(FlowLayer):
        ...     def bijector(self, context=None, training=False):
        ...         return tfp.bijectors.Scale(2.0)
        >>> z, log_det = Double()(np.array([[2.0, 4.0]], np.float32))
        >>> z.numpy()
        array([[1., 2.]], dtype=float32)
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", keras.config.dtype_policy().variable_dtype)
        super().__init__(**kwargs)

    def bijector(self, context=None, training: bool = False) -> tfb.Bijector:
        raise NotImplementedError

    def backward(self, walker, y, grad_y, known=None):
        """One step of backpropagation through the inverse
        (`tfp_flows.training.inverse_backprop`): from this layer's output ``y`` and the
        loss's gradient ``grad_y`` to its input and that input's gradient, adding the
        gradients of the layer's weights and of the context to ``walker``.

        Default: the input is ``bijector.forward(y)`` and the normalizing call runs again
        under a tape (memory: one call's activations). ``known``: the input, where it is
        kept rather than recomputed; its gradient is then None.

        Returns:
            ``(x, grad_x)``.
        """
        return walker.step(lambda x: self(x, context=walker.context, training=True),
                           self.bijector(walker.context, True), self.trainable_variables,
                           y, grad_y, known)

    def sublayers(self) -> list[FlowLayer]:
        """The flow layers nested inside this one (a level's deeper levels); default none."""
        return []

    def call(self, x, context=None, training=False):
        # A layer that knows its event rank (``event_ndims`` set in ``build``) sums the
        # log-det over it, which an elementwise TFP bijector needs; ours know their own.
        return inverse_and_log_det(self.bijector(context, training), x,
                                   event_ndims=getattr(self, "event_ndims", None))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)


def walk(layers):
    """Every flow layer in ``layers`` and, depth first, in their `sublayers`."""
    for layer in layers:
        yield layer
        yield from walk(layer.sublayers())


def build_sequence(layers, input_shape):
    """Builds ``layers`` one after the other; returns the output shape of the last."""
    shape = tuple(input_shape)
    for layer in layers:
        if not layer.built:
            layer.build(shape)
        shape = tuple(layer.compute_output_shape(shape))
    return shape


class LayerChain(FlowBijector):
    """The bijector of flow layers in normalizing order (data first).

    ``forward``/``inverse`` are those of ``tfb.Chain`` of the layers' bijectors;
    ``inverse_and_log_det`` calls the layers themselves, so that layers with
    training-time behaviour (ActNorm's data initialisation, dequantization noise)
    see their inputs. ``noise``, when given, is the dequantization noise ``u``
    handed to layers that take it (`Dequantize`), for the bound of
    `tfp_flows.Flow.log_prob`.

    Args:
        layers: the flow layers, data side first.
        context: the (embedded) context handed to every layer, or None.
        training: whether the layers run as in training (ActNorm's initialisation,
            fresh dequantization noise).
        event_ndims: event axes of the data; default that of the first layer.
        noise: the dequantization noise ``u``, or None.
        name: the bijector's name.

    Examples:
        >>> import numpy as np
        >>> import tfp_flows
        >>> flow = tfp_flows.RealNVP(3, num_steps=2, hidden_units=(8,))
        >>> chain = LayerChain(flow.flow_layers)
        >>> z, log_det = chain.inverse_and_log_det(np.ones((2, 3), np.float32))
        >>> tuple(z.shape)
        (2, 3)
    """

    def __init__(self, layers, context=None, training: bool = False, event_ndims: int | None = None,
                 noise=None, name: str = "LayerChain"):
        parameters = dict(locals())
        self._layers = list(layers)
        self._context = context
        self._training = training
        self._noise = noise
        self._chain_bijector = None
        if event_ndims is None:
            forward_ndims = self._chain.forward_min_event_ndims
            inverse_ndims = self._chain.inverse_min_event_ndims
        else:  # given: the chain of bijectors is built only if a TFP method needs it
            forward_ndims = inverse_ndims = int(event_ndims)
        super().__init__(forward_min_event_ndims=forward_ndims,
                         inverse_min_event_ndims=inverse_ndims, parameters=parameters, name=name)

    @property
    def _chain(self):
        """``tfb.Chain`` of the layers' bijectors, built on first use: the training path
        (`inverse_and_log_det`) calls the layers and never needs it, and building it
        for every nested level made tracing a deep multiscale flow slower."""
        if self._chain_bijector is None:
            self._chain_bijector = tfb.Chain([layer.bijector(self._context, self._training)
                                              for layer in self._layers])
        return self._chain_bijector

    def _forward(self, x):
        return self._chain.forward(x)

    def _inverse(self, y):
        return self._chain.inverse(y)

    def _forward_log_det_jacobian(self, x):
        return self._chain.forward_log_det_jacobian(x, event_ndims=self.forward_min_event_ndims)

    def _inverse_log_det_jacobian(self, y):
        return self._chain.inverse_log_det_jacobian(y, event_ndims=self.inverse_min_event_ndims)

    def _forward_event_shape(self, input_shape):
        return self._chain.forward_event_shape(input_shape)

    def _inverse_event_shape(self, output_shape):
        return self._chain.inverse_event_shape(output_shape)

    def _forward_event_shape_tensor(self, input_shape):
        return self._chain.forward_event_shape_tensor(input_shape)

    def _inverse_event_shape_tensor(self, output_shape):
        return self._chain.inverse_event_shape_tensor(output_shape)

    def inverse_and_log_det(self, y):
        """Runs the layers' ``call``; integer data is allowed when a `Dequantize` comes first."""
        return self._inverse_and_log_det(tf.convert_to_tensor(y))

    def _inverse_and_log_det(self, y):
        total = None
        for layer in self._layers:
            noise = {"noise": self._noise} if getattr(layer, "takes_noise", False) else {}
            y, log_det = layer(y, context=self._context, training=self._training, **noise)
            total = log_det if total is None else total + tf.cast(log_det, total.dtype)
        return y, (tf.zeros([], y.dtype) if total is None else total)
