"""Id rows: what every tower with a trainable id table does with it, written once.

An id table has one row per known user (or item) plus the OOV row 0. Three
things follow from that layout, the same in the id, history and content towers:

* **the OOV clamp** — an index past the table (a user added after training, a
  ``cold_users`` test user) is unknown: it reads row 0 (:func:`clamp_oov`);
* **the embedding penalty** — the retrieval regulariser is the mean squared L2
  norm of the rows a batch looked up, not weight decay on whole tables, so rows
  a batch never used stay as they are (:func:`mean_squared_norm`);
* **the OOV row as the mean row** — no training example has index 0
  (vocabularies come from the training split), so row 0 would keep its random
  initial value; the mean of the trained rows is a neutral, popularity-like
  stand-in for an unknown id (:func:`set_oov_row_to_mean`).

:class:`IdRowsMixin` puts the three together as the
:class:`~tfrs_irns.layers.contract.IdRowsProtocol` methods of a tower.
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf


def clamp_oov(indices: tf.Tensor, vocab_size: int) -> tf.Tensor:
    """``indices`` with every index ``>= vocab_size`` (past the table) replaced by the OOV index 0."""
    return tf.where(indices < vocab_size, indices, tf.zeros_like(indices))


def mean_squared_norm(rows: tf.Tensor) -> tf.Tensor:
    """Mean over the rows ``[n, d]`` of their squared L2 norm, in float32 (under mixed precision too)."""
    rows = tf.cast(rows, tf.float32)
    return tf.reduce_mean(tf.reduce_sum(tf.square(rows), axis=-1))


def set_oov_row_to_mean(table: tf.Variable, trained: Optional[tf.Tensor] = None) -> None:
    """Assign row 0 of ``table`` ``[V, d]`` the mean of the trained rows.

    ``trained``: ``[V]`` weights, 1 for a trained row and 0 for the others (its
    entry 0 is 0); None: every row but 0. A one-row table is left as it is.
    """
    if table.shape[0] <= 1:
        return
    rows = tf.convert_to_tensor(table)
    if trained is None:
        mean = tf.reduce_mean(rows[1:], axis=0)
    else:
        mask = tf.convert_to_tensor(trained)[:, None]
        mean = tf.reduce_sum(rows * mask, axis=0) / tf.maximum(tf.reduce_sum(mask), 1.0)
    # A scatter, not ``table[0].assign``: a table split in row shards (parameter servers) has no row views.
    table.scatter_update(tf.IndexedSlices(mean[None], tf.constant([0])))


class IdRowsMixin:
    """:meth:`embedding_penalty` and :meth:`set_oov_to_mean` for a Keras tower layer.

    The tower says which table holds its id rows (:meth:`id_table`, None when it
    has none: no penalty, nothing to set) and, when not every row but 0 is
    trained, which are (:meth:`trained_rows`).
    """

    vocab_size: int

    def id_table(self) -> Optional[tf.keras.layers.Embedding]:
        """The id embedding layer, or None."""
        raise NotImplementedError

    def trained_rows(self) -> Optional[tf.Tensor]:
        """``[vocab_size]`` 1 for a trained id row, 0 for the others; None: every row but 0."""
        return None

    def embedding_penalty(self, indices: tf.Tensor) -> tf.Tensor:
        """Mean squared L2 norm of the id rows of ``indices`` (OOV-clamped; 0 without an id table):
        the retrieval regulariser that touches only the rows a batch used."""
        table = self.id_table()
        if table is None:
            return tf.zeros([], tf.float32)
        return mean_squared_norm(table(clamp_oov(indices, self.vocab_size)))

    def set_oov_to_mean(self) -> None:
        """Set the OOV id row (index 0) to the mean of the trained rows (see :func:`set_oov_row_to_mean`)."""
        table = self.id_table()
        if table is not None:
            set_oov_row_to_mean(table.embeddings, self.trained_rows())
