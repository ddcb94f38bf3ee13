"""Retrieval metrics computed from exact full-corpus ranks (pure numpy).

Every metric here starts from the 0-based rank of each test item in its user's
full-catalogue ranking (see :mod:`tfrs_irns.evaluation.ranking`), so the same
ranks give every number and ``rank < K`` means "in the top K". A rank of
:data:`~tfrs_irns.evaluation.ranking.UNRANKABLE` (an item never seen in
training) is a miss for every K and adds nothing to NDCG or MRR, but still
counts as a relevant item.

Two kinds of averaging, deliberately:

* :func:`hit_rate` is per test *interaction* — the TFRS protocol
  (``tfrs.metrics.FactorizedTopK`` top-K categorical accuracy), so heavy users
  weigh more;
* :func:`recall`, :func:`ndcg` and :func:`mrr` are per *user*, then averaged
  over users, so every user weighs the same. Each row passed to them is one
  relevant item of that user (deduplicate repeated (user, item) pairs first).

:func:`coverage` needs the top-K lists instead of ranks, and
:func:`popularity_head` splits the catalogue into head and tail items.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from tfrs_irns.evaluation.ranking import UNRANKABLE


def hit_rate(ranks: np.ndarray, k: int) -> float:
    """Share of test interactions whose item ranks in the top ``k``."""
    ranks = np.asarray(ranks)
    return float(np.mean(ranks < k)) if ranks.size else float("nan")


def recall(ranks: np.ndarray, users: np.ndarray, k: int) -> float:
    """Per user, the share of their test items in the top ``k``; mean over users."""
    group, sizes = _groups(users)
    if not sizes.size:
        return float("nan")
    hits = np.bincount(group, weights=np.asarray(ranks) < k, minlength=sizes.size)
    return float(np.mean(hits / sizes))


def ndcg(ranks: np.ndarray, users: np.ndarray, k: int) -> float:
    """Per-user NDCG@k with binary relevance; mean over users.

    DCG sums ``1 / log2(rank + 2)`` over the user's test items ranked below
    ``k``; the ideal DCG puts ``min(#test items, k)`` relevant items first.
    """
    ranks = np.asarray(ranks)
    group, sizes = _groups(users)
    if not sizes.size:
        return float("nan")
    inside = ranks < k
    gains = np.zeros(ranks.shape[0])
    gains[inside] = 1.0 / np.log2(ranks[inside].astype(np.float64) + 2.0)
    dcg = np.bincount(group, weights=gains, minlength=sizes.size)
    # ideal[n] = DCG of n relevant items at ranks 0..n-1.
    ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(min(int(sizes.max()), k)) + 2.0))])
    return float(np.mean(dcg / ideal[np.minimum(sizes, k)]))


def mrr(ranks: np.ndarray, users: np.ndarray) -> float:
    """Mean reciprocal rank: ``1 / (rank + 1)`` per test item (0 if unrankable),
    averaged over the user's test items, then over users."""
    ranks = np.asarray(ranks)
    group, sizes = _groups(users)
    if not sizes.size:
        return float("nan")
    valid = ranks != UNRANKABLE
    rr = np.zeros(ranks.shape[0])
    rr[valid] = 1.0 / (ranks[valid].astype(np.float64) + 1.0)
    return float(np.mean(np.bincount(group, weights=rr, minlength=sizes.size) / sizes))


def coverage(top_indices: np.ndarray, k: int, num_items: int, items: Optional[np.ndarray] = None) -> float:
    """Share of catalogue items that appear in at least one top-``k`` list.

    Args:
      top_indices: ``[Q, >=k]`` top lists (index 0 = empty slot, ignored).
      k: list length considered.
      num_items: catalogue size (items ``1..num_items``).
      items: optional boolean mask ``[num_items + 1]`` restricting the
        catalogue (e.g. the tail); the share is then of those items.
    """
    shown = np.zeros(num_items + 1, bool)
    shown[np.asarray(top_indices)[:, :k].reshape(-1)] = True
    shown[0] = False
    pool = np.ones(num_items + 1, bool) if items is None else np.asarray(items, bool).copy()
    pool[0] = False
    total = int(pool.sum())
    return float(np.count_nonzero(shown & pool) / total) if total else float("nan")


def popularity_head(item_counts: np.ndarray, share: float = 0.5) -> np.ndarray:
    """Boolean mask ``[num_items + 1]`` of the head: the most popular items
    that together hold ``share`` of the training interactions.

    Items are sorted by count (descending, ties by lower index) and the head is
    the shortest prefix whose counts reach ``share`` of the total. Everything
    else — including the OOV index 0 and items never seen in training — is tail.
    """
    counts = np.asarray(item_counts, np.float64).copy()
    counts[0] = 0.0
    head = np.zeros(counts.shape[0], bool)
    total = counts.sum()
    if total <= 0:
        return head
    order = np.argsort(-counts, kind="stable")
    reached = np.cumsum(counts[order]) >= share * total
    head[order[: int(np.argmax(reached)) + 1]] = True
    return head


def _groups(users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense group id per row and the number of rows of each group."""
    _, group = np.unique(np.asarray(users), return_inverse=True)
    group = group.reshape(-1)
    return group, np.bincount(group) if group.size else np.zeros(0, np.int64)
