"""Approximate hard-item pools for GCBS: an IVF index instead of scoring every item.

GCBS needs, for every user of the training data, a pool of the items that
user scores highest among those it has not interacted with: its hard
negatives. The exact pool scores every user against every item, which costs
``users x items x d`` multiply-adds per recompute (~72 ns per user x item on
the 2-core CPU here): seconds for MovieLens, days for 10M users x 1M items.
But a user's hardest items are, by definition, the items closest to its query
vector, which is what an approximate nearest-neighbour index finds without
looking at the whole catalogue.

This module builds a FAISS IVF-flat inner-product index over the item
embeddings of the current model (k-means cells, ``nlist`` of them) and asks it
for each user's pool by scanning only the ``nprobe`` cells whose centroids
score highest for the user. Its cost per recompute is bounded before any work
starts (:func:`plan_search`)::

    scored pairs = users_searched x (nlist + nprobe x ceil(items / nlist))

If that exceeds ``max_scored_pairs``, ``nprobe`` is lowered (not below 1) and,
if it still does not fit, only a seeded sample of users is searched: the other
users get an empty pool, so their examples send no links and fall into random
batches, as if they were isolated. The k-means step adds
``10 x nlist x min(items, 64 x nlist)`` pairs, but those are a BLAS matrix
product, ~50x cheaper per pair than the scan. Memory is the index (a copy of
the item vectors plus an int64 id per item), the ``[users, k]`` pool and one
block of search results (:data:`BLOCK_BYTES`).

What :class:`PoolBuilder` adds on top is the choice between this and the exact
pool (``kind="auto"``: exact while ``users x items`` fits
:data:`EXACT_MAX_PAIRS`, so small data keeps exactly today's GCBS order) and a
cap on the graph's links (``max_links``), which bounds the memory of the rest
of the recompute.

FAISS (``faiss-cpu``, the ``[ann]`` extra) is imported only when an index is
built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from tfrs_irns import _faiss
from tfrs_irns.batching.params import GcbsParams

KINDS = ("auto", "exact", "ann")
# The builder's defaults are GcbsParams' (each written once, there, with why).
_DEFAULTS = GcbsParams()
# kind "auto" scores exactly up to this many user x item pairs (~20 s at the
# measured ~72 ns per pair); above it the IVF index takes over. ml-latest-small
# (610 x 9.7k) and ML-1M (6k x 3.7k) stay exact by a wide margin.
EXACT_MAX_PAIRS = 1 << 28
# Search results (int64 label + float32 score per slot) held at once.
BLOCK_BYTES = 1 << 26
# k-means settings: few iterations and a subsample suffice for cells (the scan
# within a cell is exact).
_KMEANS_ITERATIONS = 10
_POINTS_PER_CELL = 64


def import_faiss() -> Any:
    """The ``faiss`` module, or a one-line :class:`UserError` saying how to install it."""
    return _faiss.import_faiss("graph_builder='ann'", "use graph_builder='exact'")


class SearchPlan(NamedTuple):
    """How one recompute searches: the cells, the cells probed, the users searched."""

    nlist: int
    nprobe: int
    users: int
    scored_pairs: int


def default_nlist(num_items: int) -> int:
    return int(max(1, min(round(4 * math.sqrt(num_items)), num_items // 39)))


def plan_search(
    num_users: int, num_items: int, nlist: int = _DEFAULTS.ann_nlist, nprobe: int = _DEFAULTS.ann_nprobe,
    max_scored_pairs: int = _DEFAULTS.max_scored_pairs,
) -> SearchPlan:
    """The search that fits ``max_scored_pairs`` (see the module docstring's formula)."""
    cells = min(nlist or default_nlist(num_items), max(1, num_items))
    list_size = -(-num_items // cells)
    probe = min(nprobe, cells)
    per_user = lambda p: cells + p * list_size  # noqa: E731
    if num_users * per_user(probe) > max_scored_pairs:
        probe = int(max(1, min(probe, (max_scored_pairs // max(1, num_users) - cells) // list_size)))
    users = int(min(num_users, max_scored_pairs // per_user(probe)))
    return SearchPlan(cells, probe, users, users * per_user(probe))


@dataclass(frozen=True)
class PoolBuilder:
    """How GCBS finds each user's hard items, and the bounds of one recompute.

    A user's hard negatives are the unseen items its query vector scores
    highest: a nearest-neighbour question. Scoring every item answers it
    exactly and is affordable for a catalogue of thousands; an IVF index
    answers it approximately, within a stated budget, for millions.

    ``kind``: ``"exact"`` scores every user x item pair; ``"ann"`` uses the
    IVF index (:func:`ann_hard_items`); ``"auto"`` is exact while
    ``users x items <= EXACT_MAX_PAIRS``. ``nlist``, ``nprobe`` and
    ``max_scored_pairs`` bound the ANN search (:func:`plan_search`);
    ``max_links`` caps the links of the graph whatever the kind (the links
    per example drop to ``max_links // examples``, at least 1).

    Built from :class:`~tfrs_irns.batching.params.GcbsParams` (:meth:`of`),
    which holds the settings, their defaults and ranges.
    """

    kind: str = _DEFAULTS.graph_builder
    nlist: int = _DEFAULTS.ann_nlist
    nprobe: int = _DEFAULTS.ann_nprobe
    max_scored_pairs: int = _DEFAULTS.max_scored_pairs
    max_links: int = _DEFAULTS.max_links

    @classmethod
    def of(cls, params: GcbsParams) -> "PoolBuilder":
        """The builder ``params`` describes (its ranges checked there, once)."""
        return cls(params.graph_builder, params.ann_nlist, params.ann_nprobe, params.max_scored_pairs, params.max_links)

    def uses_ann(self, num_users: int, num_items: int) -> bool:
        return self.kind == "ann" or (self.kind == "auto" and num_users * num_items > EXACT_MAX_PAIRS)

    def links_per_example(self, wanted: int, num_examples: int) -> int:
        return int(min(wanted, max(1, self.max_links // max(1, num_examples))))


def build_index(item_vectors: np.ndarray, nlist: int, seed: int) -> Any:
    """A trained and filled IVF-flat inner-product index over ``item_vectors``."""
    faiss = import_faiss()
    items = np.ascontiguousarray(item_vectors, np.float32)
    dim = items.shape[1]
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = _KMEANS_ITERATIONS
    index.cp.max_points_per_centroid = _POINTS_PER_CELL
    index.cp.seed = seed
    index.cp.verbose = False
    index.train(items)
    index.add(items)
    return index


def ann_hard_items(
    user_vectors: np.ndarray,
    item_vectors: np.ndarray,
    k: int,
    positives: np.ndarray,
    seed: int,
    nlist: int = _DEFAULTS.ann_nlist,
    nprobe: int = _DEFAULTS.ann_nprobe,
    max_scored_pairs: int = _DEFAULTS.max_scored_pairs,
) -> tuple[np.ndarray, np.ndarray, SearchPlan]:
    """Each user's ``k`` best-scoring items that are not its positives, approximately.

    Args:
      user_vectors, item_vectors: ``[U, d]`` and ``[I, d]`` float32.
      k: pool size.
      positives: sorted unique ``user_row * I + item_row`` keys of the
        training pairs (never in a user's pool).
      seed: k-means initialisation and the user sample (deterministic).
      nlist, nprobe, max_scored_pairs: see :func:`plan_search`.

    Returns:
      ``(rows int32 [U, k], scores float32 [U, k], plan)`` in the exact
      pool's layout: descending, row -1 and ``-inf`` where a user got fewer
      than ``k`` items (the probed cells held fewer, up to ``k`` of its
      positives ranked among them, or it was not sampled).
    """
    num_users, num_items = len(user_vectors), len(item_vectors)
    plan = plan_search(num_users, num_items, nlist, nprobe, max_scored_pairs)
    rows = np.full((num_users, k), -1, np.int32)
    scores = np.full((num_users, k), -np.inf, np.float32)
    if num_users == 0 or num_items == 0 or k == 0:
        return rows, scores, plan
    rng = np.random.default_rng(seed)
    index = build_index(item_vectors, plan.nlist, int(rng.integers(1 << 30)))
    index.nprobe = plan.nprobe
    users = np.arange(num_users) if plan.users >= num_users else np.sort(rng.permutation(num_users)[: plan.users])
    # Ask for k more items than the pool, so a user's positives among its
    # best-scoring items (removed below) rarely shorten it.
    ptr = np.searchsorted(positives, np.arange(num_users + 1, dtype=np.int64) * num_items)
    extra = int(min(k, np.diff(ptr).max(initial=0)))
    width = int(min(num_items, k + extra))
    block = max(1, BLOCK_BYTES // (12 * width))
    queries = np.ascontiguousarray(user_vectors, np.float32)
    for start in range(0, users.shape[0], block):
        who = users[start : start + block]
        found, labels = index.search(queries[who], width)
        key = who[:, None].astype(np.int64) * num_items + labels
        at = np.minimum(np.searchsorted(positives, key), max(0, positives.shape[0] - 1))
        bad = (labels < 0) | (positives[at] == key if positives.shape[0] else False)
        # Keep the first k good slots of each row, still best first.
        keep = np.argsort(bad, axis=1, kind="stable")[:, :k]
        good = ~np.take_along_axis(bad, keep, axis=1)
        taken = keep.shape[1]
        rows[who, :taken] = np.where(good, np.take_along_axis(labels, keep, axis=1), -1)
        scores[who, :taken] = np.where(good, np.take_along_axis(found, keep, axis=1), -np.inf)
    return rows, scores, plan
