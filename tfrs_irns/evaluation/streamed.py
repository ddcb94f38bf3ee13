"""Evaluation read from a split's shards, a bounded group of users at a time.

Full-corpus evaluation needs each user's test interactions together (recall,
NDCG and MRR are per-user means), but not every user's at once: users are
ranked independently. So a split kept on disk (``data.streaming``) is
evaluated in passes: a first pass over its records collects the distinct
users (O(users), not O(rows)); the (sampled) users are then cut into groups
of at most ``users_per_pass`` (strided over the sorted users), and each pass
reads the records again and keeps only its group's rows, ranks them, and adds
the group's metric sums (:func:`~tfrs_irns.evaluation.shares.share_sums`) to
the running total. Memory is one group's rows and top lists; the numbers are
those of :func:`~tfrs_irns.evaluation.evaluate.evaluate_embeddings` on the
whole split (hit rates, coverage and counts exactly; per-user means to float
round-off). Under several workers each takes its share of the groups and one
all-reduce adds the workers' totals.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional, Unpack

import numpy as np

from tfrs_irns.errors import DataError
from tfrs_irns.evaluation.evaluate import (
    DEFAULT_KS,
    ProtocolArgs,
    _check_ks,
    _check_range,
    item_bands,
    protocol_record,
    ranked_blocks,
    scored_users,
)
from tfrs_irns.evaluation.ranking import CHUNK_SIZE
from tfrs_irns.evaluation.shares import WorkerShare, blocks_from_sums, share_sums

#: Users ranked per pass by default (their rows and top lists are what a pass holds).
USERS_PER_PASS = 50_000
#: Rows (targets) ranked per pass at most, by default: a target costs ~100 B through the
#: ranking's per-target arrays, so a pass holds ~100 MB whatever the split's size.
ROWS_PER_PASS = 1_000_000


def evaluate_streamed(
    user_emb: np.ndarray,
    item_emb: np.ndarray,
    records: Callable[[], Iterable[np.ndarray]],
    users_per_pass: int = USERS_PER_PASS,
    rows_per_pass: int = ROWS_PER_PASS,
    train_users: Optional[np.ndarray] = None,
    train_items: Optional[np.ndarray] = None,
    item_counts: Optional[np.ndarray] = None,
    share: Optional[WorkerShare] = None,
    **protocol: Unpack[ProtocolArgs],
) -> dict[str, Any]:
    """:func:`~tfrs_irns.evaluation.evaluate.evaluate_embeddings` of a split read in passes.

    Args:
      records: returns a fresh iterator over the split's records, each an
        integer array ``[>= 2, n]`` whose rows 0 and 1 are user and item indices
        (:func:`tfrs_irns.data.streaming.iter_blocks` of the split's files).
      users_per_pass, rows_per_pass: users, and rows (about: users are grouped, not
        rows), ranked per pass at most (what a pass holds at once).
      share: this worker's share of the passes, as in ``evaluate_embeddings``.
      train_users, train_items, item_counts, **protocol: as in ``evaluate_embeddings``.
    """
    if int(users_per_pass) < 1:
        raise ValueError(f"users_per_pass must be >= 1, got {users_per_pass!r}")
    if int(rows_per_pass) < 1:
        raise ValueError(f"rows_per_pass must be >= 1, got {rows_per_pass!r}")
    ks = _check_ks(protocol.get("ks", DEFAULT_KS))
    exclude_seen, max_queries, seed = protocol.get("exclude_seen", False), protocol.get("max_queries"), protocol.get("seed", 0)
    chunk_size, device = protocol.get("chunk_size", CHUNK_SIZE), protocol.get("device", "auto")
    num_users, num_items = np.shape(user_emb)[0] - 1, np.shape(item_emb)[0] - 1
    distinct = np.zeros(0, np.int64)
    rows = 0
    for block in records():  # pass 1: the users (O(users)), every index checked once
        users, items = np.asarray(block[0], np.int64), np.asarray(block[1], np.int64)
        _check_range("test user", users, num_users, "user")
        _check_range("test item", items, num_items, "item")
        distinct = np.union1d(distinct, users)
        rows += users.shape[0]
    if distinct.size == 0:
        raise DataError("evaluation: there are no test interactions to evaluate")
    chosen = scored_users(distinct, max_queries, seed)
    # Groups stride over the sorted users, so each holds about its share of the chosen users' rows.
    chosen_rows = rows * chosen.size / max(1, distinct.size)
    groups = max(-(-chosen.size // int(users_per_pass)), int(np.ceil(chosen_rows / int(rows_per_pass))))
    bands, head_items = item_bands(num_items, item_counts, train_items)
    slot, slots = (share.index, share.num_workers) if share is not None else (0, 1)
    total: Optional[np.ndarray] = None
    for group in range(slot, max(groups, slot + 1), slots):  # a worker with no group still adds zeros
        users, items = _group_rows(records, chosen[group::groups] if group < groups else chosen[:0])
        blocks, top = ranked_blocks(
            user_emb, item_emb, users, items, ks, bands, exclude_seen, train_users, train_items, chunk_size, device
        )
        oov = np.array([np.count_nonzero(items == 0), np.count_nonzero(users == 0)], np.float64)
        part = np.concatenate([share_sums(blocks, top, ks, num_items, slot, slots), oov])
        total = part if total is None else total + part
    assert total is not None  # the loop runs at least once
    if share is not None:
        total = np.asarray(share.combine(total), np.float64)
    combined, ranked = blocks_from_sums(total[:-2], list(bands), ks, num_items, bands, slots)
    result = combined.pop("all")
    result.update(combined)
    if share is not None:
        result["users_ranked_by_worker"] = ranked
    counts = {
        "queries": int(chosen.size), "users": int(distinct.size),
        "oov_items": int(round(total[-2])), "oov_users": int(round(total[-1])),
    }
    result["protocol"] = protocol_record(num_items, exclude_seen, head_items, max_queries, seed, counts)
    return result


def _group_rows(records: Callable[[], Iterable[np.ndarray]], group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (user, item) rows of the users in ``group`` (sorted), read in one pass."""
    users, items = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for block in records():
        keep = np.isin(block[0], group)
        users.append(np.asarray(block[0], np.int64)[keep])
        items.append(np.asarray(block[1], np.int64)[keep])
    return np.concatenate(users), np.concatenate(items)
