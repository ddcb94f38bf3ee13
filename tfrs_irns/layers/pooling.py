"""Pooling a padded sequence of embeddings into one vector, padding masked.

An item's title is a handful of tokens, its genres a handful of values, and
both are stored padded to a fixed width (id 0 = padding) so a whole catalogue
fits one int table. Pooling turns the ``[B, L, d]`` token embeddings into
``[B, d]``. The padding must not count: a two-token title padded to 16 would
otherwise be diluted 8× towards the padding row, and two titles differing only
in length would look alike. A row with no token at all pools to zeros.

* :class:`MaskedMeanPooling` — the mean over the real positions (an embedding
  bag): order-free, cheap, the usual baseline for short texts.
* :class:`AttentionPooling` — a learned query scores each position, a softmax
  over the real positions weights them: lets the tower lean on the telling
  tokens of a title (``"alien"``) over the filler ones (``"the"``).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf


def masked_mean(values: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Mean of ``values`` ``[B, L, d]`` over the positions where ``mask`` ``[B, L]`` is true; 0 for empty rows."""
    weights = tf.cast(mask, values.dtype)[..., None]
    total = tf.reduce_sum(values * weights, axis=1)
    count = tf.reduce_sum(weights, axis=1)
    return total / tf.maximum(count, tf.ones_like(count))


@tf.keras.utils.register_keras_serializable(package="tfrs_irns")
class MaskedMeanPooling(tf.keras.layers.Layer):
    """``(values [B, L, d], valid [B, L]) → [B, d]``: the mean over unmasked positions."""

    def call(self, values: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
        return masked_mean(values, valid)


@tf.keras.utils.register_keras_serializable(package="tfrs_irns")
class AttentionPooling(tf.keras.layers.Layer):
    """``(values [B, L, d], valid [B, L]) → [B, d]``: a softmax-weighted sum over unmasked positions.

    The score of position ``l`` is ``w · values[l]`` with a learned ``w``
    (zero-initialised, so training starts from the masked mean). Masked
    positions get weight 0; a row with no real position pools to zeros.
    """

    def build(self, input_shape: Any) -> None:
        dim = int(input_shape[-1])
        self.query = self.add_weight(name="query", shape=(dim,), initializer="zeros")
        super().build(input_shape)

    def call(self, values: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
        scores = tf.einsum("bld,d->bl", values, tf.cast(self.query, values.dtype))
        scores = tf.cast(scores, tf.float32)  # the softmax in float32 under mixed precision
        valid = tf.cast(valid, tf.bool)
        scores = tf.where(valid, scores, tf.fill(tf.shape(scores), -1e9))
        weights = tf.nn.softmax(scores, axis=-1) * tf.cast(valid, tf.float32)  # empty rows: all 0
        return tf.einsum("bl,bld->bd", tf.cast(weights, values.dtype), values)
