"""Pooling a padded sequence of embeddings into one vector, padding masked; the pooling registry.

Two towers pool sequences. A content tower pools an item's **text** tokens or
categorical values (a handful, padded to a fixed width, id 0 = padding); a
history tower pools a user's **history**, their last ``L`` items (left-padded,
oldest first). Pooling turns ``[B, L, d]`` embeddings and a ``[B, L]`` mask into
``[B, d]``. The padding must not count: a two-token title padded to 16 would
otherwise be diluted 8× towards the padding row, and two titles differing only
in length would look alike. A row with nothing unmasked pools to zeros.

* :class:`MaskedMeanPooling` — the mean over the real positions (an embedding
  bag): order-free, cheap, the usual baseline (``mean`` in both families).
* :class:`TokenAttentionPooling` — text ``attention``: a learned query, zero at
  the start so training starts from the masked mean, scores each token
  (``w · v``, unscaled); lets the tower lean on the telling tokens of a title
  (``"alien"``) over the filler ones (``"the"``).
* :class:`ScaledAttentionPooling` — history ``attention``: scaled dot-product
  scores ``e · w / sqrt(d)`` with a Glorot-initialised query, in float32.
* :class:`GRUPooling` — history ``gru``: a GRU read oldest to newest, its last state.
* :class:`TransformerPooling` — history ``transformer``: SASRec's
  :class:`CausalTransformer` over the window, the last real position's output
  (:func:`last_valid`), and every position's output for sequence training.

The two attentions are different maths under one config word, so each family
has its own names: :func:`make_pooling` builds a layer from ``(family, name)``
(:data:`TEXT` / :data:`HISTORY`; :func:`pooling_names` lists a family's), which is
how the content and history towers build theirs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import tensorflow as tf

#: The pooling families: a content tower's text features, a history tower's item window.
TEXT, HISTORY = "text", "history"


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
class TokenAttentionPooling(tf.keras.layers.Layer):
    """``(values [B, L, d], valid [B, L]) → [B, d]``: a softmax-weighted sum over unmasked positions.

    Text ``attention``. The score of position ``l`` is ``w · values[l]`` with a
    learned ``w`` (zero-initialised, so training starts from the masked mean;
    not scaled by ``sqrt(d)``). Masked positions get weight 0; a row with no real
    position pools to zeros. The softmax runs in float32, the sum in the input dtype.
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


class _UnitsPooling(tf.keras.layers.Layer):
    """A history pooling with learned weights of ``units`` (= ``d``) numbers."""

    def __init__(self, units: int = 64, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if int(units) < 1:
            raise ValueError(f"units must be > 0, got {units!r}")
        self.units = int(units)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["units"] = self.units
        return config


@tf.keras.utils.register_keras_serializable(package="tfrs_irns")
class ScaledAttentionPooling(_UnitsPooling):
    """``(values [n, L, d], mask [n, L]) → [n, d]``: scaled dot-product attention with one learned query.

    History ``attention``. Softmax weights of ``e · w / sqrt(d)`` over the
    unmasked rows, ``w`` Glorot-initialised (so, unlike
    :class:`TokenAttentionPooling`, it does not start as the mean); everything
    in float32 whatever the policy, the result cast back. Masked rows get
    exactly 0 weight; a row with none unmasked pools to zeros.

    Args:
      units: ``d``, the size of the query ``w``.
    """

    def __init__(self, units: int = 64, **kwargs: Any) -> None:
        super().__init__(units, **kwargs)
        self.query_vector = self.add_weight(
            name="attention_query", shape=(self.units,), initializer="glorot_uniform", trainable=True
        )

    def call(self, embeddings: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        logits = tf.einsum("nld,d->nl", tf.cast(embeddings, tf.float32), tf.cast(self.query_vector, tf.float32))
        logits = logits / math.sqrt(self.units)
        logits = tf.where(mask, logits, tf.fill(tf.shape(logits), -1e9))
        alpha = tf.nn.softmax(logits, axis=1) * tf.cast(mask, tf.float32)
        return tf.cast(tf.einsum("nl,nld->nd", alpha, tf.cast(embeddings, tf.float32)), embeddings.dtype)


@tf.keras.utils.register_keras_serializable(package="tfrs_irns")
class GRUPooling(_UnitsPooling):
    """``(values [n, L, d], mask [n, L]) → [n, units]``: a GRU over the window, oldest first, its last state.

    History ``gru``: an order-aware summary. Masked steps keep the state, so
    left padding changes nothing and a row with none unmasked pools to zeros.
    Unrolled over the static ``L`` steps: plain ``MatMul``/``Sigmoid``/``Tanh``
    ops, no cuDNN kernel and no loop op, so it exports with core TF ops.
    """

    def __init__(self, units: int = 64, **kwargs: Any) -> None:
        super().__init__(units, **kwargs)
        self.cell = tf.keras.layers.GRUCell(self.units, name="gru")

    def call(self, embeddings: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        state = tf.zeros(tf.stack([tf.shape(embeddings)[0], self.units]), embeddings.dtype)
        for step in range(embeddings.shape[1]):  # static L: unrolled
            new_state, _ = self.cell(embeddings[:, step], [state])
            state = tf.where(mask[:, step : step + 1], tf.cast(new_state, state.dtype), state)
        return state


@tf.keras.utils.register_keras_serializable(package="tfrs_irns")
class CausalTransformer(tf.keras.layers.Layer):
    """``(values [B, L, d], valid [B, L]) → [B, L, d]``: causal self-attention over a sequence (SASRec).

    **The idea.** A user's recent items, oldest first, are a sentence whose
    next word is the next item. SASRec (Kang & McAuley, ICDM 2018) reads it
    with a small causal transformer: position ``t`` attends only to positions
    ``<= t``, so its output summarises the items up to ``t`` and can be
    trained to predict item ``t + 1`` — every position of a sequence is a
    training example of one forward pass. The last real position's output is
    the user's query for what comes next.

    **The layer.** Items scaled by ``sqrt(d)`` plus a learned embedding of
    each position (position ``L - 1`` is the most recent item: sequences are
    left-padded, so recency, not the sequence's start, picks the position);
    dropout; ``num_blocks`` pre-layer-norm blocks (``x + MHA(LN(x))``, then
    ``x + FFN(LN(x))``, SASRec's and GPT-2's arrangement, stable without
    warm-up) with a final layer norm. Padding positions are zeroed after
    every block and never attended to; a padding position attends to itself
    only (so no softmax is empty), its output is ignored. Plain
    ``MatMul``/``Softmax`` ops: it exports with core TensorFlow ops.

    Args:
      length: ``L``, the positions (the positional table's rows).
      num_blocks: attention + feed-forward blocks.
      num_heads: attention heads; must divide ``d``.
      dropout: dropout rate of the embeddings, attention weights and block outputs.
    """

    def __init__(
        self, length: int, num_blocks: int = 2, num_heads: int = 1, dropout: float = 0.2, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if int(length) < 1:
            raise ValueError(f"length must be >= 1, got {length!r}")
        if int(num_blocks) < 1:
            raise ValueError(f"num_blocks must be >= 1, got {num_blocks!r}")
        if int(num_heads) < 1:
            raise ValueError(f"num_heads must be >= 1, got {num_heads!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.length, self.num_blocks = int(length), int(num_blocks)
        self.num_heads, self.dropout = int(num_heads), float(dropout)

    def build(self, input_shape: Any) -> None:
        dim = int(input_shape[-1])
        if dim % self.num_heads:
            raise ValueError(f"num_heads={self.num_heads} must divide the embedding size {dim}")
        self.dim = dim
        self.positions = self.add_weight(
            name="positions", shape=(self.length, dim),
            initializer=tf.keras.initializers.RandomNormal(stddev=0.02),
        )
        dense = tf.keras.layers.Dense
        self.blocks = []
        for b in range(self.num_blocks):
            block = {
                "ln1": tf.keras.layers.LayerNormalization(epsilon=1e-6, name=f"block{b}_ln1"),
                "qkv": dense(3 * dim, name=f"block{b}_qkv"),
                "out": dense(dim, name=f"block{b}_out"),
                "ln2": tf.keras.layers.LayerNormalization(epsilon=1e-6, name=f"block{b}_ln2"),
                "ff1": dense(dim, activation="relu", name=f"block{b}_ff1"),
                "ff2": dense(dim, name=f"block{b}_ff2"),
            }
            for name in ("ln1", "ln2"):
                block[name].build(input_shape)
            block["qkv"].build(input_shape)
            block["out"].build(input_shape)
            block["ff1"].build(input_shape)
            block["ff2"].build(input_shape)
            self.blocks.append(block)
        self.final_norm = tf.keras.layers.LayerNormalization(epsilon=1e-6, name="final_ln")
        self.final_norm.build(input_shape)
        self.drop = tf.keras.layers.Dropout(self.dropout)
        super().build(input_shape)

    def attention_mask(self, valid: tf.Tensor) -> tf.Tensor:
        """``[B, L, L]`` bool: query ``t`` may see key ``s`` iff ``s <= t`` and ``s`` is real (or ``s == t``)."""
        length = tf.shape(valid)[1]
        causal = tf.linalg.band_part(tf.ones(tf.stack([length, length]), tf.bool), -1, 0)
        diagonal = tf.eye(length, dtype=tf.bool)
        return (causal[None] & valid[:, None, :]) | diagonal[None]

    def _attend(self, block: dict, x: tf.Tensor, mask: tf.Tensor, training: Any) -> tf.Tensor:
        batch, length = tf.shape(x)[0], tf.shape(x)[1]
        heads, size = self.num_heads, self.dim // self.num_heads
        qkv = tf.reshape(block["qkv"](x), tf.stack([batch, length, 3, heads, size]))
        q, k, v = (tf.transpose(qkv[:, :, i], [0, 2, 1, 3]) for i in range(3))  # [B, H, L, size]
        scores = tf.cast(tf.matmul(q, k, transpose_b=True), tf.float32) / math.sqrt(size)
        # Masked by ids (the mask), not by adding a large negative: exact zeros, float32 softmax.
        scores = tf.where(mask[:, None], scores, tf.fill(tf.shape(scores), -1e9))
        weights = tf.nn.softmax(scores, axis=-1) * tf.cast(mask[:, None], tf.float32)
        weights = self.drop(tf.cast(weights, v.dtype), training=training)
        out = tf.transpose(tf.matmul(weights, v), [0, 2, 1, 3])
        return block["out"](tf.reshape(out, tf.stack([batch, length, self.dim])))

    def call(self, values: tf.Tensor, valid: tf.Tensor, training: Any = None) -> tf.Tensor:
        valid = tf.cast(valid, tf.bool)
        keep = tf.cast(valid, values.dtype)[..., None]
        length = tf.shape(values)[1]
        # The last rows of the table: the most recent item always has position L - 1.
        x = values * math.sqrt(self.dim) + tf.cast(self.positions[self.length - length :], values.dtype)[None]
        x = self.drop(x, training=training) * keep
        mask = self.attention_mask(valid)
        for block in self.blocks:
            x = x + self.drop(self._attend(block, block["ln1"](x), mask, training), training=training)
            hidden = block["ff2"](self.drop(block["ff1"](block["ln2"](x)), training=training))
            x = (x + self.drop(hidden, training=training)) * keep
        return self.final_norm(x) * keep

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(length=self.length, num_blocks=self.num_blocks, num_heads=self.num_heads, dropout=self.dropout)
        return config


def last_valid(outputs: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """``[B, d]``: each row's output at its last real position (zeros for a row with none)."""
    valid = tf.cast(valid, tf.bool)
    length = tf.shape(valid)[1]
    place = tf.where(valid, tf.range(length)[None, :], -tf.ones_like(tf.cast(valid, tf.int32)))
    last = tf.reduce_max(place, axis=1)
    picked = tf.gather(outputs, tf.maximum(last, 0), batch_dims=1)
    return picked * tf.cast(last >= 0, outputs.dtype)[:, None]


@tf.keras.utils.register_keras_serializable(package="tfrs_irns")
class TransformerPooling(tf.keras.layers.Layer):
    """``(values [n, L, d], mask [n, L]) → [n, d]``: the last real position's output of a
    :class:`CausalTransformer` over the window (history ``transformer``).

    :meth:`sequence` gives every position's output: position ``t`` has seen
    items ``<= t`` only, which sequence training uses to predict item ``t + 1``
    at every ``t``. Args as :class:`CausalTransformer`'s.
    """

    def __init__(
        self, length: int = 50, num_blocks: int = 2, num_heads: int = 1, dropout: float = 0.2, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.transformer = CausalTransformer(length, num_blocks, num_heads, dropout, name="transformer")

    def sequence(self, embeddings: tf.Tensor, mask: tf.Tensor, training: Any = None) -> tf.Tensor:
        """``[n, L, d]``: every position's causal output."""
        return self.transformer(embeddings, mask, training=training)

    def call(self, embeddings: tf.Tensor, mask: tf.Tensor, training: Any = None) -> tf.Tensor:
        return last_valid(self.sequence(embeddings, mask, training=training), mask)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        t = self.transformer
        config.update(length=t.length, num_blocks=t.num_blocks, num_heads=t.num_heads, dropout=t.dropout)
        return config


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class PoolingOptions:
    """What a pooling layer may be built with: ``units`` (``d``) for the history
    attention and GRU; ``length``, ``num_blocks``, ``num_heads``, ``dropout``
    for the transformer. Each pooling takes what it needs and ignores the rest."""

    units: int = 64
    length: int = 50
    num_blocks: int = 2
    num_heads: int = 1
    dropout: float = 0.2


Factory = Callable[[PoolingOptions, dict[str, Any]], tf.keras.layers.Layer]

#: ``(family, name)`` → a function of the options and the layer's keyword arguments (its ``name``).
POOLINGS: dict[tuple[str, str], Factory] = {
    (TEXT, "mean"): lambda o, kw: MaskedMeanPooling(**kw),
    (TEXT, "attention"): lambda o, kw: TokenAttentionPooling(**kw),
    (HISTORY, "mean"): lambda o, kw: MaskedMeanPooling(**kw),
    (HISTORY, "attention"): lambda o, kw: ScaledAttentionPooling(o.units, **kw),
    (HISTORY, "gru"): lambda o, kw: GRUPooling(o.units, **kw),
    (HISTORY, "transformer"): lambda o, kw: TransformerPooling(o.length, o.num_blocks, o.num_heads, o.dropout, **kw),
}


def pooling_names(family: str) -> tuple[str, ...]:
    """The pooling names of ``family`` (:data:`TEXT` or :data:`HISTORY`), in registry order."""
    names = tuple(name for fam, name in POOLINGS if fam == family)
    if not names:
        raise ValueError(f"family must be one of {TEXT}, {HISTORY}, got {family!r}")
    return names


def make_pooling(
    family: str, pooling: str, options: PoolingOptions = PoolingOptions(), /, **kwargs: Any
) -> tf.keras.layers.Layer:
    """The ``family`` pooling layer called ``pooling`` (e.g. ``(HISTORY, "attention")`` →
    :class:`ScaledAttentionPooling`), built with ``options``; ``kwargs`` go to the
    layer (its ``name``)."""
    names = pooling_names(family)
    if pooling not in names:
        raise ValueError(f"pooling must be one of {', '.join(names)}, got {pooling!r}")
    return POOLINGS[(family, pooling)](options, kwargs)
