"""The tower contract: what the model, the task, evaluation and the export ask of a tower.

A two-tower model scores a (user, item) pair by the dot product of two
embeddings computed apart: the query tower sees only the user, the candidate
tower only the item. Everything the package does with a model rests on that
split — IRNS embeds thousands of sampled items per step with the candidate
tower alone, evaluation and the export embed every user and every item once
and rank by a matrix product — so a tower is anything that maps int32 indices
``[n]`` (0 = OOV) to embeddings ``[n, d]``; its inside is its own business.

The contract is written here as :class:`typing.Protocol` types, so a user's own
Keras layer needs no base class, and the model and the export ask a tower what
it can do with ``isinstance`` (the ``runtime_checkable`` protocols) instead of
guessing from attribute names:

* :class:`QueryTowerProtocol` — users → ``[n, d]``, and ``vocab_size`` (the rows
  :meth:`~tfrs_irns.models.TwoTowerModel.user_embeddings` embeds);
* :class:`CandidateTowerProtocol` — items → ``[n, d]``, ``vocab_size``, and
  ``is_table_lookup`` (whether encoding repeated indices is cheaper than
  finding the distinct ones, :func:`~tfrs_irns.layers.towers.encode_distinct`);

and the optional capabilities:

* :class:`IdRowsProtocol` — a tower with a trainable id table: the L2 penalty on
  the rows a batch looks up (``model.embedding_l2``) and the OOV row set to the
  mean trained row (unknown users get the mean user). The package's towers share
  one implementation (:class:`~tfrs_irns.layers.id_rows.IdRowsMixin`);
* :class:`HistoryTowerProtocol` — a user tower that embeds a user from their
  recent items (:class:`~tfrs_irns.layers.history.HistoryQueryTower`): the export
  serves new users from a list of items with its ``head`` and item embeddings;
* :class:`ContentTowerProtocol` — an item tower that embeds items from their
  content (:class:`~tfrs_irns.layers.item_content.ContentItemTower`): the export
  serves new items from their raw strings.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol, Sequence, runtime_checkable

import numpy as np
import tensorflow as tf


@runtime_checkable
class QueryTowerProtocol(Protocol):
    """User indices ``[n]`` → query embeddings ``[n, d]``; ``vocab_size`` user rows (OOV row 0 included)."""

    vocab_size: int

    def __call__(self, indices: tf.Tensor, training: Any = False) -> tf.Tensor: ...


@runtime_checkable
class CandidateTowerProtocol(Protocol):
    """Item indices ``[n]`` → candidate embeddings ``[n, d]``; ``vocab_size`` item rows (OOV row 0 included).

    ``is_table_lookup``: encoding an index is a bare embedding-row gather, so
    repeated indices are encoded slot by slot rather than deduplicated first.
    """

    vocab_size: int

    @property
    def is_table_lookup(self) -> bool: ...

    def __call__(self, indices: tf.Tensor, training: Any = False) -> tf.Tensor: ...


@runtime_checkable
class IdRowsProtocol(Protocol):
    """A tower with a trainable id table whose row 0 is the OOV row."""

    def embedding_penalty(self, indices: tf.Tensor) -> tf.Tensor:
        """Mean squared L2 norm (float32 scalar) of the embedding rows ``indices`` look up."""
        ...

    def set_oov_to_mean(self) -> None:
        """Set the OOV row 0 to the mean of the trained rows."""
        ...


@runtime_checkable
class HistoryTowerProtocol(Protocol):
    """A user tower over each user's last ``length`` items: ``tower(users, positions=None)``.

    ``windows`` cuts the item windows; ``head`` turns embedded windows
    ``[n, L, d]`` and their mask ``[n, L]`` into queries (what the export runs
    in-graph); ``item_history_embeddings`` is what each item index contributes
    as a history entry; ``sequence_queries`` gives one causal query per position
    (sequence training; a ``transformer`` pooling only).
    """

    vocab_size: int
    length: int
    head: tf.keras.layers.Layer

    def __call__(self, users: tf.Tensor, positions: Optional[tf.Tensor] = None, training: Any = False) -> tf.Tensor:
        ...

    def windows(self, users: tf.Tensor, positions: Optional[tf.Tensor] = None) -> tuple[tf.Tensor, tf.Tensor]: ...

    def item_history_embeddings(self, batch_size: int = 65536) -> np.ndarray: ...

    def sequence_queries(self, users: tf.Tensor, sequence: tf.Tensor, training: Any = False) -> tf.Tensor: ...


@runtime_checkable
class ContentTowerProtocol(Protocol):
    """An item tower over content features: ``features`` (name, kind, vocabulary,
    length each) and ``embed_encoded`` of encoded feature ids (no id row)."""

    features: Sequence[dict[str, Any]]

    def embed_encoded(self, encoded: dict[str, tf.Tensor], training: Any = False) -> tf.Tensor: ...
