"""Each worker ranks its share of the evaluated users; the workers' sums make the metrics.

Full-corpus evaluation costs one ``[users, items]`` score matrix, and under
multi-worker training every worker holds the same weights: ranking every
user on every worker repeats the same work N times. Users are independent
of each other in the ranking, so the work splits cleanly by user: worker
``i`` of ``N`` ranks the sorted evaluated users ``i, i + N, i + 2N, ...``
(strided, so a popular prefix of indices does not land on one worker), and
every metric is rebuilt from sums the workers add up:

* ``hit_rate@K``: hits and interactions (integers, so exactly the one-process value);
* ``recall@K``, ``ndcg@K``, ``mrr``: per-user values summed, and the users
  counted (equal to the one-process mean up to float round-off, ~1e-16);
* ``coverage@K``: which items appear in some top-K list (a union, exact);
* the same for the head and tail bands, and the users each worker ranked.

The sum across workers is a parameter (:attr:`WorkerShare.combine`): a TF
collective under ``MultiWorkerMirroredStrategy`` (:func:`worker_share`), or
any function adding the workers' vectors (a test simulates workers with one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfrs_irns.batching.shards import cluster_position, collective_sum

#: The keys of one metric block that are per-user means (summed as mean × users).
PER_USER = ("recall", "ndcg")


def _alone(vector: np.ndarray) -> np.ndarray:
    return vector


@dataclass(frozen=True)
class WorkerShare:
    """Which of the evaluated users this worker ranks, and how workers add up their sums.

    Args:
      num_workers: workers evaluating together.
      index: this worker (``0..num_workers - 1``).
      combine: sums a float64 vector over the workers (every worker calls it
        with a vector of the same length, in the same order); the identity
        for one worker.
    """

    num_workers: int = 1
    index: int = 0
    combine: Callable[[np.ndarray], np.ndarray] = field(default=_alone, compare=False)

    def __post_init__(self) -> None:
        if self.num_workers < 1 or not 0 <= self.index < self.num_workers:
            raise ValueError(f"worker index {self.index} of {self.num_workers} workers is out of range")

    def users(self, queries: np.ndarray) -> np.ndarray:
        """This worker's users among the sorted distinct ``queries`` (strided)."""
        return np.asarray(queries)[self.index :: self.num_workers]


def combine_blocks(
    blocks: dict[str, dict[str, Any]],
    top: np.ndarray,
    ks: Sequence[int],
    num_items: int,
    bands: dict[str, Optional[np.ndarray]],
    share: WorkerShare,
) -> tuple[dict[str, dict[str, Any]], list[int]]:
    """This worker's metric ``blocks`` (``{"all": ..., "head": ..., "tail": ...}``,
    each from :func:`~tfrs_irns.evaluation.evaluate._metric_block` over its
    users) combined with the other workers' into the blocks of all users,
    and the users each worker ranked.

    ``top``: this worker's top lists ``[Q_worker, >= max(ks)]``; ``bands``:
    each block's item mask (None = the whole catalogue).
    """
    vector = share_sums(blocks, top, ks, num_items, share.index, share.num_workers)
    total = np.asarray(share.combine(vector), np.float64)
    if total.shape != vector.shape:
        raise ValueError(f"combine returned shape {total.shape}, expected {vector.shape}")
    return blocks_from_sums(total, list(blocks), ks, num_items, bands, share.num_workers)


def share_sums(
    blocks: dict[str, dict[str, Any]], top: np.ndarray, ks: Sequence[int], num_items: int, slot: int, num_slots: int
) -> np.ndarray:
    """One share's metric ``blocks`` and top lists as a float64 vector that adds up
    across shares: each block's sums, the items in some top-K list, and the share's
    users in position ``slot`` of ``num_slots``."""
    shown = np.zeros((len(ks), num_items + 1))
    for j, k in enumerate(ks):
        shown[j, np.asarray(top)[:, :k].reshape(-1)] = 1.0
    ranked = np.zeros(num_slots)
    ranked[slot] = blocks["all"]["num_test_users"]
    return np.concatenate([*(_block_sums(blocks[name], ks) for name in blocks), shown.reshape(-1), ranked])


def blocks_from_sums(
    total: np.ndarray,
    names: Sequence[str],
    ks: Sequence[int],
    num_items: int,
    bands: dict[str, Optional[np.ndarray]],
    num_slots: int,
) -> tuple[dict[str, dict[str, Any]], list[int]]:
    """The metric blocks of the shares whose :func:`share_sums` add up to ``total``,
    and the users of each slot."""
    width = 3 * len(ks) + 3
    shown_total = total[len(names) * width : -num_slots].reshape(len(ks), num_items + 1) > 0
    shown_total[:, 0] = False
    combined = {
        name: _block_means(total[i * width : (i + 1) * width], ks, shown_total, bands[name])
        for i, name in enumerate(names)
    }
    return combined, [int(round(n)) for n in total[-num_slots:]]


def _block_sums(block: dict[str, Any], ks: Sequence[int]) -> np.ndarray:
    """``[hits, recall sum, ndcg sum] per K, mrr sum, interactions, users``."""
    n, users = block["num_test_interactions"], block["num_test_users"]
    values: list[float] = []
    for k in ks:
        values.append(round(_times(block[f"hit_rate@{k}"], n)))  # a count: exact
        values += [_times(block[f"{name}@{k}"], users) for name in PER_USER]
    return np.asarray([*values, _times(block["mrr"], users), n, users], np.float64)


def _block_means(
    sums: np.ndarray, ks: Sequence[int], shown: np.ndarray, band: Optional[np.ndarray]
) -> dict[str, Any]:
    n, users = int(round(sums[-2])), int(round(sums[-1]))
    pool = np.ones(shown.shape[1], bool) if band is None else np.asarray(band, bool).copy()
    pool[0] = False
    out: dict[str, Any] = {}
    for j, k in enumerate(ks):
        out[f"hit_rate@{k}"] = _mean(sums[3 * j], n)
        out[f"recall@{k}"] = _mean(sums[3 * j + 1], users)
        out[f"ndcg@{k}"] = _mean(sums[3 * j + 2], users)
    for j, k in enumerate(ks):
        out[f"coverage@{k}"] = float(np.count_nonzero(shown[j] & pool) / pool.sum()) if pool.any() else None
    out["mrr"] = _mean(sums[3 * len(ks)], users)
    # The one-process block's key order: hit rate, recall, ndcg, coverage per K, then mrr and the counts.
    ordered = {key: out[key] for key in _block_keys(ks)}
    ordered["num_test_interactions"] = n
    ordered["num_test_users"] = users
    return ordered


def _block_keys(ks: Sequence[int]) -> list[str]:
    return [f"{name}@{k}" for name in ("hit_rate", "recall", "ndcg", "coverage") for k in ks] + ["mrr"]


def _times(mean: Optional[float], count: int) -> float:
    return 0.0 if mean is None or count == 0 else float(mean) * count


def _mean(total: float, count: int) -> Optional[float]:
    value = total / count if count else math.nan
    return None if math.isnan(value) else float(value)


def worker_share(strategy: Optional[tf.distribute.Strategy]) -> Optional[WorkerShare]:
    """This process's share under ``strategy``: None with one worker or no strategy
    (it ranks every user), else its index among the cluster's workers (chief first)
    and a combine that all-reduces over them."""
    position = cluster_position(strategy)
    if position is None:
        return None
    return WorkerShare(position[0], position[1], collective_sum(strategy))
