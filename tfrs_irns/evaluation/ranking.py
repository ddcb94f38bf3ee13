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

**Where it runs.** The work is :func:`tfrs_irns.topk.rank_top_k`, the package's one
ranking primitive (also behind the serving scan, the ANN recall check and
GCBS's hard items): fixed-size chunks of queries, each scored against the
whole catalogue by one matrix product (``[chunk, num_items]`` float32, at most
:data:`MAX_CHUNK_BYTES`). ``device="auto"`` ranks in TensorFlow when a GPU is
visible (matmul, exclusion, top-k and ranks on the device) and in numpy
otherwise (BLAS per chunk, then one cache-resident row at a time: a sampled
threshold top-k and one comparison pass per target), which measured faster
on this 2-core CPU. ``benchmarks/eval_scale.py --json`` compares it with the
bare matmul of the same chunks in one run: 0.31–0.46× the floor at 100k items
and 0.66–0.68× at 1M (1,000 users, 10 test items each, 20 seen items excluded,
d = 64, a heavily loaded 2-core machine). Both paths give the same answers.
When every query is the same vector and nothing is excluded (the
most-popular baseline), that one row is sorted once and shared. A ranking
that takes more than a few seconds prints counted progress lines to stderr
(:class:`~tfrs_irns.data.progress.Progress`).

**Precision.** Scores are float32 BLAS dot products, whose last bit may depend
on how queries are grouped into chunks; items whose scores agree to ~1e-7
(relative) may therefore swap places with another ``chunk_size``. Within one
call the ranks and the top-k lists come from the same scores, so
``rank < K`` ⇔ "in ``top_k(K)``" always holds.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
import scipy.sparse as sp

from tfrs_irns import topk as _topk
from tfrs_irns.data.progress import Progress
from tfrs_irns.errors import DivergedError
from tfrs_irns.topk import CHUNK_SIZE, MAX_CHUNK_BYTES, TIE_RULE, UNRANKABLE

__all__ = ["CHUNK_SIZE", "MAX_CHUNK_BYTES", "TIE_RULE", "UNRANKABLE", "rank_and_top_k", "target_ranks", "top_k"]

ExcludeLike = Union[sp.spmatrix, sp.sparray, Sequence[Sequence[int]], None]


def top_k(
    query_emb: np.ndarray,
    candidate_emb: np.ndarray,
    k: int,
    exclude: ExcludeLike = None,
    chunk_size: int = CHUNK_SIZE,
    device: str = "auto",
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
      device: ``"auto"`` (TensorFlow when a GPU is visible, else numpy),
        ``"numpy"`` or ``"tf"``: where the scores are ranked; same answers.

    Returns:
      ``(indices int32 [Q, min(k, num_items)], scores float32 [Q, ...])``, best
      first, ties by lower index. When exclusion leaves fewer than ``k`` items,
      the remaining slots hold index 0 and score ``-inf``.
    """
    _, indices, scores = rank_and_top_k(
        query_emb, candidate_emb, k=k, exclude=exclude, chunk_size=chunk_size, device=device
    )
    return indices, scores


def target_ranks(
    query_emb: np.ndarray,
    candidate_emb: np.ndarray,
    targets: np.ndarray,
    target_rows: Optional[np.ndarray] = None,
    exclude: ExcludeLike = None,
    chunk_size: int = CHUNK_SIZE,
    device: str = "auto",
) -> np.ndarray:
    """Exact 0-based ranks of ``targets`` in the full-catalogue ranking.

    Args:
      query_emb, candidate_emb, exclude, chunk_size, device: as in :func:`top_k`.
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
        device=device,
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
    device: str = "auto",
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
    path = _topk.resolve_device(device)
    num_queries = queries.shape[0]
    num_items = cands.shape[0] - 1
    width = min(int(k), num_items)

    targets, rows = _targets(targets, target_rows, num_queries, num_items)
    ex_ptr, ex_cols = _exclusion(exclude, num_queries, num_items)
    if num_items == 0 or num_queries == 0:
        ranks = np.full(targets.shape[0], UNRANKABLE, np.int64)
        return ranks, np.zeros((num_queries, width), np.int32), np.full((num_queries, width), -np.inf, np.float32)

    # Item index i is catalogue column i - 1; the OOV item 0 is column -1 (unrankable).
    if ex_cols.size == 0 and num_queries > 1 and bool((queries == queries[0]).all()):
        ranks, cols, scores = _topk.shared_rank_top_k(queries[0], cands[1:], targets - 1, width, num_queries)
    else:
        # A large catalogue times many test users takes minutes: say how far it is (quiet when quick).
        with Progress(f"ranking {num_items:,} items", total=num_queries, unit="users") as progress:
            ranks, cols, scores = _topk.rank_top_k(
                queries,
                cands[1:],
                k=width,
                exclude=_topk.Csr(ex_ptr, ex_cols),
                target_rows=rows,
                target_cols=targets - 1,
                chunk_size=chunk_size,
                device=path,
                on_chunk=progress.update,
            )
    return ranks, (cols + 1).astype(np.int32), scores


def _embeddings(name: str, value: np.ndarray) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D [rows, dim] array, got shape {arr.shape}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise DivergedError(f"evaluation: {name} contains NaN or inf values; training probably diverged")
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
