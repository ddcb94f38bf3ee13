"""Exact top-k and exact ranks over a whole catalogue: the package's one ranking primitive.

Every place that asks "which items score best for this query, and where does
this item land?" — the final evaluation, ``evaluate``, per-epoch validation,
the SavedModel's serving scan, the ANN recall check and GCBS's hard items —
uses this module, so they all follow one tie rule and one exclusion rule:

* **Tie rule** (:data:`TIE_RULE`): items are ordered by score, descending, and
  equal scores by column (item) index, ascending — the order of
  ``tf.math.top_k``. The rank of target ``t`` is the number of non-excluded
  columns ``j != t`` with ``s_j > s_t`` or ``s_j == s_t and j < t``; a target is
  never excluded from its own ranking.
* **Exclusion**: per query, columns removed from the ranking (seen items),
  applied where the scores are (on the device, for the TensorFlow path).

Columns here are 0-based rows of the ``items`` table; callers that keep an
OOV row 0 (the evaluation) pass ``items[1:]`` and shift by one.

**Two paths, one answer.** :func:`rank_top_k` scores fixed-size chunks of
queries against the whole table, chosen by ``device``:

* ``"tf"`` — a ``tf.function`` over one chunk (:func:`rank_chunk`): ``matmul``,
  exclusions scattered as ``-inf``, ``tf.math.top_k``, and every target's rank
  from one ``searchsorted`` + ``bincount`` over the chunk (score and column packed
  into one int64 key, so the tie rule costs nothing extra). Every op has a GPU
  kernel: on a GPU machine the scores never leave the device.
* ``"numpy"`` — BLAS per chunk, then one row at a time (cache-resident), rows
  shared out to one thread per core: a sampled-threshold top-k and one
  comparison pass per target. On this 2-core CPU it measured several times
  faster than the TensorFlow path (``benchmarks/eval_scale.py``: 550 against
  81 users/s at 20k items, d = 64, one run on a loaded machine) — TensorFlow's
  CPU ``searchsorted`` and ``top_k`` are the cost — so ``"auto"`` takes it
  when no GPU is visible.

Both give the same top-k columns and ranks for the same float32 scores (the
tests check it with exactly representable scores, ties included); scores that
agree to the last bit may swap between BLAS and TensorFlow, which sum the
products in different orders.

The serving module uses the graph pieces (:func:`block_top_k`,
:func:`merge_top_k`, :func:`mask_columns`: core ops only) to scan its item
table in blocks inside a SavedModel.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, NamedTuple, Optional, Union

import numpy as np
import tensorflow as tf

#: Rank of a target that cannot be ranked (column -1: an item the table does
#: not hold, e.g. the evaluation's OOV item). ``rank < K`` is false for every K.
UNRANKABLE = np.iinfo(np.int64).max

#: Queries scored per matrix product by default.
CHUNK_SIZE = 1024

#: Upper bound on the score matrix of one chunk of queries; the chunk is cut so
#: that ``chunk * num_items * 4`` bytes stay below it.
MAX_CHUNK_BYTES = 256 * 2**20

TIE_RULE = (
    "items ordered by score descending, equal scores by item index ascending "
    "(tf.math.top_k order); rank of target t = number of non-excluded items j != t "
    "with score_j > score_t or (score_j == score_t and j < t), 0-based"
)

DEVICES = ("auto", "numpy", "tf")

# Threads of the numpy path's per-row work (one per core, as BLAS uses).
_THREADS = min(8, os.cpu_count() or 1)


class Csr(NamedTuple):
    """Per-query column lists: query ``q`` owns ``cols[ptr[q]:ptr[q + 1]]`` (0-based)."""

    ptr: np.ndarray
    cols: np.ndarray


def gpu_visible() -> bool:
    """Whether TensorFlow sees a GPU (then ``device="auto"`` ranks in TensorFlow)."""
    return bool(tf.config.list_physical_devices("GPU"))


def resolve_device(device: str) -> str:
    """``"numpy"`` or ``"tf"`` for ``device`` in :data:`DEVICES`."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "auto":
        return "tf" if gpu_visible() else "numpy"
    return device


def chunk_rows(chunk_size: int, num_items: int, num_queries: int) -> int:
    """Queries per chunk: ``chunk_size``, lowered so a chunk's scores fit :data:`MAX_CHUNK_BYTES`."""
    per = max(1, min(int(chunk_size), MAX_CHUNK_BYTES // (4 * max(1, num_items))))
    return max(1, min(per, num_queries))


def rank_top_k(
    queries: np.ndarray,
    items: np.ndarray,
    k: int = 0,
    exclude: Optional[Csr] = None,
    target_rows: Optional[np.ndarray] = None,
    target_cols: Optional[np.ndarray] = None,
    chunk_size: int = CHUNK_SIZE,
    device: str = "auto",
    on_chunk: Optional[Callable[[int], None]] = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact ranks of targets and the top ``k`` columns of every query.

    Args:
      queries: ``[Q, d]`` float32 query vectors.
      items: ``[N, d]`` float32 item vectors; column ``j`` is row ``j``.
      k: columns per query in the top-k answer (clipped to ``N``; 0 = none).
      exclude: columns removed per query (:class:`Csr` with ``Q + 1`` pointers).
      target_rows, target_cols: the query row and column of each target
        ``[T]``; column -1 cannot be ranked (rank :data:`UNRANKABLE`).
      chunk_size: queries scored per matrix product (bounded by :data:`MAX_CHUNK_BYTES`).
      device: ``"auto"`` (TensorFlow when a GPU is visible, else numpy),
        ``"numpy"`` or ``"tf"``.
      on_chunk: called with the number of queries done after each chunk.

    Returns:
      ``(ranks int64 [T], top_cols int64 [Q, k'], top_scores float32 [Q, k'])``,
      ``k' = min(k, N)``, best first; when exclusion leaves fewer than ``k``
      columns the rest hold column -1 and score ``-inf``.
    """
    queries = np.ascontiguousarray(queries, np.float32)
    items = np.ascontiguousarray(items, np.float32)
    if queries.ndim != 2 or items.ndim != 2 or queries.shape[1] != items.shape[1]:
        raise ValueError(f"queries {queries.shape} and items {items.shape} must be [Q, d] and [N, d]")
    if int(k) < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    path = resolve_device(device)
    num_queries, num_items = queries.shape[0], items.shape[0]
    width = min(int(k), num_items)
    if target_cols is None:
        target_rows = target_cols = np.zeros(0, np.int64)
    target_rows = np.asarray(target_rows, np.int64).reshape(-1)
    target_cols = np.asarray(target_cols, np.int64).reshape(-1)
    if target_rows.shape != target_cols.shape:
        raise ValueError(f"target_rows has {target_rows.size} entries, target_cols {target_cols.size}")
    if exclude is None:
        exclude = Csr(np.zeros(num_queries + 1, np.int64), np.zeros(0, np.int64))
    if len(exclude.ptr) != num_queries + 1:
        raise ValueError(f"exclude has {len(exclude.ptr) - 1} rows, expected {num_queries}")

    ranks = np.full(target_cols.shape[0], UNRANKABLE, np.int64)
    top_cols = np.full((num_queries, width), -1, np.int64)
    top_scores = np.full((num_queries, width), -np.inf, np.float32)
    if num_items == 0 or num_queries == 0:
        return ranks, top_cols, top_scores
    # Targets sorted by query row: row q owns order[tptr[q]:tptr[q + 1]].
    order = np.argsort(target_rows, kind="stable")
    tptr = np.concatenate([[0], np.cumsum(np.bincount(target_rows, minlength=num_queries))]).astype(np.int64)
    per_chunk = chunk_rows(chunk_size, num_items, num_queries)
    run = (_NumpyChunks if path == "numpy" else _TfChunks)(items, per_chunk)
    try:
        for start in range(0, num_queries, per_chunk):
            stop = min(start + per_chunk, num_queries)
            run(queries, items, start, stop, width, exclude, order, tptr, target_cols, ranks, top_cols, top_scores)
            if on_chunk is not None:
                on_chunk(stop)
    finally:
        run.close()
    return ranks, top_cols, top_scores


def shared_rank_top_k(
    query: np.ndarray, items: np.ndarray, target_cols: np.ndarray, k: int, num_queries: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`rank_top_k` when every query is the same vector and nothing is
    excluded (a non-personalised scorer such as most-popular): one row of
    scores, sorted once by the tie rule; a target's rank is its position in
    that order, instead of a pass over the catalogue per target."""
    row = np.asarray(items, np.float32) @ np.asarray(query, np.float32)
    n = row.shape[0]
    order = np.lexsort((np.arange(n), -row))
    position = np.empty(n, np.int64)
    position[order] = np.arange(n)
    target_cols = np.asarray(target_cols, np.int64)
    ranks = np.full(target_cols.shape[0], UNRANKABLE, np.int64)
    known = target_cols >= 0
    ranks[known] = position[target_cols[known]]
    best = order[: min(int(k), n)]
    scores = row[best].astype(np.float32)
    cols = np.where(scores == -np.inf, -1, best).astype(np.int64)
    return ranks, np.repeat(cols[None], num_queries, 0), np.repeat(scores[None], num_queries, 0)


# --------------------------------------------------------------------------- numpy path


class _NumpyChunks:
    """The numpy path: one BLAS product per chunk into a reused buffer, then
    one row at a time (repeated passes over a row hit the cache), the rows
    shared out to one thread per core (numpy's comparisons and partitions
    release the GIL; BLAS uses every core for the product, so should this).
    Buffers are reused because a fresh large array costs a page fault per 4 KB."""

    def __init__(self, items: np.ndarray, per_chunk: int) -> None:
        self.items_t = items.T  # a transposed view: BLAS reads it without a copy
        self.scores = np.empty((per_chunk, items.shape[0]), np.float32)
        self.threads = max(1, min(_THREADS, per_chunk))
        self.masks = [np.empty(items.shape[0], bool) for _ in range(self.threads)]
        self.pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None

    def __call__(self, queries, items, start, stop, width, exclude, order, tptr, target_cols, ranks, top_cols, top_scores):
        scores = self.scores[: stop - start]
        np.matmul(queries[start:stop], self.items_t, out=scores)

        def rows(part: int) -> None:
            mask = self.masks[part]
            for q in range(start + part, stop, self.threads):  # interleaved: equal shares of targets
                row = scores[q - start]
                mine = order[tptr[q] : tptr[q + 1]]
                mine = mine[target_cols[mine] >= 0]
                cols = target_cols[mine]
                own = row[cols]  # before exclusion: a target keeps its own score
                row[exclude.cols[exclude.ptr[q] : exclude.ptr[q + 1]]] = -np.inf
                if width:
                    _row_top_k(row, width, top_cols[q], top_scores[q])
                    # A target in the row's top-k list is beaten by exactly the entries before it.
                    listed = top_cols[q][None, :] == cols[:, None]
                    found = listed.any(axis=1)
                    ranks[mine[found]] = listed[found].argmax(axis=1)
                    mine, cols, own = mine[~found], cols[~found], own[~found]
                if mine.size:
                    ranks[mine] = _count_beating(row, cols, own, mask)

        if self.pool is None:
            rows(0)
        else:
            list(self.pool.map(rows, range(self.threads)))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


#: Elements of a score row compared at a time when ranking its targets: every
#: target is counted over one segment while it is cache-resident (1 MiB of
#: float32, within a core's L2), instead of one pass over the whole row per target.
RANK_SEGMENT = 1 << 18


def _count_beating(row: np.ndarray, cols: np.ndarray, scores: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per target ``(cols[i], scores[i])``: the columns of ``row`` that beat it by the tie rule."""
    counts = np.zeros(cols.shape[0], np.int64)
    n = row.shape[0]
    for a in range(0, n, RANK_SEGMENT):
        b = min(a + RANK_SEGMENT, n)
        seg, out = row[a:b], mask[: b - a]
        for i, (col, score) in enumerate(zip(cols, scores)):
            # Lower columns win ties, so they count when >=, higher ones when > (the
            # target's own column is not > its own score, nor is -inf once excluded).
            cut = min(max(int(col) - a, 0), b - a)
            below = np.count_nonzero(np.greater_equal(seg[:cut], score, out=out[:cut]))
            above = np.count_nonzero(np.greater(seg[cut:], score, out=out[cut:]))
            counts[i] += below + above
    return counts


def _row_top_k(row: np.ndarray, k: int, out_cols: np.ndarray, out_scores: np.ndarray) -> None:
    """Write the ``k`` best columns of ``row`` (score desc, column asc)."""
    n = row.shape[0]
    if k < n:
        cand = None
        # A threshold that at least k scores reach, from a strided sample:
        # the m-th best of every step-th score is reached by ~m * step items.
        step = max(1, min(64, n // (4 * k)))
        if step > 1:
            sample = row[::step]
            m = min(sample.shape[0], math.ceil(2 * k / step) + 8)
            tau = np.partition(sample, sample.shape[0] - m)[sample.shape[0] - m]
            cand = np.flatnonzero(row >= tau)
            if cand.shape[0] < k:
                cand = None
        if cand is None:  # exact k-th best score (rare: skewed samples, small rows)
            tau = np.partition(row, n - k)[n - k]
            cand = np.flatnonzero(row >= tau)
    else:
        cand = np.arange(n)
    vals = row[cand]
    if cand.shape[0] > k:
        # Keep everything above the k-th best score, then the lowest-column ties.
        kth = np.partition(vals, vals.shape[0] - k)[vals.shape[0] - k]
        above = np.flatnonzero(vals > kth)
        ties = np.flatnonzero(vals == kth)[: k - above.shape[0]]
        keep = np.concatenate([above, ties])
        cand, vals = cand[keep], vals[keep]
    best = np.lexsort((cand, -vals))
    cand, vals = cand[best], vals[best]
    out_scores[:] = vals
    out_cols[:] = np.where(vals == -np.inf, -1, cand)


# --------------------------------------------------------------------------- TensorFlow path


def _padded(ptr: np.ndarray, values: np.ndarray, rows: int) -> np.ndarray:
    """A CSR list (``ptr`` of its own rows, ``values`` from ``ptr[0]`` on) as a
    ``[rows, width]`` int32 matrix padded with -1."""
    counts = np.diff(ptr)
    width = int(counts.max(initial=0))
    out = np.full((rows, max(width, 1)), -1, np.int32)
    total = int(ptr[-1] - ptr[0])
    if total:
        which = np.repeat(np.arange(counts.shape[0]), counts)
        place = np.arange(total) - np.repeat(ptr[:-1] - ptr[0], counts)
        out[which, place] = values[:total]
    return out


class _TfChunks:
    """The TensorFlow path: the item table on the device once, then :func:`rank_chunk` per chunk.

    Every chunk is padded to the same number of query rows, so one traced
    graph (and one set of device buffers) serves the whole ranking.
    """

    def __init__(self, items: np.ndarray, per_chunk: int) -> None:
        self.items = tf.convert_to_tensor(items)  # placed on the default device (a GPU when there is one)
        self.rows = per_chunk

    def close(self) -> None:
        pass

    def __call__(self, queries, items, start, stop, width, exclude, order, tptr, target_cols, ranks, top_cols, top_scores):
        n = stop - start
        chunk = np.zeros((self.rows, queries.shape[1]), np.float32)
        chunk[:n] = queries[start:stop]
        lo, hi = int(exclude.ptr[start]), int(exclude.ptr[stop])
        excluded = _padded(exclude.ptr[start : stop + 1], exclude.cols[lo:hi], self.rows)
        local_ptr = tptr[start : stop + 1]
        mine = order[local_ptr[0] : local_ptr[-1]]
        targets = _padded(local_ptr, target_cols[mine], self.rows)
        vals, cols, got = rank_chunk(
            tf.constant(chunk), self.items, tf.constant(width, tf.int32), tf.constant(excluded), tf.constant(targets)
        )
        top_scores[start:stop] = vals.numpy()[:n]
        top_cols[start:stop] = cols.numpy()[:n]
        if mine.size:
            got = got.numpy()
            counts = np.diff(local_ptr)
            which = np.repeat(np.arange(n), counts)
            place = np.arange(mine.size) - np.repeat(local_ptr[:-1] - local_ptr[0], counts)
            value = got[which, place]
            ranks[mine] = np.where(value < 0, UNRANKABLE, value)


@tf.function(
    input_signature=[
        tf.TensorSpec([None, None], tf.float32, name="queries"),
        tf.TensorSpec([None, None], tf.float32, name="items"),
        tf.TensorSpec([], tf.int32, name="k"),
        tf.TensorSpec([None, None], tf.int32, name="exclude"),
        tf.TensorSpec([None, None], tf.int32, name="targets"),
    ]
)
def rank_chunk(
    queries: tf.Tensor, items: tf.Tensor, k: tf.Tensor, exclude: tf.Tensor, targets: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """One chunk on the device: ``(top scores [C, k], top columns int64 [C, k], ranks int64 [C, T])``.

    ``exclude`` ``[C, E]`` and ``targets`` ``[C, T]`` hold 0-based columns, -1
    = padding; a padded target gets rank -1, an empty top-k slot column -1.
    """
    scores = tf.matmul(queries, items, transpose_b=True)
    # -0.0 == 0.0 for top_k and the ranks; make their keys equal too.
    scores = tf.where(tf.equal(scores, 0.0), tf.zeros_like(scores), scores)
    n = tf.shape(scores)[1]
    valid = targets >= 0
    tcol = tf.maximum(targets, 0)
    own = tf.gather(scores, tcol, batch_dims=1)  # before exclusion: a target keeps its own score
    scores = mask_columns(scores, exclude, n)
    vals, cols = tf.math.top_k(scores, k=k)
    cols = tf.where(tf.math.is_inf(vals) & (vals < 0), -1, cols)
    # Rank of t = #columns whose (score, -column) key beats t's: one sorted
    # search of every column's key among the row's target keys, then a count.
    keys = _order_keys(scores, tf.range(n)[None, :])
    tkeys = tf.where(valid, _order_keys(own, tcol), tf.int64.max)  # padding: nothing beats it
    sorted_keys = tf.sort(tkeys, axis=1)
    beaten = tf.searchsorted(sorted_keys, keys, side="left", out_type=tf.int32)  # [C, N]
    rows, width = tf.shape(targets)[0], tf.shape(targets)[1]
    bins = rows * (width + 1)
    flat = tf.reshape(beaten + tf.range(rows)[:, None] * (width + 1), [-1])
    # int32 counts (no int64 DenseBincount GPU kernel); a count is at most N.
    hist = tf.math.bincount(flat, minlength=bins, maxlength=bins, dtype=tf.int32)
    hist = tf.reshape(tf.cast(hist, tf.int64), [rows, width + 1])
    # Column j beats the sorted target at position p iff beaten_j >= p + 1.
    by_position = tf.cumsum(hist, axis=1, reverse=True)[:, 1:]
    position = tf.searchsorted(sorted_keys, tkeys, side="left", out_type=tf.int32)  # equal keys share a count
    ranks = tf.gather(by_position, position, batch_dims=1)
    ranks = tf.where(valid, ranks, tf.constant(-1, tf.int64))
    return vals, tf.cast(cols, tf.int64), ranks


def _order_keys(scores: tf.Tensor, cols: tf.Tensor) -> tf.Tensor:
    """int64 keys ordered as the tie rule orders (score, column): a larger key
    ranks higher. The float32's bits, made monotone, above ``2**32 - 1 - column``."""
    bits = tf.cast(tf.bitcast(scores, tf.int32), tf.int64)
    # Negative floats: the larger the magnitude bits, the lower the value.
    monotone = tf.where(bits >= 0, bits, -(bits + 2**31) - 1)
    return monotone * 2**32 + (2**32 - 1 - tf.cast(cols, tf.int64))


# --------------------------------------------------------------------------- graph pieces (serving)


def mask_columns(scores: tf.Tensor, cols: tf.Tensor, size: Union[int, tf.Tensor]) -> tf.Tensor:
    """``scores[b, cols[b, j]] = -inf`` where ``0 <= cols[b, j] < size`` (others ignored)."""
    # Flat (row, column) pairs of the entries in range; GatherV2 (not GatherNd,
    # which has no integer GPU kernel) picks them.
    cols = tf.cast(cols, tf.int64)
    flat = tf.reshape(cols, [-1])
    shape = tf.shape(cols, out_type=tf.int64)
    rows = tf.reshape(tf.broadcast_to(tf.range(shape[0])[:, None], shape), [-1])
    keep = tf.where((flat >= 0) & (flat < tf.cast(size, tf.int64)))[:, 0]
    picked = tf.gather(flat, keep)
    index = tf.stack([tf.gather(rows, keep), picked], axis=1)
    return tf.tensor_scatter_nd_update(
        scores, index, tf.fill(tf.shape(picked), tf.constant(float("-inf"), scores.dtype))
    )


def block_top_k(
    query: tf.Tensor,
    block: tf.Tensor,
    start: Union[int, tf.Tensor],
    k: Union[int, tf.Tensor],
    exclude: Optional[tf.Tensor],
    size: Union[int, tf.Tensor],
) -> tuple[tf.Tensor, tf.Tensor]:
    """The best ``min(k, size)`` scores (float32) and columns (offset by ``start``)
    of one block of ``size`` item rows; ``exclude`` holds global columns (-1 = none)."""
    # float32 scores before the exclusion mask: TensorScatterUpdate has no bfloat16
    # GPU kernel, and the answer's scores are float32 anyway.
    scores = tf.cast(tf.matmul(query, block, transpose_b=True), tf.float32)
    if exclude is not None:
        scores = mask_columns(scores, exclude - tf.cast(start, exclude.dtype), size)
    v, r = tf.math.top_k(scores, k=tf.minimum(k, size))
    return tf.cast(v, tf.float32), r + tf.cast(start, r.dtype)


def merge_top_k(
    best: tf.Tensor, cols: tf.Tensor, v: tf.Tensor, r: tf.Tensor, k: Union[int, tf.Tensor]
) -> tuple[tf.Tensor, tf.Tensor]:
    """Merge a block's best into the running best ``k``. The running best comes
    first: blocks are scanned in column order, and on equal scores ``top_k``
    keeps the earlier entry, i.e. the lower column."""
    best, pick = tf.math.top_k(tf.concat([best, v], axis=1), k=k)
    return best, tf.gather(tf.concat([cols, r], axis=1), pick, batch_dims=1)
