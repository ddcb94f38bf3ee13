"""tf.data pipeline of positive (user, item) pairs, in batches of ``B``.

Each epoch is one permutation of the training examples cut into consecutive
runs of ``B``. By default the permutation is a fresh seeded shuffle per epoch,
made in-graph (``stateless_shuffle`` keyed by ``(epoch, seed)``, the epoch a
counter the dataset advances each time it is iterated), so plain
``model.fit(pipeline.dataset, epochs=...)`` reshuffles without any callback,
and a resumed run (:meth:`TrainPipeline.resume_at`) sees exactly the batches
the interrupted one would have seen.
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


class EpochCursor:
    """Where a pipeline's next iteration starts: the epoch it is (0-based) and the
    batches it skips, both variables read inside the dataset's graph, so that a
    run restored from a backup replays exactly the batches the uninterrupted run
    saw. Shared by the in-memory and the streamed pipelines; a subclass sets
    ``num_examples``, ``batch_size`` and ``drop_remainder``, calls
    :meth:`_init_cursor`, and starts each epoch of its graph with
    :meth:`_epoch_start`."""

    num_examples: int
    batch_size: int
    drop_remainder: bool

    def _init_cursor(self) -> None:
        self._epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self._skip = tf.Variable(0, dtype=tf.int64, trainable=False, name="skip_batches")

    @property
    def steps_per_epoch(self) -> int:
        full, rest = divmod(self.num_examples, self.batch_size)
        return full + (1 if rest and not self.drop_remainder else 0)

    def resume_at(self, epoch: int, step: int = 0) -> None:
        """Make the next iteration epoch ``epoch`` (0-based) from its batch
        ``step``: the order that epoch had (random, or an explicit order set).

        A run restored from a backup calls it before ``fit`` so the resumed
        epochs see exactly the batches the uninterrupted run saw. That one
        iteration yields ``steps_per_epoch - step`` batches, the steps Keras
        runs when it resumes at ``step``; the dataset still declares
        ``steps_per_epoch`` (Keras needs it), so iterating it to the end
        by hand raises a cardinality error: take the remaining batches.
        """
        if not 0 <= step < self.steps_per_epoch:
            raise ValueError(f"step must be in [0, {self.steps_per_epoch}), got {step}")
        self._epoch.assign(int(epoch))
        self._skip.assign(int(step))

    def _epoch_start(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """In the dataset's graph, at an epoch's start: its number (advancing the
        counter), the batches it skips, and the op that resets the skip to 0 for
        the next epoch (run it before the epoch's batches)."""
        number = self._epoch.assign_add(1) - 1
        value = self._skip.read_value()
        with tf.control_dependencies([value]):
            first = tf.identity(value)
        with tf.control_dependencies([first]):
            reset = self._skip.assign(0)
        return number, first, reset


class TrainPipeline(EpochCursor):
    """Batches of ``{"user": int32[B], "item": int32[B]}`` index tensors.

    Args:
      users, items: training example indices (same length ``n``).
      batch_size: positives per batch (``B``; 600 in the IRNS paper).
      seed: makes every epoch's order reproducible across runs.
      drop_remainder: drop the last ``n mod B`` examples of each epoch.
      extras: more per-example arrays (length ``n``) batched under their
        names with the same gather, so they follow every order (shuffles,
        GCBS); e.g. ``{"history_position": ...}`` for an activity tower.
        Batched as int64 (a position can pass 2^31); ``user`` and ``item``
        stay int32 (they index tables, far smaller).
    """

    def __init__(
        self,
        users: np.ndarray,
        items: np.ndarray,
        batch_size: int,
        seed: int = 0,
        drop_remainder: bool = False,
        extras: Optional[dict[str, np.ndarray]] = None,
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
        self._extras = {}
        for name, values in (extras or {}).items():
            if len(values) != n:
                raise ValueError(f"extras[{name!r}] has {len(values)} entries, expected {n}")
            # int64: a position in a table of all interactions can pass 2^31 (history_position).
            self._extras[name] = tf.constant(np.asarray(values, np.int64))
        # Strategy hook: an explicit order for the coming epoch, if any. Row numbers are int64
        # throughout: an int32 order would wrap silently past 2^31 examples.
        self._order = tf.Variable(tf.range(n, dtype=tf.int64), trainable=False, name="epoch_order")
        self._use_order = tf.Variable(False, trainable=False, name="use_epoch_order")
        self._init_cursor()
        self.dataset = self._build()

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
        self._order.assign(order.astype(np.int64))
        self._use_order.assign(True)

    @property
    def order_variables(self) -> dict[str, tf.Variable]:
        """The explicit-order state (what a backup must keep mid-epoch)."""
        return {"order": self._order, "use_order": self._use_order}

    def _build(self) -> tf.data.Dataset:
        n, b = self.num_examples, self.batch_size
        steps = self.steps_per_epoch

        def one_epoch(_: tf.Tensor) -> tf.data.Dataset:
            epoch, first, reset = self._epoch_start()
            seed = tf.stack([epoch, tf.constant(self.seed, tf.int64)])
            order = tf.cond(
                self._use_order,
                lambda: self._order.read_value(),
                lambda: tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), seed=seed),
            )
            # Explicit orders keep their batches intact but visit them shuffled.
            batch_order = tf.random.experimental.stateless_shuffle(tf.range(steps, dtype=tf.int64), seed=seed)
            batch_order = tf.cond(self._use_order, lambda: batch_order, lambda: tf.range(steps, dtype=tf.int64))

            def batch(i: tf.Tensor) -> dict[str, tf.Tensor]:
                start = batch_order[i] * tf.constant(b, tf.int64)
                idx = order[start : tf.minimum(start + b, tf.constant(n, tf.int64))]
                out = {"user": tf.gather(self._users, idx), "item": tf.gather(self._items, idx)}
                out.update({name: tf.gather(values, idx) for name, values in self._extras.items()})
                return out

            with tf.control_dependencies([reset]):
                return tf.data.Dataset.range(first, steps).map(batch)

        # One element per iteration: it advances the epoch counter.
        ds = tf.data.Dataset.range(1).flat_map(one_epoch)
        # flat_map hides the length; Keras needs it for its progress bar.
        ds = ds.apply(tf.data.experimental.assert_cardinality(steps))
        return ds.prefetch(tf.data.AUTOTUNE)
