"""Full-corpus brute-force ranking: every query against every catalogue item.

A retrieval model is only as good as where it puts the items a user really
chose among *all* the items it could have returned. Sampled protocols (rank
the positive among 100 random negatives) can invert the order of two models
(Krichene & Rendle, KDD 2020), so here every query is scored against the whole
catalogue — item indices ``1..num_items``; the OOV bucket ``0`` is never
ranked — by one matrix product per chunk of queries.

Two primitives share one pass over the scores:

* :func:`top_k` — the ``k`` best items per query (what a user is shown, and
  what catalogue coverage is computed from);
* :func:`target_ranks` — the exact 0-based rank of given target items (what
  hit rate, recall, NDCG and MRR are computed from).

**Tie rule** (:data:`TIE_RULE`): items are ordered by score, descending, and
equal scores by item index, ascending — the order of ``tf.math.top_k``. The
rank of target ``t`` is the number of non-excluded items ``j != t`` with
``score_j > score_t`` or ``score_j == score_t and j < t``. Hence, for a target
that is not excluded, ``rank < K`` if and only if it is in ``top_k(K)``.

**Exclusion.** ``exclude`` removes, per query, items from the ranking (e.g. the
items the user already saw in training). A target is never removed from its own
ranking, so a test item the user also saw in training is still ranked.

**Cost.** The scores of a chunk of queries (``[chunk, num_items]`` float32,
at most :data:`MAX_CHUNK_BYTES`) come from one BLAS ``matmul``; rows are then
processed one at a time, so repeated passes over a row hit the cache. The top
``k`` are found by a sampled threshold (a strided sample gives a score that at
least ``k`` items reach; only the items above it are sorted), and each
target's rank costs one comparison pass over the row. When every query is the
same vector and nothing is excluded (the most-popular baseline), that one row
is sorted once and shared. A ranking that takes more than a few seconds
prints counted progress lines to stderr (:class:`~tfrs_irns.data.progress.Progress`).
``benchmarks/eval_scale.py`` compares this with
``tf.matmul`` + ``tf.math.top_k`` + TF comparisons: on 2 CPU cores, 20k test
interactions against 100k items took 1.7 s here and 30.9 s in TensorFlow
(medians of 3); against 1M items 34 s and 744 s.

**Precision.** Scores are float32 BLAS dot products, whose last bit may depend
on how queries are grouped into chunks; items whose scores agree to ~1e-7
(relative) may therefore swap places with another ``chunk_size``. Within one
call the ranks and the top-k lists come from the same scores, so
``rank < K`` ⇔ "in ``top_k(K)``" always holds.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import numpy as np
import scipy.sparse as sp

from tfrs_irns.data.progress import Progress
from tfrs_irns.errors import UserError

#: Rank given to a target that cannot be ranked (the OOV item index 0, i.e. an
#: item never seen in training). ``rank < K`` is false for every K.
UNRANKABLE = np.iinfo(np.int64).max

#: Queries scored per matrix product by default (every ``chunk_size`` here
#: and in :mod:`~tfrs_irns.evaluation.evaluate`).
CHUNK_SIZE = 1024

#: Upper bound on the score matrix of one chunk of queries; ``chunk_size`` is
#: lowered so that ``chunk * num_items * 4`` bytes stay below it.
MAX_CHUNK_BYTES = 256 * 2**20

TIE_RULE = (
    "items ordered by score descending, equal scores by item index ascending "
    "(tf.math.top_k order); rank of target t = number of non-excluded items j != t "
    "with score_j > score_t or (score_j == score_t and j < t), 0-based"
)

ExcludeLike = Union[sp.spmatrix, sp.sparray, Sequence[Sequence[int]], None]


def top_k(
    query_emb: np.ndarray,
    candidate_emb: np.ndarray,
    k: int,
    exclude: ExcludeLike = None,
    chunk_size: int = CHUNK_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` highest-scoring catalogue items for every query.

    Args:
      query_emb: ``[Q, d]`` query embeddings.
      candidate_emb: ``[num_items + 1, d]`` item embeddings; row 0 (OOV) is
        never ranked.
      k: items per query; clipped to ``num_items``.
      exclude: items to remove per query: a scipy.sparse matrix
        ``[Q, num_items + 1]`` (non-zero = removed) or a list of ``Q`` index
        lists.
      chunk_size: queries scored per matrix product (see :data:`MAX_CHUNK_BYTES`).

    Returns:
      ``(indices int32 [Q, min(k, num_items)], scores float32 [Q, ...])``, best
      first, ties by lower index. When exclusion leaves fewer than ``k`` items,
      the remaining slots hold index 0 and score ``-inf``.
    """
    _, indices, scores = rank_and_top_k(
        query_emb, candidate_emb, k=k, exclude=exclude, chunk_size=chunk_size
    )
    return indices, scores


def target_ranks(
    query_emb: np.ndarray,
    candidate_emb: np.ndarray,
    targets: np.ndarray,
    target_rows: Optional[np.ndarray] = None,
    exclude: ExcludeLike = None,
    chunk_size: int = CHUNK_SIZE,
) -> np.ndarray:
    """Exact 0-based ranks of ``targets`` in the full-catalogue ranking.

    Args:
      query_emb, candidate_emb, exclude, chunk_size: as in :func:`top_k`.
      targets: item indices ``[T]`` in ``0..num_items``. Index 0 (OOV) cannot be
        ranked and gets :data:`UNRANKABLE`.
      target_rows: the query row of each target ``[T]``; ``None`` means one
        target per query (``T == Q``). Several targets may share a query row,
        which is then scored once.

    Returns:
      int64 ``[T]`` ranks under :data:`TIE_RULE`; a target is never excluded
      from its own ranking.
    """
    ranks, _, _ = rank_and_top_k(
        query_emb,
        candidate_emb,
        targets=targets,
        target_rows=target_rows,
        k=0,
        exclude=exclude,
        chunk_size=chunk_size,
    )
    return ranks


def rank_and_top_k(
    query_emb: np.ndarray,
    candidate_emb: np.ndarray,
    targets: Optional[np.ndarray] = None,
    target_rows: Optional[np.ndarray] = None,
    k: int = 0,
    exclude: ExcludeLike = None,
    chunk_size: int = CHUNK_SIZE,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`target_ranks` and :func:`top_k` from one pass over the scores.

    Returns ``(ranks int64 [T], indices int32 [Q, k'], scores float32 [Q, k'])``
    with ``k' = min(k, num_items)``.
    """
    queries = _embeddings("query_emb", query_emb)
    cands = _embeddings("candidate_emb", candidate_emb)
    if cands.shape[0] < 1:
        raise ValueError("candidate_emb needs at least the OOV row 0")
    if queries.shape[1] != cands.shape[1]:
        raise ValueError(
            f"query_emb has dimension {queries.shape[1]} but candidate_emb has {cands.shape[1]}"
        )
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if int(k) < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    num_queries = queries.shape[0]
    num_items = cands.shape[0] - 1
    width = min(int(k), num_items)

    targets, rows = _targets(targets, target_rows, num_queries, num_items)
    # Targets sorted by query row: row q owns order[ptr[q]:ptr[q + 1]].
    order = np.argsort(rows, kind="stable")
    ptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=num_queries))])
    ex_ptr, ex_cols = _exclusion(exclude, num_queries, num_items)

    ranks = np.full(targets.shape[0], UNRANKABLE, np.int64)
    top_idx = np.zeros((num_queries, width), np.int32)
    top_scores = np.full((num_queries, width), -np.inf, np.float32)
    if num_items == 0 or num_queries == 0:
        return ranks, top_idx, top_scores

    if ex_cols.size == 0 and num_queries > 1 and bool((queries == queries[0]).all()):
        return _shared_ranking(queries[0], cands, targets, width, num_queries)

    per_chunk = max(1, min(int(chunk_size), MAX_CHUNK_BYTES // (4 * num_items)))
    per_chunk = min(per_chunk, num_queries)
    catalogue_t = cands[1:].T  # a transposed view: BLAS reads it without a copy
    buffer = np.empty((per_chunk, num_items), np.float32)
    # A large catalogue times many test users takes minutes: say how far it is (quiet when quick).
    with Progress(f"ranking {num_items:,} items", total=num_queries, unit="users") as progress:
        for start in range(0, num_queries, per_chunk):
            stop = min(start + per_chunk, num_queries)
            scores = buffer[: stop - start]
            np.matmul(queries[start:stop], catalogue_t, out=scores)
            for q in range(start, stop):
                row = scores[q - start]
                mine = order[ptr[q] : ptr[q + 1]]
                mine = mine[targets[mine] > 0]
                cols = targets[mine] - 1
                own = row[cols]  # before exclusion: a target keeps its own score
                row[ex_cols[ex_ptr[q] : ex_ptr[q + 1]]] = -np.inf
                if width:
                    _row_top_k(row, width, top_idx[q], top_scores[q])
                for pos, col, score in zip(mine, cols, own):
                    # Lower indices win ties, so they count when >=, higher when >.
                    ranks[pos] = np.count_nonzero(row[:col] >= score) + np.count_nonzero(
                        row[col + 1 :] > score
                    )
            progress.update(stop)
    return ranks, top_idx, top_scores


def _shared_ranking(
    query: np.ndarray, cands: np.ndarray, targets: np.ndarray, width: int, num_queries: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`rank_and_top_k` when every query is the same vector and nothing is
    excluded (a non-personalised scorer such as most-popular): one row of
    scores, sorted once by the tie rule; a target's rank is its position in
    that order (the count the tie rule defines), instead of two passes over
    the catalogue per target."""
    row = cands[1:] @ query
    order = np.lexsort((np.arange(row.shape[0]), -row))
    position = np.empty(row.shape[0], np.int64)
    position[order] = np.arange(row.shape[0])
    ranks = np.full(targets.shape[0], UNRANKABLE, np.int64)
    known = targets > 0
    ranks[known] = position[targets[known] - 1]
    best = order[:width]
    scores = row[best].astype(np.float32)
    indices = np.where(scores == -np.inf, 0, best + 1).astype(np.int32)
    return ranks, np.repeat(indices[None], num_queries, 0), np.repeat(scores[None], num_queries, 0)


def _row_top_k(row: np.ndarray, k: int, out_idx: np.ndarray, out_scores: np.ndarray) -> None:
    """Write the ``k`` best columns of ``row`` (score desc, column asc) as item indices."""
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
        # Keep everything above the k-th best score, then the lowest-index ties.
        kth = np.partition(vals, vals.shape[0] - k)[vals.shape[0] - k]
        above = np.flatnonzero(vals > kth)
        ties = np.flatnonzero(vals == kth)[: k - above.shape[0]]
        keep = np.concatenate([above, ties])
        cand, vals = cand[keep], vals[keep]
    best = np.lexsort((cand, -vals))
    cand, vals = cand[best], vals[best]
    out_scores[:] = vals
    out_idx[:] = np.where(vals == -np.inf, 0, cand + 1)


def _embeddings(name: str, value: np.ndarray) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D [rows, dim] array, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise UserError(
            f"evaluation: {name} contains NaN or inf values; training probably diverged "
            "(try a lower train.learning_rate)"
        )
    return arr


def _targets(
    targets: Optional[np.ndarray], target_rows: Optional[np.ndarray], num_queries: int, num_items: int
) -> tuple[np.ndarray, np.ndarray]:
    if targets is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    targets = np.asarray(targets, np.int64).reshape(-1)
    if target_rows is None:
        if targets.shape[0] != num_queries:
            raise ValueError(
                f"{targets.shape[0]} targets for {num_queries} queries: pass target_rows "
                "to give several targets per query"
            )
        rows = np.arange(num_queries, dtype=np.int64)
    else:
        rows = np.asarray(target_rows, np.int64).reshape(-1)
        if rows.shape != targets.shape:
            raise ValueError(f"target_rows has {rows.shape[0]} entries, targets {targets.shape[0]}")
        if rows.size and (rows.min() < 0 or rows.max() >= num_queries):
            raise ValueError(f"target_rows must lie in 0..{num_queries - 1}")
    if targets.size and (targets.min() < 0 or targets.max() > num_items):
        raise ValueError(f"target items must lie in 0..{num_items} (0 = OOV)")
    return targets, rows


def _exclusion(exclude: ExcludeLike, num_queries: int, num_items: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR row pointers and 0-based catalogue columns of the excluded items."""
    if exclude is None:
        return np.zeros(num_queries + 1, np.int64), np.zeros(0, np.int64)
    if sp.issparse(exclude):
        matrix = sp.csr_matrix(exclude)
    else:
        lists = [np.asarray(items, np.int64).reshape(-1) for items in exclude]
        lengths = [len(items) for items in lists]
        cols = np.concatenate(lists) if lists else np.zeros(0, np.int64)
        if cols.size and (cols.min() < 0 or cols.max() > num_items):
            raise ValueError(f"excluded items must lie in 0..{num_items}")
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        matrix = sp.csr_matrix(
            (np.ones(cols.shape[0], np.int8), cols, indptr), shape=(len(lists), num_items + 1)
        )
    if matrix.shape != (num_queries, num_items + 1):
        raise ValueError(
            f"exclude has shape {matrix.shape}, expected (num_queries, num_items + 1) = "
            f"({num_queries}, {num_items + 1})"
        )
    matrix.eliminate_zeros()
    # Drop the OOV column 0 (never ranked) and shift to catalogue columns.
    rows = np.repeat(np.arange(num_queries), np.diff(matrix.indptr))
    keep = matrix.indices > 0
    counts = np.bincount(rows[keep], minlength=num_queries)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return ptr, matrix.indices[keep].astype(np.int64) - 1
