"""The two-tower retrieval model, as a ``tfrs.models.Model``.

A batch is ``{"user": int32[B], "item": int32[B]}`` — B positive pairs. The
query tower embeds the users, the candidate tower the positive items, and the
task turns them into a softmax loss over a candidate set (in-batch positives
plus, for IRNS, sampled items it embeds with the same candidate tower).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrs_irns.layers.contract import HistoryTowerProtocol, IdRowsProtocol
from tfrs_irns.layers.towers import embed_indices, encode_distinct
from tfrs_irns.tasks.irns import on_replica_device
from tfrs_irns.tasks.sequence import sequence_retrieval_loss


class TwoTowerModel(tfrs.models.Model):
    """Query tower + candidate tower + a retrieval task.

    The two towers never see each other's input, so items can be embedded
    once and searched at serving time, and the task can embed extra sampled
    items with the candidate tower inside the train step.

    **The tower contract** (:mod:`tfrs_irns.layers.contract`). A tower is any
    Keras layer mapping int32 indices ``[n]`` to embeddings ``[n, d]`` (0 = OOV),
    with ``vocab_size`` (rows of the index space) for :meth:`user_embeddings` and
    :meth:`item_embeddings` (required by those two methods only). The model also
    uses, when a tower has them (:class:`~tfrs_irns.layers.contract.IdRowsProtocol`;
    the package's towers do), ``embedding_penalty(indices)`` for ``embedding_l2``
    (a tower without it adds no penalty) and ``set_oov_to_mean()`` for
    :meth:`set_oov_user_to_mean`.

    A query tower whose users are their recent items (an activity tower,
    :class:`~tfrs_irns.layers.contract.HistoryTowerProtocol`) keeps the same
    contract: it stores the users' timelines, and ``tower(users)`` embeds each
    user from their evaluation-time history, so evaluation, GCBS and the export
    need nothing else. In training, a batch may also carry
    ``"history_position"`` (int32 ``[B]``, each example's place in that table);
    the model then calls ``query_tower(users, positions=..., training=...)``
    so the tower applies its no-leakage window (the positive never in its own history).
    A batch with ``"sequence"`` and ``"targets"`` (int32 ``[B, L]``, sequence
    training) instead asks the tower for ``sequence_queries`` and scores
    every real position against its next item
    (:func:`~tfrs_irns.tasks.sequence.sequence_retrieval_loss`).

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
        """The loss training minimises: the task's plus the embedding L2 penalty."""
        task_loss, penalty = self._loss_terms(features, training)
        return task_loss + penalty

    def _loss_terms(self, features: dict[str, tf.Tensor], training: bool) -> tuple[tf.Tensor, tf.Tensor]:
        """``(task loss, embedding_l2 × penalty)`` of a batch."""
        if "sequence" in features:
            return self._sequence_loss_terms(features, training)
        users, items = features["user"], features["item"]
        if "history_position" in features:
            query = self.query_tower(users, positions=features["history_position"], training=training)
        else:
            query = self.query_tower(users, training=training)
        candidates = self.candidate_tower(items, training=training)
        loss = self.task(query, candidates, candidate_ids=items, query_ids=users, training=training)
        return loss, self._embedding_penalty(users, items, loss.dtype)

    def _sequence_loss_terms(
        self, features: dict[str, tf.Tensor], training: bool
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Sequence training (:mod:`tfrs_irns.tasks.sequence`): a batch of ``B``
        sequences ``{"user": [B], "sequence": [B, L], "targets": [B, L]}``, every
        real position's causal query against its next item, in one pass."""
        if not isinstance(self.query_tower, HistoryTowerProtocol):
            raise TypeError(
                f"sequence training needs a history query tower, got {type(self.query_tower).__name__}"
            )
        users, targets = features["user"], tf.cast(features["targets"], tf.int32)
        queries = self.query_tower.sequence_queries(users, features["sequence"], training=training)
        flat = tf.reshape(targets, [-1])
        positives = tf.reshape(
            encode_distinct(self.candidate_tower, flat, training), tf.concat([tf.shape(targets), [-1]], axis=0)
        )
        loss = sequence_retrieval_loss(self.task, queries, targets, positives, training=training)
        return loss, self._embedding_penalty(users, flat, loss.dtype)

    def _embedding_penalty(self, users: tf.Tensor, items: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
        """``embedding_l2`` × the mean squared norm of the rows the batch looked up (towers
        without ``embedding_penalty`` add none), weighted by this replica's share of the
        global batch, as the task's loss is."""
        if self.embedding_l2 <= 0.0:
            return tf.zeros([], dtype)
        penalties = [
            tower.embedding_penalty(indices)
            for tower, indices in ((self.query_tower, users), (self.candidate_tower, items))
            if isinstance(tower, IdRowsProtocol)
        ]
        if not penalties:
            return tf.zeros([], dtype)
        return self.embedding_l2 * tf.cast(tf.add_n(penalties), dtype) * _replica_share(users)

    def _step_logs(self, features: dict[str, tf.Tensor], training: bool) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        task_loss, penalty = self._loss_terms(features, training)
        loss = task_loss + penalty
        if self.losses:  # layers' own regularisers, if a custom tower has any
            loss += tf.add_n([tf.cast(tf.reduce_sum(x), loss.dtype) for x in self.losses])
        # ``loss`` is what is minimised; ``l2_loss`` shows the part of it that is
        # the embedding penalty (TFRS's ``regularization_loss`` would read 0).
        logs = {metric.name: metric.result() for metric in self.metrics}
        logs.update(loss=loss, l2_loss=penalty)
        return loss, logs

    def train_step(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """TFRS's train step, plus loss scaling when the optimizer is a
        ``LossScaleOptimizer`` (Keras wraps it so under ``mixed_float16``):
        float16 gradients of a float32 loss would underflow unscaled.

        Compiled with XLA (``model.compile(jit_compile=True)``), embedding
        gradients are made dense first (:func:`dense_gradients`): the Keras
        optimizer deduplicates sparse ones with ``tf.unique``, whose output
        shape depends on the data, so XLA cannot compile it."""
        optimizer = self.optimizer
        scaled = isinstance(optimizer, tf.keras.mixed_precision.LossScaleOptimizer)
        with tf.GradientTape() as tape:
            loss, logs = self._step_logs(inputs, training=True)
            objective = optimizer.get_scaled_loss(loss) if scaled else loss
        gradients = tape.gradient(objective, self.trainable_variables)
        if scaled:
            gradients = optimizer.get_unscaled_gradients(gradients)
        if self.jit_compile:
            gradients = dense_gradients(gradients, self.trainable_variables)
        optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return logs

    def test_step(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return self._step_logs(inputs, training=False)[1]

    def set_oov_user_to_mean(self) -> None:
        """Make the OOV user row (index 0) the mean of the known users' rows.

        No training example ever has index 0 (vocabularies come from the
        training split), so its row keeps its random initial value and an
        unknown user at evaluation or serving time would get random items.
        The mean user instead gets what users score highest on average — a
        sensible, popularity-like answer for someone we know nothing about.
        """
        if isinstance(self.query_tower, IdRowsProtocol):
            self.query_tower.set_oov_to_mean()

    def user_embeddings(self, batch_size: int = 65536) -> np.ndarray:
        """Query embeddings of every user index (row 0 = OOV), ``[U + 1, d]``."""
        return embed_indices(self.query_tower, self.query_tower.vocab_size, batch_size)

    def item_embeddings(self, batch_size: int = 65536) -> np.ndarray:
        """Candidate embeddings of every item index (row 0 = OOV), ``[N + 1, d]``."""
        return embed_indices(self.candidate_tower, self.candidate_tower.vocab_size, batch_size)


def dense_gradients(gradients: list[Any], variables: list[tf.Variable]) -> list[Any]:
    """``gradients`` with every ``tf.IndexedSlices`` (an embedding lookup's
    gradient) summed into a dense tensor of its variable's shape.

    Static shapes, no ``tf.unique``: what an XLA-compiled step needs. The
    updates are the same: the tf-keras Adagrad's sparse update equals its
    dense one on every row (an untouched row's gradient is 0, so its
    accumulator and value do not move), and Adam's and AdamW's sparse paths
    already decay ``m`` and ``v`` on every row each step and rewrite the whole
    variable, exactly as the dense path does. The cost is the dense update of
    whole tables (Adagrad touches only the batch's rows when sparse): small
    on a GPU, noticeable for big catalogues on a CPU, which is why
    ``train.jit_compile: auto`` compiles only when a GPU is found.
    """
    out = []
    for gradient, variable in zip(gradients, variables):
        if isinstance(gradient, tf.IndexedSlices):
            rows = variable.shape[0]  # static: XLA needs a known number of segments
            gradient = tf.math.unsorted_segment_sum(gradient.values, gradient.indices, rows)
        out.append(gradient)
    return out


def _replica_share(rows: tf.Tensor) -> tf.Tensor:
    """This replica's share of the global batch (1 on one device).

    Keras sums the replicas' gradients, so a per-replica mean over its own
    rows must be weighted by its share to add up to the global batch mean,
    as the task's loss is (rows / global rows).
    """
    replica = tf.distribute.get_replica_context()
    if replica is None or replica.num_replicas_in_sync == 1:
        return tf.constant(1.0)
    local = tf.cast(tf.shape(rows)[0], tf.float32)
    return local / replica.all_reduce(tf.distribute.ReduceOp.SUM, on_replica_device(local))
