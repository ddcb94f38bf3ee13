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

**Several workers** (:class:`WorkerFiles`): worker ``i`` of ``W`` reads only the
files ``i, i + W, ...`` (the writer cuts each split into equal files, so the
shares differ by at most one file) and yields per-replica batches of
``B / replicas`` examples, exactly ``steps_per_epoch`` per local replica, the
same count on every worker, so the collectives of each step always meet: a
worker whose files hold fewer rows than its share of an epoch starts its own
files again, one holding more leaves the epoch's last few unread (others each
epoch, the file order being reshuffled). A global step still has ``B``
positives; the in-batch negatives of a replica are its own ``B / replicas``
rows plus, with ``negatives.cross_replica``, every other replica's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfrs_irns.batching.pipeline import EpochCursor
from tfrs_irns.errors import DataError

#: Examples in the shuffle buffer by default (~1.6 MB of int64 pairs).
SHUFFLE_BUFFER = 1 << 17
#: Shard files read at once.
CYCLE_LENGTH = 4


@dataclass(frozen=True)
class WorkerFiles:
    """Which training files this worker reads and how a global batch splits.

    Args:
      num_workers: workers training together (``W``).
      index: this worker, ``0..W - 1``.
      num_replicas: replicas in sync over all workers (``W`` × replicas per worker).
      file_rows: rows in each training file (the writer records them).
    """

    num_workers: int
    index: int
    num_replicas: int
    file_rows: Sequence[int]

    def mine(self, items: Sequence) -> list:
        """This worker's files (or their row counts) among all of them: strided."""
        return list(items)[self.index :: self.num_workers]

    @property
    def rows(self) -> int:
        """Rows in this worker's files."""
        return int(sum(self.mine(self.file_rows)))


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
      workers: this worker's files and share of each batch under multi-worker
        training (None: one process reads every file, ``B`` per batch).
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
        workers: Optional[WorkerFiles] = None,
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
        self.workers = workers
        if workers is not None:
            if len(workers.file_rows) != len(files):
                raise ValueError(f"{len(workers.file_rows)} file row counts for {len(files)} files")
            if len(files) < workers.num_workers:
                raise DataError(
                    f"the training split has {len(files)} shard files, fewer than the {workers.num_workers} "
                    "workers that would each read their own"
                )
            if int(batch_size) % workers.num_replicas:
                raise ValueError(
                    f"batch_size={batch_size} does not split evenly over {workers.num_replicas} replicas"
                )
            files = workers.mine(files)
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
    def replica_batch(self) -> int:
        """Examples per batch this pipeline yields: ``B``, or ``B / replicas`` on each of several workers."""
        return self.batch_size // (self.workers.num_replicas if self.workers else 1)

    @property
    def batches_per_epoch(self) -> int:
        """Batches one iteration yields: ``steps_per_epoch``, times the local replicas of a worker."""
        if self.workers is None:
            return self.steps_per_epoch
        return self.steps_per_epoch * (self.workers.num_replicas // self.workers.num_workers)

    @property
    def rows_read_per_epoch(self) -> int:
        """Distinct training rows this pipeline reads in an epoch (all of its files' rows, or an epoch's worth)."""
        if self.workers is None:
            return self.num_examples
        return min(self.workers.rows, self.batches_per_epoch * self.replica_batch)

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
            if self.workers is None:
                ds = ds.batch(self.batch_size, drop_remainder=self.drop_remainder)
            else:  # the same number of full per-replica batches on every worker (see the module's note)
                ds = ds.repeat().take(self.batches_per_epoch * self.replica_batch)
                ds = ds.batch(self.replica_batch, drop_remainder=True)
                first = first * (self.batches_per_epoch // self.steps_per_epoch)
            ds = ds.map(_to_features, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            with tf.control_dependencies([reset]):
                return ds.skip(first)

        ds = tf.data.Dataset.range(1).flat_map(one_epoch)
        # flat_map hides the length; Keras needs it for its progress bar.
        ds = ds.apply(tf.data.experimental.assert_cardinality(self.batches_per_epoch))
        return ds.prefetch(tf.data.AUTOTUNE)


def cluster_position(strategy: Optional[tf.distribute.Strategy]) -> Optional[tuple[int, int]]:
    """``(number of workers, this worker's index)`` in ``strategy``'s cluster (chief
    first, then the workers by task index); None with one worker or no strategy."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return None
    spec = resolver.cluster_spec().as_dict()
    chiefs, workers = len(spec.get("chief", [])), len(spec.get("worker", []))
    if chiefs + workers <= 1:
        return None
    return chiefs + workers, int(resolver.task_id) + (chiefs if resolver.task_type == "worker" else 0)


def worker_files(strategy: tf.distribute.Strategy, file_rows: Sequence[int]) -> Optional[WorkerFiles]:
    """This worker's :class:`WorkerFiles` under ``strategy`` (None with one worker)."""
    position = cluster_position(strategy)
    if position is None:
        return None
    return WorkerFiles(position[0], position[1], int(strategy.num_replicas_in_sync), list(file_rows))


def per_worker(strategy: tf.distribute.Strategy, value: int) -> list[int]:
    """``value`` of every worker, by worker index (every worker calls it; one all-reduce)."""
    position = cluster_position(strategy)
    if position is None:
        return [int(value)]
    slots = np.zeros(position[0])
    slots[position[1]] = value
    return [int(round(v)) for v in collective_sum(strategy)(slots)]


def worker_input(pipeline: Any, strategy: tf.distribute.Strategy) -> Optional[dict[str, Any]]:
    """``model.fit`` input of a pipeline whose workers read their own files: each
    worker's per-replica batches as they are (no re-batching, no auto-sharding),
    one stream over every epoch, with ``steps_per_epoch``; None otherwise."""
    if getattr(pipeline, "workers", None) is None:
        return None
    dataset = pipeline.dataset.repeat()  # each repetition is the next epoch (its counter advances)
    return {
        "x": strategy.distribute_datasets_from_function(lambda _: dataset),
        "steps_per_epoch": pipeline.steps_per_epoch,
    }


def collective_sum(strategy: tf.distribute.Strategy) -> Callable[[np.ndarray], np.ndarray]:
    """A function summing a float64 vector over the workers of ``strategy``
    with one all-reduce (every worker must call it, with the same length)."""
    local = max(1, len(strategy.extended.worker_devices))

    @tf.function
    def all_reduce(vector: tf.Tensor) -> Any:
        def replica(value: tf.Tensor) -> tf.Tensor:
            context = tf.distribute.get_replica_context()
            first = tf.equal(context.replica_id_in_sync_group % local, 0)
            # A worker's replicas all hold the vector: only its first adds it.
            return context.all_reduce(tf.distribute.ReduceOp.SUM, tf.where(first, value, tf.zeros_like(value)))

        return strategy.run(replica, args=(vector,))

    def combine(vector: np.ndarray) -> np.ndarray:
        result = all_reduce(tf.constant(vector, tf.float64))
        return np.asarray(strategy.experimental_local_results(result)[0])

    return combine


def _to_features(user: tf.Tensor, item: tf.Tensor) -> dict[str, tf.Tensor]:
    # The towers' tables hold fewer than 2^31 rows; int32 as the in-memory pipeline feeds them.
    return {"user": tf.cast(user, tf.int32), "item": tf.cast(item, tf.int32)}
