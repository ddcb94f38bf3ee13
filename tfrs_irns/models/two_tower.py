"""The two-tower retrieval model, as a ``tfrs.models.Model``.

A batch is ``{"user": int32[B], "item": int32[B]}`` — B positive pairs. The
query tower embeds the users, the candidate tower the positive items, and the
task turns them into a softmax loss over a candidate set (in-batch positives
plus, for IRNS, sampled items it embeds with the same candidate tower).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrs_irns.config import Config
from tfrs_irns.layers.towers import CandidateTower, QueryTower, embed_indices
from tfrs_irns.tasks.irns import irns_task_from_config


class TwoTowerModel(tfrs.models.Model):
    """Query tower + candidate tower + a retrieval task.

    Args:
      query_tower: user index → ``[B, d]``.
      candidate_tower: item index → ``[B, d]``.
      task: called as ``task(q, c, candidate_ids=..., query_ids=..., training=...)``.
      embedding_l2: L2 penalty on the embedding rows looked up in the batch
        (the users and positive items), the usual retrieval regulariser: it
        only touches rows the batch used, unlike weight decay on whole tables.
    """

    def __init__(
        self,
        query_tower: tf.keras.layers.Layer,
        candidate_tower: tf.keras.layers.Layer,
        task: tf.keras.layers.Layer,
        embedding_l2: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.query_tower = query_tower
        self.candidate_tower = candidate_tower
        self.task = task
        self.embedding_l2 = float(embedding_l2)

    def compute_loss(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
        users, items = features["user"], features["item"]
        query = self.query_tower(users, training=training)
        candidates = self.candidate_tower(items, training=training)
        loss = self.task(query, candidates, candidate_ids=items, query_ids=users, training=training)
        if self.embedding_l2 > 0.0:
            rows = [self.query_tower.embedding(users), self.candidate_tower.embedding(items)]
            penalty = tf.add_n([tf.reduce_mean(tf.reduce_sum(tf.square(r), axis=-1)) for r in rows])
            loss = loss + self.embedding_l2 * penalty
        return loss

    def set_oov_user_to_mean(self) -> None:
        """Make the OOV user row (index 0) the mean of the known users' rows.

        No training example ever has index 0 (vocabularies come from the
        training split), so its row keeps its random initial value and an
        unknown user at evaluation or serving time would get random items.
        The mean user instead gets what users score highest on average — a
        sensible, popularity-like answer for someone we know nothing about.
        """
        table = self.query_tower.embedding.embeddings
        if table.shape[0] > 1:
            table[0].assign(tf.reduce_mean(table[1:], axis=0))

    def user_embeddings(self, batch_size: int = 65536) -> np.ndarray:
        """Query embeddings of every user index (row 0 = OOV), ``[U + 1, d]``."""
        return embed_indices(self.query_tower, self.query_tower.vocab_size, batch_size)

    def item_embeddings(self, batch_size: int = 65536) -> np.ndarray:
        """Candidate embeddings of every item index (row 0 = OOV), ``[N + 1, d]``."""
        return embed_indices(self.candidate_tower, self.candidate_tower.vocab_size, batch_size)


def build_model(config: Config, data: Any, task: Optional[tf.keras.layers.Layer] = None) -> TwoTowerModel:
    """The model ``config`` describes, sized for ``data`` (a ``PreparedData``)."""
    m = config.model
    query_tower = QueryTower(
        data.user_vocab.size, m.embedding_dim, m.query_hidden, m.normalize, name="query_tower"
    )
    features = data.item_genres if (m.use_genres and data.item_genres is not None) else None
    candidate_tower = CandidateTower(
        data.item_vocab.size,
        m.embedding_dim,
        m.candidate_hidden,
        m.normalize,
        item_features=features,
        name="candidate_tower",
    )
    if task is None:
        task = irns_task_from_config(
            config.negatives, candidate_tower, data.item_counts, temperature=config.model.temperature
        )
    model = TwoTowerModel(query_tower, candidate_tower, task, embedding_l2=m.embedding_l2)
    # Create every weight now so checkpoints restore eagerly and exports see them.
    dummy = tf.zeros([1], tf.int32)
    query_tower(dummy)
    candidate_tower(dummy)
    return model
