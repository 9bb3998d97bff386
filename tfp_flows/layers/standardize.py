"""Standardisation learned from the training data, as a flow step."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.layers.base import FlowLayer

tfb = tfp.bijectors


def finite_moments(batches, name: str, min_std: float, per_feature: bool = False):
    """Mean and standard deviation (float64, floored at ``min_std``) over the first axis
    of a stream of arrays, refusing rows with NaN or infinity by their position.
    ``per_feature``: the moments of the last axis, pooled over every other one (the rows
    and, within a row, the elements of a set, the steps of a series, the pixels).

    Batches are combined with Chan et al.'s pairwise update, so a stream of batches gives
    the moments of their concatenation without the cancellation of summed squares.

    Returns:
        ``(mean, std, zero)``: ``zero`` marks the entries whose spread was below
        ``min_std`` (their ``std`` is the floor).
    """
    count, mean, m2, offset = 0, None, None, 0
    for batch in batches:
        batch = np.asarray(batch, np.float64)
        rows = batch.reshape(len(batch), -1)
        bad = ~np.isfinite(rows).all(axis=1)
        if bad.any():
            positions = offset + np.flatnonzero(bad)
            shown = ", ".join(str(int(i)) for i in positions[:10])
            more = f" and {len(positions) - 10} more" if len(positions) > 10 else ""
            raise ValueError(f"{name}: expected finite values to adapt to; got NaN or infinity "
                             f"in {len(positions)} rows: {shown}{more} (drop or impute them "
                             "first).")
        offset += len(batch)
        if per_feature:
            batch = batch.reshape(-1, batch.shape[-1])
        if not len(batch):
            continue
        batch_mean, batch_m2 = batch.mean(0), ((batch - batch.mean(0)) ** 2).sum(0)
        if mean is None:
            count, mean, m2 = len(batch), batch_mean, batch_m2
            continue
        total = count + len(batch)
        delta = batch_mean - mean
        mean = mean + delta * len(batch) / total
        m2 = m2 + batch_m2 + delta ** 2 * count * len(batch) / total
        count = total
    if mean is None:
        raise ValueError(f"{name}: expected at least one row to adapt to; got none.")
    std = np.sqrt(m2 / count)
    return mean, np.maximum(std, min_std), std < min_std


@keras.saving.register_keras_serializable(package="tfp_flows")
class Standardize(FlowLayer):
    """Normalizing map ``z = (x - mean) / std`` per entry of the event, from the data.

    Inverse (normalizing): ``(x - mean) / std``, O(d). Forward (sampling):
    ``z * std + mean``, O(d). log|det dz/dx| = ``-sum(log std)``, O(d), so the flow's
    ``log_prob`` stays the density of the raw values.

    ``mean`` and ``log_std`` are non-trainable weights set by `adapt` (the identity
    until then); they and the ``adapted`` flag are saved with the model, so a
    reloaded or exported flow standardises as the trained one did. `tfp_flows.Flow.adapt`
    adapts every such layer of a flow (and the flow's context statistics) from the
    training data, as Keras' ``Normalization.adapt`` does; ``fit`` does not.

    Examples:
        >>> layer = Standardize()
        >>> layer.adapt(np.array([[1.0, 10.0], [3.0, 30.0]]))
        >>> z, log_det = layer(np.array([[3.0, 10.0]], np.float32))
        >>> z.numpy().round(4).tolist(), round(float(log_det[0]), 4)  # -log(1 * 10)
        ([[1.0, -1.0]], -2.3026)

    Args:
        min_std: floor on the standard deviation that `adapt` sets (a constant entry
            gets this scale).
        mean / std: known statistics instead of `adapt` (as Keras' ``Normalization``
            takes them), broadcast to the event shape; both or neither.

    Raises:
        ValueError: ``min_std <= 0``, only one of ``mean`` and ``std``, a ``std`` that is
            not positive, or an input whose event shape is unknown.
    """

    def __init__(self, min_std: float = 1e-6, mean=None, std=None, **kwargs):
        super().__init__(**kwargs)
        if not min_std > 0:
            raise ValueError(f"Standardize: expected min_std > 0; got {min_std}.")
        if (mean is None) != (std is None):
            raise ValueError(f"Standardize: expected both mean and std or neither; got "
                             f"mean={mean}, std={std}.")
        if std is not None and not np.all(np.asarray(std, np.float64) > 0):
            raise ValueError(f"Standardize: expected std > 0; got {std}.")
        self.min_std = float(min_std)
        self.initial = None if mean is None else (np.asarray(mean, np.float64).tolist(),
                                                 np.asarray(std, np.float64).tolist())

    def build(self, input_shape):
        event_shape = tuple(input_shape[1:])
        if None in event_shape:
            raise ValueError(f"Standardize: expected a known event shape; got input shape "
                             f"{tuple(input_shape)}.")
        self.event_ndims = len(event_shape)
        mean, log_std, adapted = np.zeros(event_shape), np.zeros(event_shape), 0.0
        if self.initial is not None:
            mean = np.broadcast_to(self.initial[0], event_shape)
            log_std, adapted = np.log(np.broadcast_to(self.initial[1], event_shape)), 1.0
        self.mean, self.log_std, self.adapted = (
            self.add_weight(name=name, shape=np.shape(value), trainable=False,
                            initializer=keras.initializers.Constant(value),
                            aggregation="only_first_replica")
            for name, value in (("mean", mean), ("log_std", log_std), ("adapted", adapted)))

    def bijector(self, context=None, training=False):
        # Fresh reads of the weights: TFP's cache keys on the parameters, and a read is a
        # new tensor, so a bijector built after `adapt` never reuses an earlier result.
        return tfb.Chain([tfb.Shift(tf.convert_to_tensor(self.mean)),
                          tfb.Scale(log_scale=tf.convert_to_tensor(self.log_std))])

    def call(self, x, context=None, training=False):
        z, log_det = super().call(x, context, training)
        return z, tf.broadcast_to(log_det, tf.shape(x)[:1])  # a constant Jacobian: one per row

    def adapt(self, x) -> None:
        """Sets ``mean`` and ``log_std`` to the moments of ``x`` (rows are examples).

        ``x``: an array ``[n, *event_shape]`` or an iterable of such batches. Rows with
        NaN or infinity are refused with a ``ValueError`` that names their positions,
        before any weight changes.
        """
        batches = [x] if hasattr(x, "shape") else x
        batches = (np.asarray(batch) for batch in batches)
        mean, std, _ = finite_moments(batches, f"{self.name}.adapt", self.min_std)
        if not self.built:
            self.build((None,) + mean.shape)
        if mean.shape != tuple(self.mean.shape):
            raise ValueError(f"{self.name}.adapt: expected rows of shape {tuple(self.mean.shape)}; "
                             f"got {mean.shape}.")
        self.mean.assign(mean.astype(self.mean.dtype))
        self.log_std.assign(np.log(std).astype(self.log_std.dtype))
        self.adapted.assign(1.0)

    @property
    def is_adapted(self) -> bool:
        """Whether `adapt` has run (the saved ``adapted`` weight)."""
        return self.built and float(self.adapted.numpy()) > 0.5

    def get_config(self):
        mean, std = self.initial or (None, None)
        return {**super().get_config(), "min_std": self.min_std, "mean": mean, "std": std}
