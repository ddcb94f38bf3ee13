"""tf.data pipeline of positive (user, item) pairs, in batches of ``B``.

Each epoch is one permutation of the training examples cut into consecutive
runs of ``B``. By default the permutation is a fresh seeded shuffle per epoch,
made in-graph (``stateless_shuffle`` keyed by ``Dataset.random``), so plain
``model.fit(pipeline.dataset, epochs=...)`` reshuffles without any callback.
A batching strategy such as GCBS replaces the permutation for an epoch with
:meth:`TrainPipeline.set_epoch_order`; the batches of that order are then
visited in a shuffled order.

There is no per-example Python and no per-example ``shuffle`` buffer: the
shuffle is one op over an index vector and each batch is one ``tf.gather``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import tensorflow as tf

from tfrs_irns.errors import DataError


class TrainPipeline:
    """Batches of ``{"user": int32[B], "item": int32[B]}`` index tensors.

    Args:
      users, items: training example indices (same length ``n``).
      batch_size: positives per batch (``B``; 600 in the IRNS paper).
      seed: makes every epoch's order reproducible across runs.
      drop_remainder: drop the last ``n mod B`` examples of each epoch.
    """

    def __init__(
        self,
        users: np.ndarray,
        items: np.ndarray,
        batch_size: int,
        seed: int = 0,
        drop_remainder: bool = False,
    ) -> None:
        n = int(len(users))
        if n != len(items):
            raise ValueError("users and items must have the same length")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be > 0, got {batch_size!r}")
        if n == 0:
            raise DataError("the training split is empty: nothing to train on")
        if drop_remainder and n < batch_size:
            raise DataError(
                f"the training split has {n} interactions, fewer than one batch of "
                f"batch_size={batch_size} with drop_remainder=True: every example would be "
                "dropped; lower the batch size or keep the remainder"
            )
        self.num_examples = n
        self.batch_size = int(batch_size)
        self.drop_remainder = drop_remainder
        self.seed = int(seed)
        self.users = np.asarray(users, np.int32)
        self.items = np.asarray(items, np.int32)
        self._users = tf.constant(self.users)
        self._items = tf.constant(self.items)
        # Strategy hook: an explicit order for the coming epoch, if any.
        self._order = tf.Variable(tf.range(n, dtype=tf.int32), trainable=False, name="epoch_order")
        self._use_order = tf.Variable(False, trainable=False, name="use_epoch_order")
        self.dataset = self._build()

    @property
    def steps_per_epoch(self) -> int:
        full, rest = divmod(self.num_examples, self.batch_size)
        return full + (1 if rest and not self.drop_remainder else 0)

    def set_epoch_order(self, order: Optional[np.ndarray]) -> None:
        """Use ``order`` (a permutation of ``range(n)``) for the next epoch.

        Call it before the epoch's iterator is created (e.g. in a callback's
        ``on_epoch_end`` for the following epoch). ``None`` returns to random
        shuffling.
        """
        if order is None:
            self._use_order.assign(False)
            return
        order = np.asarray(order)
        if order.shape != (self.num_examples,):
            raise ValueError(f"order must have shape ({self.num_examples},), got {order.shape}")
        self._order.assign(order.astype(np.int32))
        self._use_order.assign(True)

    def _build(self) -> tf.data.Dataset:
        n, b = self.num_examples, self.batch_size
        steps = self.steps_per_epoch

        def one_epoch(epoch_seed: tf.Tensor) -> tf.data.Dataset:
            seed = tf.stack([epoch_seed, tf.constant(self.seed, tf.int64)])
            order = tf.cond(
                self._use_order,
                lambda: self._order.read_value(),
                lambda: tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int32), seed=seed),
            )
            # Explicit orders keep their batches intact but visit them shuffled.
            batch_order = tf.random.experimental.stateless_shuffle(tf.range(steps, dtype=tf.int32), seed=seed)
            batch_order = tf.cond(self._use_order, lambda: batch_order, lambda: tf.range(steps, dtype=tf.int32))

            def batch(i: tf.Tensor) -> dict[str, tf.Tensor]:
                start = batch_order[i] * b
                idx = order[start : tf.minimum(start + b, n)]
                return {"user": tf.gather(self._users, idx), "item": tf.gather(self._items, idx)}

            return tf.data.Dataset.range(steps).map(batch)

        # One random draw per iteration: a new, reproducible seed every epoch.
        seeds = tf.data.Dataset.random(seed=self.seed, rerandomize_each_iteration=True).take(1)
        ds = seeds.flat_map(one_epoch)
        # flat_map hides the length; Keras needs it for its progress bar.
        ds = ds.apply(tf.data.experimental.assert_cardinality(steps))
        return ds.prefetch(tf.data.AUTOTUNE)
