"""tf.data batches read from encoded shards on disk (``data.streaming``).

The in-memory :class:`~tfrs_irns.batching.pipeline.TrainPipeline` holds every
training example as a constant and gathers each batch from a permutation: the
examples must fit in memory. Here they stay in the TFRecord shards written by
:mod:`tfrs_irns.data.streaming` (each record an ``int64 [3, CHUNK]`` tensor of
user index, item index, timestamp), and each epoch is the usual streaming
recipe: the shard files in a seeded order, several read at once
(``interleave``), examples mixed by a bounded ``shuffle`` buffer, batched,
prefetched. Memory is the buffer, not the data; the price is a shuffle that is
only as random as the buffer is large (examples far apart in the files rarely
share a batch, which matters little once the files themselves are mixed).

An epoch's order is a function of ``(seed, epoch)`` (the epoch a counter the
dataset advances each time it is iterated), so :meth:`ShardPipeline.resume_at`
replays an interrupted epoch exactly, as the in-memory pipeline does. There is
no explicit-order hook: batching strategies that reorder every example (GCBS)
need them in memory.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from tfrs_irns.batching.pipeline import EpochCursor
from tfrs_irns.errors import DataError

#: Examples in the shuffle buffer by default (~1.6 MB of int64 pairs).
SHUFFLE_BUFFER = 1 << 17
#: Shard files read at once.
CYCLE_LENGTH = 4


class ShardPipeline(EpochCursor):
    """Batches of ``{"user": int32[B], "item": int32[B]}`` read from TFRecord shards.

    Args:
      files: the training split's shard files.
      num_examples: the examples they hold (the steps per epoch follow from it).
      batch_size: positives per batch (``B``).
      seed: makes every epoch's order reproducible across runs.
      drop_remainder: drop the last ``n mod B`` examples of each epoch.
      shuffle_buffer: examples mixed at once.
      cycle_length: shard files read in parallel.
    """

    def __init__(
        self,
        files: Sequence[str],
        num_examples: int,
        batch_size: int,
        seed: int = 0,
        drop_remainder: bool = False,
        shuffle_buffer: int = SHUFFLE_BUFFER,
        cycle_length: int = CYCLE_LENGTH,
    ) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be > 0, got {batch_size!r}")
        if int(shuffle_buffer) < 1:
            raise ValueError(f"shuffle_buffer must be > 0, got {shuffle_buffer!r}")
        if num_examples <= 0 or not files:
            raise DataError("the training split is empty: nothing to train on")
        if drop_remainder and num_examples < batch_size:
            raise DataError(
                f"the training split has {num_examples} interactions, fewer than one batch of "
                f"batch_size={batch_size} with drop_remainder=True: every example would be dropped"
            )
        self.files = [str(f) for f in files]
        self.num_examples = int(num_examples)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.drop_remainder = drop_remainder
        self.shuffle_buffer = int(shuffle_buffer)
        self.cycle_length = max(1, min(int(cycle_length), len(self.files)))
        self._init_cursor()
        self.dataset = self._build()

    @property
    def order_variables(self) -> dict[str, tf.Variable]:
        """No explicit order to back up: an epoch's order follows from ``(seed, epoch)``."""
        return {}

    def _build(self) -> tf.data.Dataset:
        files = tf.constant(self.files)
        num_files = len(self.files)

        def one_epoch(_: tf.Tensor) -> tf.data.Dataset:
            epoch, first, reset = self._epoch_start()
            # Each epoch mixes files and records afresh from (seed, epoch), reproducibly: the files'
            # order and each record's own permutation are stateless functions of it. The buffer's
            # seed must be a Python int; its draws are the same each epoch, its input is not.
            key = tf.stack([epoch, tf.constant(self.seed, tf.int64)])
            order = tf.random.experimental.stateless_shuffle(tf.range(num_files), seed=key)
            ds = tf.data.Dataset.from_tensor_slices(tf.gather(files, order))
            ds = ds.interleave(
                tf.data.TFRecordDataset, cycle_length=self.cycle_length, block_length=1,
                num_parallel_calls=self.cycle_length, deterministic=True,
            )

            def parse(index: tf.Tensor, record: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
                block = tf.io.parse_tensor(record, tf.int64)
                perm = tf.random.experimental.stateless_shuffle(
                    tf.range(tf.shape(block)[1]), seed=tf.stack([epoch * 1_000_003 + self.seed, index])
                )
                block = tf.gather(block, perm, axis=1)
                return block[0], block[1]

            ds = ds.enumerate().map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            ds = ds.unbatch().shuffle(self.shuffle_buffer, seed=self.seed, reshuffle_each_iteration=False)
            ds = ds.batch(self.batch_size, drop_remainder=self.drop_remainder)
            ds = ds.map(_to_features, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            with tf.control_dependencies([reset]):
                return ds.skip(first)

        ds = tf.data.Dataset.range(1).flat_map(one_epoch)
        # flat_map hides the length; Keras needs it for its progress bar.
        ds = ds.apply(tf.data.experimental.assert_cardinality(self.steps_per_epoch))
        return ds.prefetch(tf.data.AUTOTUNE)


def _to_features(user: tf.Tensor, item: tf.Tensor) -> dict[str, tf.Tensor]:
    # The towers' tables hold fewer than 2^31 rows; int32 as the in-memory pipeline feeds them.
    return {"user": tf.cast(user, tf.int32), "item": tf.cast(item, tf.int32)}
