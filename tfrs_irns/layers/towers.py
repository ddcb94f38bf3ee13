"""Query and candidate towers of a two-tower retrieval model.

A two-tower model scores a (user, item) pair by the dot product of two
embeddings computed independently: the query tower sees only the user, the
candidate tower only the item. Independence is what makes retrieval cheap at
serving time (embed every item once, then a nearest-neighbour search) and what
lets IRNS embed thousands of sampled items per step with the same tower.

Both towers take integer indices from :class:`~tfrs_irns.data.vocab.Vocabulary`
(0 = OOV). Item features live inside the candidate tower as a table keyed by
item index, so any item index — including ones sampled in-graph — can be
embedded without looking anything up in the input batch.

What the model asks of a tower is written down in :mod:`tfrs_irns.layers.contract`;
the id-row helpers these towers share with the history and content towers in
:mod:`tfrs_irns.layers.id_rows`.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfrs_irns.layers.contract import CandidateTowerProtocol
from tfrs_irns.layers.id_rows import IdRowsMixin, clamp_oov


def embed_indices(tower: Any, rows: int, batch_size: int = 65536) -> np.ndarray:
    """``tower`` outputs for indices ``0..rows-1`` (OOV row 0 included), float32,
    in inference mode and in batches so a 1M-row catalogue stays bounded."""
    parts = []
    for start in range(0, rows, batch_size):
        indices = tf.range(start, min(start + batch_size, rows), dtype=tf.int32)
        parts.append(np.asarray(tower(indices, training=False)))
    return np.concatenate(parts).astype(np.float32, copy=False)


def encode_distinct(encoder: Any, indices: tf.Tensor, training: Any = False) -> tf.Tensor:
    """``encoder(indices)`` for a 1-D ``indices``, each distinct index encoded once.

    History windows repeat popular items many times; a content tower or an
    MLP costs far more per item than finding the distinct ones (``tf.unique``,
    which has a GPU kernel for int32 with int64 positions) and gathering back.
    A bare table row does not (``is_table_lookup``): it is encoded slot by slot.
    """
    if isinstance(encoder, CandidateTowerProtocol) and encoder.is_table_lookup:
        return encoder(indices, training=training)
    distinct, where = tf.unique(indices, out_idx=tf.int64)
    return tf.gather(encoder(distinct, training=training), where)


def _mlp(hidden: Sequence[int], output_dim: int, name: str) -> Optional[tf.keras.Sequential]:
    """ReLU layers of sizes ``hidden`` then a linear projection, or None."""
    if not hidden:
        return None
    layers = [tf.keras.layers.Dense(units, activation="relu") for units in hidden]
    layers.append(tf.keras.layers.Dense(output_dim))
    return tf.keras.Sequential(layers, name=name)


def apply_head(x: tf.Tensor, mlp: Optional[tf.keras.Sequential], normalize: bool, training: bool) -> tf.Tensor:
    """What every tower does after its embedding: the optional MLP, then the optional L2 norm."""
    if mlp is not None:
        x = mlp(x, training=training)
    if normalize:
        x = tf.math.l2_normalize(x, axis=-1)
    return x


def init_head(tower: Any, vocab_size: int, embedding_dim: int, hidden: Sequence[int], normalize: bool) -> None:
    """Set the attributes every tower shares (what :func:`head_config` reads back)."""
    tower.vocab_size = int(vocab_size)
    tower.embedding_dim = int(embedding_dim)
    tower.hidden = [int(h) for h in hidden]
    tower.normalize = bool(normalize)


def head_config(tower: Any) -> dict[str, Any]:
    """The config entries every tower shares: ``vocab_size``, ``embedding_dim``, ``hidden``, ``normalize``."""
    return {
        "vocab_size": tower.vocab_size,
        "embedding_dim": tower.embedding_dim,
        "hidden": tower.hidden,
        "normalize": tower.normalize,
    }


class _Tower(IdRowsMixin, tf.keras.layers.Layer):
    """Shared body: id embedding (+ features) → optional MLP → optional L2 norm.

    Besides ``call`` it offers what :class:`~tfrs_irns.models.TwoTowerModel`
    uses of a tower (:mod:`~tfrs_irns.layers.contract`): ``vocab_size``,
    ``is_table_lookup``, and the id rows' :meth:`embedding_penalty` and
    :meth:`set_oov_to_mean` (:class:`~tfrs_irns.layers.id_rows.IdRowsMixin`).
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 64,
        hidden: Sequence[int] = (),
        normalize: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        init_head(self, vocab_size, embedding_dim, hidden, normalize)
        self.embedding = tf.keras.layers.Embedding(self.vocab_size, self.embedding_dim, name="embedding")
        self.mlp = _mlp(self.hidden, self.embedding_dim, name="mlp")

    def _features(self, indices: tf.Tensor) -> Optional[tf.Tensor]:
        return None

    @property
    def is_table_lookup(self) -> bool:
        """Whether encoding an index is an embedding-row gather (no MLP): then
        encoding repeated indices costs less than finding the distinct ones."""
        return not self.hidden

    def call(self, indices: tf.Tensor, training: bool = False) -> tf.Tensor:
        x = self.embedding(indices)
        extra = self._features(indices)
        if extra is not None:
            x = x + extra
        return apply_head(x, self.mlp, self.normalize, training)

    def id_table(self) -> tf.keras.layers.Embedding:
        return self.embedding

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(head_config(self))
        return config


@tf.keras.utils.register_keras_serializable(package="tfrs_irns")
class QueryTower(_Tower):
    """User index → query embedding.

    Args:
      vocab_size: rows of the user table, known users plus the OOV row 0.
      embedding_dim: output dimension ``d``.
      hidden: sizes of optional ReLU layers applied after the embedding.
      normalize: L2-normalise the output (cosine scoring).

    An index past the table (a user added after training, e.g. a
    ``cold_users`` test user) is unknown: it gets the OOV row 0.
    """

    def call(self, indices: tf.Tensor, training: bool = False) -> tf.Tensor:
        return super().call(clamp_oov(indices, self.vocab_size), training=training)


@tf.keras.utils.register_keras_serializable(package="tfrs_irns")
class CandidateTower(_Tower):
    """Item index → candidate embedding, with optional item features.

    ``item_features`` is a dense ``[vocab_size, F]`` table (e.g. multi-hot
    genres) stored as a non-trainable weight and projected to ``d`` and added to
    the id embedding, so items share what their features share. The table is a
    weight, not part of the config: ``from_config`` builds a tower with a
    zero table of ``num_features`` columns, and ``set_weights`` (or a
    checkpoint) fills it.
    """

    def __init__(
        self,
        *args: Any,
        item_features: Optional[np.ndarray] = None,
        num_features: int = 0,
        **kwargs: Any,
    ) -> None:
        # ``vocab_size, embedding_dim, hidden, normalize`` as the query tower's.
        super().__init__(*args, **kwargs)
        if item_features is not None:
            item_features = np.asarray(item_features, np.float32)
            if item_features.shape[0] != self.vocab_size:
                raise ValueError(
                    f"item_features has {item_features.shape[0]} rows, expected vocab_size={self.vocab_size}"
                )
            num_features = item_features.shape[1]
        self.num_features = int(num_features)
        self.feature_table = None
        if self.num_features:
            init = (
                tf.keras.initializers.Constant(item_features)
                if item_features is not None
                else tf.keras.initializers.Zeros()
            )
            # A weight, not a constant, so checkpoints and SavedModels carry it.
            self.feature_table = self.add_weight(
                name="item_features",
                shape=(self.vocab_size, self.num_features),
                initializer=init,
                trainable=False,
            )
            self.feature_projection = tf.keras.layers.Dense(self.embedding_dim, use_bias=False, name="features")

    def _features(self, indices: tf.Tensor) -> Optional[tf.Tensor]:
        if self.feature_table is None:
            return None
        return self.feature_projection(tf.gather(self.feature_table, indices))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["num_features"] = self.num_features
        return config
