"""A candidate tower that embeds items from their content: title, genres, any item column.

An ID table knows only the items it trained on: a listing added a minute ago
has no row, and one seen twice has a row that is mostly noise. eBay's
recommender therefore embeds items from their *content* — title tokens,
category, aspects — so an item shares what its words share, and a brand-new
item is embedded the moment its title exists. This tower does that:

* every content feature is a padded sequence of small integer ids per item —
  the tokens of a **text** feature (``tf.keras.layers.TextVectorization``:
  lower-cased, punctuation stripped, split on whitespace) or the ``|``-joined
  values of a **categorical** one (``tf.keras.layers.StringLookup``); id 0 is
  padding, 1 the out-of-vocabulary bucket, vocabularies come from the
  *training* catalogue only (items with a training interaction);
* each id has an embedding of size ``d``; an item's ids are pooled with the
  padding masked (the ``text`` family of :mod:`~tfrs_irns.layers.pooling`: mean,
  or token attention for text);
* the features' vectors are **summed** (with the item's id row when ``use_id``:
  id + content, the id part learning what content cannot say), then the
  optional MLP and L2 normalisation, as the id tower.

**In-graph, int tables only.** The encoded catalogue — ``[N + 1, L]`` int32
per feature, row ``i`` = item index ``i`` — is a non-trainable weight of the
tower, so ``tower(indices)`` keeps the tower contract of
:class:`~tfrs_irns.models.TwoTowerModel`: IRNS embeds its sampled indices
in-graph with a gather, and no string op ever enters the train step. The raw
strings are encoded once, eagerly (:func:`encode_catalogue`), and again at
serving time by the same encoders (:func:`make_encoders`) for items the
model never saw (:meth:`ContentItemTower.embed_encoded`).

Items without a trained id row (the cold items of a ``cold_items`` split,
the OOV row 0) have ``id_mask`` 0: they are embedded from content alone, as a
new item at serving time is.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfrs_irns.layers.id_rows import IdRowsMixin, mean_squared_norm
from tfrs_irns.layers.pooling import TEXT as TEXT_POOLING
from tfrs_irns.layers.pooling import make_pooling, pooling_names
from tfrs_irns.layers.towers import _mlp, apply_head, head_config, init_head

TEXT = "text"
CATEGORICAL = "categorical"
KINDS = (TEXT, CATEGORICAL)
#: The text poolings (:func:`~tfrs_irns.layers.pooling.make_pooling`'s ``text`` family).
POOLINGS = pooling_names(TEXT_POOLING)
#: Encoded id of padding and of a token outside the vocabulary.
PAD, OOV = 0, 1
#: Separator of a categorical feature's values ("Action|Comedy").
SEPARATOR = "|"
_STANDARDIZE = "lower_and_strip_punctuation"


def _check_feature(feature: dict[str, Any]) -> None:
    kind = feature.get("kind")
    if kind not in KINDS:
        raise ValueError(f"feature {feature.get('name')!r}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if int(feature.get("length", 0)) < 1:
        raise ValueError(f"feature {feature.get('name')!r}: length must be >= 1, got {feature.get('length')!r}")


def categorical_values(strings: tf.Tensor) -> tf.RaggedTensor:
    """``"a|b"`` strings ``[B]`` → their trimmed values, ragged ``[B, None]`` (``''`` → no value)."""
    values = tf.strings.strip(tf.strings.split(strings, SEPARATOR))
    return tf.ragged.boolean_mask(values, tf.strings.length(values) > 0)


def make_encoders(features: Sequence[dict[str, Any]]) -> dict[str, Callable[[tf.Tensor], tf.Tensor]]:
    """One encoder per feature: raw strings ``[B]`` → int32 ids ``[B, length]`` (0 padding, 1 OOV).

    Core TensorFlow ops only (string lowering, regex, split, hash-table
    lookups), so the encoders also run inside an exported SavedModel.
    """
    encoders: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {}
    for feature in features:
        _check_feature(feature)
        length, vocabulary = int(feature["length"]), list(feature["vocabulary"])
        if feature["kind"] == TEXT:
            layer = tf.keras.layers.TextVectorization(
                standardize=_STANDARDIZE, split="whitespace", output_mode="int",
                output_sequence_length=length, vocabulary=vocabulary or None, dtype=tf.string,
                name=f"{feature['name']}_vectorizer",
            )

            def encode(strings: tf.Tensor, layer: Any = layer) -> tf.Tensor:
                return tf.cast(layer(strings), tf.int32)

        else:
            layer = tf.keras.layers.StringLookup(
                vocabulary=vocabulary or None, mask_token="", num_oov_indices=1, output_mode="int",
                name=f"{feature['name']}_lookup",
            )

            def encode(strings: tf.Tensor, layer: Any = layer, length: int = length) -> tf.Tensor:
                ids = tf.cast(layer(categorical_values(strings)), tf.int32)
                return ids.to_tensor(default_value=PAD, shape=[None, length])

        encode.layer = layer  # type: ignore[attr-defined]  # what a SavedModel must track
        encoders[feature["name"]] = encode
    return encoders


def catalogue_vocabulary(strings: np.ndarray, kind: str, max_vocabulary: int) -> list[str]:
    """The ``max_vocabulary`` most frequent tokens (text) or values (categorical) of ``strings``,
    most frequent first, ties by the token itself: deterministic for a catalogue."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    strings = tf.constant(np.asarray(strings, dtype=str).astype(object))
    if kind == TEXT:
        # The encoder's own standardisation and split, so both agree on what a token is.
        layer = tf.keras.layers.TextVectorization(standardize=_STANDARDIZE, split="whitespace")
        tokens = layer._preprocess(strings)  # noqa: SLF001 - Keras' own standardise + split
    else:
        tokens = categorical_values(strings)
    counts = Counter(t.decode("utf-8") for t in tokens.flat_values.numpy().tolist())
    counts.pop("", None)
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [token for token, _ in ranked[: int(max_vocabulary)]]


def encode_catalogue(
    strings: np.ndarray, encoder: Callable[[tf.Tensor], tf.Tensor], batch_size: int = 65536
) -> np.ndarray:
    """``encoder`` over a catalogue's strings, in batches: int32 ``[len(strings), length]``."""
    strings = np.asarray(strings, dtype=str).astype(object)
    parts = [encoder(tf.constant(strings[i : i + batch_size])).numpy() for i in range(0, len(strings), batch_size)]
    return np.concatenate(parts).astype(np.int32)


@tf.keras.utils.register_keras_serializable(package="tfrs_irns")
class ContentItemTower(IdRowsMixin, tf.keras.layers.Layer):
    """Item index → candidate embedding, from the item's content (and optionally its id).

    Args:
      vocab_size: rows of the item index space, known items plus the OOV row 0.
      embedding_dim: output dimension ``d`` (also each token embedding's).
      hidden: sizes of optional ReLU layers after the summed features.
      normalize: L2-normalise the output (cosine scoring).
      use_id: add a trainable id row per item (masked by ``id_mask``).
      features: one dict per content feature: ``name``, ``kind`` (``text`` or
        ``categorical``), ``vocabulary`` (list of str, without padding and
        OOV) and ``length`` (ids kept per item).
      pooling: ``mean`` or ``attention`` for text features (categorical: mean).
      tables: ``{name: int32 [vocab_size, length]}``, the encoded catalogue;
        omitted (``from_config``), zero tables that ``set_weights`` or a
        checkpoint fills.
      id_mask: ``[vocab_size]`` 1 for items whose id row is trained, 0 for
        the others (default: 1 except the OOV row 0).

    Besides ``call`` it offers what the model uses of a tower
    (:mod:`~tfrs_irns.layers.contract`: ``vocab_size``, ``is_table_lookup``,
    :meth:`embedding_penalty`, :meth:`set_oov_to_mean`) and :meth:`embed_encoded`,
    the embedding of encoded features of any item
    (:class:`~tfrs_irns.layers.contract.ContentTowerProtocol`).
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 64,
        hidden: Sequence[int] = (),
        normalize: bool = False,
        use_id: bool = True,
        features: Sequence[dict[str, Any]] = (),
        pooling: str = "mean",
        tables: Optional[dict[str, np.ndarray]] = None,
        id_mask: Optional[np.ndarray] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        if not features and not use_id:
            raise ValueError("a tower needs use_id=True or at least one feature")
        init_head(self, vocab_size, embedding_dim, hidden, normalize)
        self.use_id = bool(use_id)
        self.pooling = pooling
        self.features = [
            {"name": str(f["name"]), "kind": str(f["kind"]), "vocabulary": [str(t) for t in f["vocabulary"]],
             "length": int(f["length"])}
            for f in features
        ]
        tables = dict(tables or {})
        self.embedding = None
        if self.use_id:
            self.embedding = tf.keras.layers.Embedding(self.vocab_size, self.embedding_dim, name="embedding")
            if id_mask is None:
                id_mask = np.concatenate([[0.0], np.ones(self.vocab_size - 1)])
            id_mask = np.asarray(id_mask, np.float32).reshape(-1)
            if id_mask.shape[0] != self.vocab_size:
                raise ValueError(f"id_mask has {id_mask.shape[0]} rows, expected vocab_size={self.vocab_size}")
            self.id_mask = self.add_weight(
                name="id_mask", shape=(self.vocab_size,), dtype=tf.float32, trainable=False,
                initializer=tf.keras.initializers.Constant(id_mask),
            )
        self.tables: list[tf.Variable] = []
        self.token_embeddings: list[tf.keras.layers.Layer] = []
        self.poolers: list[tf.keras.layers.Layer] = []
        for feature in self.features:
            _check_feature(feature)
            name, length = feature["name"], feature["length"]
            table = tables.pop(name, None)
            if table is not None:
                table = np.asarray(table, np.int32)
                if table.shape != (self.vocab_size, length):
                    raise ValueError(
                        f"tables[{name!r}] has shape {table.shape}, expected ({self.vocab_size}, {length})"
                    )
            # A weight, not a constant, so checkpoints and SavedModels carry it. int64, not int32: a
            # GPU has a gather kernel for int64 variables only (int32 tensors live in host memory).
            self.tables.append(
                self.add_weight(
                    name=f"{name}_ids", shape=(self.vocab_size, length), dtype=tf.int64, trainable=False,
                    initializer=tf.keras.initializers.Constant(table) if table is not None else "zeros",
                )
            )
            rows = len(feature["vocabulary"]) + 2  # + padding, OOV
            self.token_embeddings.append(tf.keras.layers.Embedding(rows, self.embedding_dim, name=f"{name}_embedding"))
            # Categorical values are a set: always the mean. Layer names as they always were.
            kind = pooling if feature["kind"] == TEXT else "mean"
            layer_name = {"name": f"{name}_attention"} if kind == "attention" else {}
            self.poolers.append(make_pooling(TEXT_POOLING, kind, **layer_name))
        if tables:
            raise ValueError(f"tables for unknown features: {', '.join(sorted(tables))}")
        self.mlp = _mlp(self.hidden, self.embedding_dim, name="mlp")

    @property
    def is_table_lookup(self) -> bool:
        """Never: encoding an item pools its features, so repeated items are worth encoding once."""
        return False

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.features]

    def _id_part(self, indices: tf.Tensor) -> tf.Tensor:
        rows = self.embedding(indices)
        return rows * tf.cast(tf.gather(self.id_mask, indices), rows.dtype)[:, None]

    def _feature_parts(self, encoded: Sequence[tf.Tensor]) -> list[tf.Tensor]:
        parts = []
        for ids, embedding, pooler in zip(encoded, self.token_embeddings, self.poolers):
            parts.append(pooler(embedding(ids), ids > PAD))
        return parts

    def _parts(self, indices: tf.Tensor) -> list[tf.Tensor]:
        parts = [self._id_part(indices)] if self.use_id else []
        return parts + self._feature_parts([tf.cast(tf.gather(table, indices), tf.int32) for table in self.tables])

    def _head(self, parts: list[tf.Tensor], training: bool) -> tf.Tensor:
        return apply_head(tf.add_n(parts) if len(parts) > 1 else parts[0], self.mlp, self.normalize, training)

    def call(self, indices: tf.Tensor, training: bool = False) -> tf.Tensor:
        return self._head(self._parts(indices), training)

    def embed_encoded(self, encoded: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        """The embedding of items given by their encoded features ``{name: int32 [B, length]}``
        (:func:`make_encoders`), with no id row: how an item absent from
        training — or from the catalogue — is embedded. Equals ``call`` on an
        index whose ``id_mask`` is 0 and whose table rows are these ids."""
        missing = [name for name in self.feature_names if name not in encoded]
        if missing:
            raise ValueError(f"encoded features missing: {', '.join(missing)}")
        parts = self._feature_parts([tf.cast(encoded[name], tf.int32) for name in self.feature_names])
        if self.use_id:  # a zero id part keeps the sum in the same order as ``call``
            parts = [tf.zeros_like(parts[0])] + parts
        return self._head(parts, training)

    def embedding_penalty(self, indices: tf.Tensor) -> tf.Tensor:
        """Mean over ``indices`` of the squared L2 norm of each part summed into the item vector
        (the masked id row, each pooled feature): the retrieval regulariser on
        exactly the embedding rows a batch used, as the id tower's."""
        return tf.add_n([mean_squared_norm(part) for part in self._parts(indices)])

    def id_table(self) -> Optional[tf.keras.layers.Embedding]:
        return self.embedding

    def trained_rows(self) -> Optional[tf.Tensor]:
        """``id_mask``: the OOV row becomes the mean of the trained rows only (its own mask stays 0)."""
        return self.id_mask if self.use_id else None

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(head_config(self), use_id=self.use_id, features=self.features, pooling=self.pooling)
        return config
