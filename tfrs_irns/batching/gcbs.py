"""Tail Batch Sampling (GCBS): put hard negatives into the same batch.

With in-batch negatives a user's positive is contrasted only with the other
items of its batch, and a random batch rarely holds an item the user could
confuse with the positive: most in-batch negatives are easy. Sachidananda,
Yang and Zhu ("Tail Batch Sampling", arXiv 2210.12874; ICML 2023 as "Global
Selection of Contrastive Batches via Optimization on Sample Permutations",
GCBS) show that the gap between the global contrastive loss (every other
example a negative) and the training loss (in-batch negatives only) is bounded
by a quantity that depends only on how examples are assigned to batches;
minimising it is a quadratic bottleneck assignment problem. Their cheap
approximation, implemented here (the authors publish no code; this is the
first implementation we know of, and the first for recommenders):

1. embed every training pair with the current model: ``q_i`` from the query
   tower on the user, ``c_i`` from the candidate tower on the positive item;
2. build a sparse graph that links example ``i`` to example ``j`` when ``j``'s
   item is a hard negative for ``i``'s user (a high ``<q_i, c_j>``), keeping
   only the strongest links, and symmetrise it;
3. reorder the examples with a bandwidth-minimising permutation (reverse
   Cuthill-McKee), so strongly linked examples sit next to each other;
4. cut the order into runs of ``B``: those are the batches (visited in a
   shuffled order).

Recommender structure makes step 2 cheap. A score depends only on the
(user, item) pair, and users and items repeat across examples, so we score
the *unique* users against the *unique* items block-wise (a partial sort per
block, never an N x N matrix): each user gets a pool of its ``neighbors``
hardest items. Each example then links to a few items of its user's pool
(``links_per_example``; a user's examples share out the pool, hardest items
first), and each (example, item) link is expanded to one example holding that
item: of a few holders drawn at random, the one whose user finds the source's
item hardest, so links are hard in both directions. Memory is
O(N * links_per_example + users * neighbors).

What counts as a negative follows the recommender, not the paper: a user's
own positives are never its hard negatives (they would be false negatives),
which also rules out every link between two examples of the same user or of
the same item (an accidental hit the loss would mask anyway).

``threshold="topk"`` keeps each user's ``neighbors`` strongest items;
``"quantile"`` (the paper's rule, at its ``quantile=0.999``) keeps only those
scoring above the global ``quantile`` of example-pair scores, estimated on a
sample, so examples with no strong similarity stay unlinked and fall into
random batches. An example receives about twice as many links as it sends at
most, so no hub dominates the ordering.

Options beyond the default graph:

* ``similarity="cosine"`` scores pairs by the cosine of the two embeddings,
  as the paper does (it normalises both), instead of the model's dot
  product: a popular item's long vector then no longer makes it every
  user's hard negative.
* ``graph="item_item"`` links examples whose *positive items* are close
  (``<c_i, c_j>``; symmetric by construction): batches cluster by content
  rather than by what each user confuses. The same machinery runs with the
  items in the users' place; links between two examples of one user are
  dropped (a user's other positive is a false negative).
* ``exclude_above_positive=True`` is a false-negative guard: an example
  never links to items its user scores above its own positive (those are
  more likely unobserved positives than negatives; hard-negative work in
  collaborative filtering finds them harmful). With ``user_item`` the
  example's share of the pool starts below its positive's score, so it still
  sends its links; with ``item_item`` such links are dropped.

How much harder the batches get depends on the data: a lot when users and
items form clusters, little when scores are dominated by item popularity
(then every user's hard items are the same few); ``benchmarks/gcbs.py``
measures both.

The Keras side (when to recompute, diagnostics) is
:mod:`tfrs_irns.batching.gcbs_callback`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import reverse_cuthill_mckee

from tfrs_irns.batching.gcbs_ann import PoolBuilder, ann_hard_items
from tfrs_irns.batching.params import GcbsParams
from tfrs_irns.topk import Csr, rank_top_k

# The settings (their defaults and ranges) are GcbsParams, defined once in batching/params.py.
_DEFAULTS = GcbsParams()
# Scores held at once while ranking items for a block of users.
_SCORE_BLOCK = 4_000_000
# A user x item score table up to this size is precomputed for holder choice;
# beyond it holders are scored on the fly, at most _PAIR_BUDGET pairs (more
# would cost more than the rest of the graph: then holders are just random).
_DENSE_SCORES = 1 << 25
_PAIR_BUDGET = 1 << 24
# Example pairs scored to estimate the quantile threshold.
_QUANTILE_SAMPLE = 200_000

EmbedFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class ExampleEmbeddings:
    """Embeddings of the unique users and items of ``n`` training examples.

    Example ``i`` has query vector ``user_vectors[user_row[i]]`` and candidate
    vector ``item_vectors[item_row[i]]``; ``user_ids``/``item_ids`` are the
    sorted unique indices the rows stand for.
    """

    user_ids: np.ndarray
    user_vectors: np.ndarray
    user_row: np.ndarray
    item_ids: np.ndarray
    item_vectors: np.ndarray
    item_row: np.ndarray

    def __len__(self) -> int:
        return int(self.user_row.shape[0])

    def queries(self, examples: np.ndarray) -> np.ndarray:
        return self.user_vectors[self.user_row[examples]]

    def candidates(self, examples: np.ndarray) -> np.ndarray:
        return self.item_vectors[self.item_row[examples]]

    def normalized(self) -> "ExampleEmbeddings":
        """The same examples with unit-length vectors (zero vectors stay 0):
        dot products become cosines."""
        def unit(x: np.ndarray) -> np.ndarray:
            norm = np.linalg.norm(x, axis=1, keepdims=True)
            return x / np.where(norm > 0, norm, 1).astype(x.dtype)

        return ExampleEmbeddings(
            self.user_ids, unit(self.user_vectors), self.user_row, self.item_ids, unit(self.item_vectors), self.item_row
        )

    def item_view(self) -> "ExampleEmbeddings":
        """The examples with each one's positive item in the user's place:
        scores between "users" and items are then item-item similarities."""
        return ExampleEmbeddings(
            self.item_ids, self.item_vectors, self.item_row, self.item_ids, self.item_vectors, self.item_row
        )

    def positive_scores(self) -> np.ndarray:
        """``[n]`` score of each example's user for its own positive."""
        return _pair_scores(self.user_vectors, self.user_row, self.item_vectors, self.item_row)

    def take(self, examples: np.ndarray) -> "ExampleEmbeddings":
        """The same vectors for the examples ``examples`` (in that order)."""
        return ExampleEmbeddings(
            self.user_ids, self.user_vectors, self.user_row[examples],
            self.item_ids, self.item_vectors, self.item_row[examples],
        )


def embed_examples(
    users: np.ndarray, items: np.ndarray, query_fn: EmbedFn, candidate_fn: EmbedFn, chunk_size: int = 8192
) -> ExampleEmbeddings:
    """Embed each unique user and item once (``*_fn``: int32 indices -> [n, d])."""

    def embed(fn: EmbedFn, ids: np.ndarray) -> np.ndarray:
        parts = [np.asarray(fn(ids[s : s + chunk_size]), np.float32) for s in range(0, len(ids), chunk_size)]
        return np.concatenate(parts)

    user_ids, user_row = np.unique(np.asarray(users, np.int32), return_inverse=True)
    item_ids, item_row = np.unique(np.asarray(items, np.int32), return_inverse=True)
    return ExampleEmbeddings(
        user_ids, embed(query_fn, user_ids), user_row.astype(np.int32),
        item_ids, embed(candidate_fn, item_ids), item_row.astype(np.int32),
    )


def _pair_scores(a: np.ndarray, a_row: np.ndarray, b: np.ndarray, b_row: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """``<a[a_row[t]], b[b_row[t]]>`` for every ``t``, in chunks (no ``[n, d]`` copies)."""
    return np.concatenate([
        np.einsum("nd,nd->n", a[a_row[s : s + chunk]], b[b_row[s : s + chunk]])
        for s in range(0, a_row.shape[0], chunk)
    ] or [np.zeros(0, np.float32)])


def _positive_keys(emb: ExampleEmbeddings) -> np.ndarray:
    """Sorted unique ``user_row * n_items + item_row`` of the training pairs."""
    return np.unique(emb.user_row.astype(np.int64) * len(emb.item_ids) + emb.item_row)


def _hard_items(
    emb: ExampleEmbeddings, k: int, positives: np.ndarray, builder: Optional[PoolBuilder] = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per unique user, its ``k`` best-scoring items that are not its positives.

    Returns item rows ``[U, k]`` and scores ``[U, k]`` (descending, ties to the
    lower item row; ``-inf`` and row -1 where a user has fewer than ``k``
    non-positive items). The package's ranking primitive
    (:func:`tfrs_irns.topk.rank_top_k`) does the work, positives excluded where
    the scores are; or, when ``builder`` picks it, the approximate IVF search
    of :mod:`tfrs_irns.batching.gcbs_ann` (seeded by ``seed``).
    """
    n_users, n_items = len(emb.user_ids), len(emb.item_ids)
    if builder is not None and builder.uses_ann(n_users, n_items):
        return ann_hard_items(emb.user_vectors, emb.item_vectors, k, positives, seed, builder.nlist, builder.nprobe,
                              builder.max_scored_pairs)[:2]
    # positives are sorted user_row * n_items + item_row keys: one CSR row per user.
    ptr = np.searchsorted(positives, np.arange(n_users + 1, dtype=np.int64) * n_items)
    exclude = Csr(ptr.astype(np.int64), (positives % n_items).astype(np.int64))
    _, cols, scores = rank_top_k(
        emb.user_vectors, emb.item_vectors, k, exclude=exclude, chunk_size=max(1, _SCORE_BLOCK // n_items)
    )
    top_rows = np.full((n_users, k), -1, np.int32)
    top_scores = np.full((n_users, k), -np.inf, np.float32)
    top_rows[:, : cols.shape[1]] = cols
    top_scores[:, : cols.shape[1]] = scores
    return top_rows, top_scores


def estimate_quantile(
    emb: ExampleEmbeddings, q: float, rng: np.random.Generator, size: int = _QUANTILE_SAMPLE
) -> float:
    """The ``q``-quantile of ``<q_i, c_j>`` over random example pairs with
    different users and items (the pairs the graph may link)."""
    n = len(emb)
    i, j = rng.integers(0, n, size), rng.integers(0, n, size)
    ok = (emb.user_row[i] != emb.user_row[j]) & (emb.item_row[i] != emb.item_row[j])
    if not ok.any():
        return float("inf")
    scores = np.einsum("nd,nd->n", emb.queries(i[ok]), emb.candidates(j[ok]))
    return float(np.quantile(scores, q))


@dataclass
class GraphInfo:
    """What :func:`hard_negative_graph` kept (for logs and tests)."""

    links_per_example: int
    num_links: int
    threshold: float
    # Directed links i -> j ("j's item is hard for i's user"), sorted by i.
    src: np.ndarray = field(repr=False)
    dst: np.ndarray = field(repr=False)


def hard_negative_graph(
    emb: ExampleEmbeddings, rng: np.random.Generator, params: GcbsParams = _DEFAULTS
) -> tuple[sp.csr_matrix, GraphInfo]:
    """The symmetric example graph whose bandwidth GCBS minimises.

    Each user's pool of hard items is its ``params.neighbors`` best-scoring items
    that are not its positives (with ``threshold="quantile"``: only those
    scoring above the quantile). The ``r``-th example of a user links to
    ``k = min(links_per_example, neighbors)`` items of that pool, starting at
    item ``r * k`` (cyclically), so a user's examples cover the hardest items
    first and together as much of the pool as they can; each link goes to one
    example holding the item (:func:`_pick_holders`). Incoming links beyond
    ``2k`` are thinned at random. Returns the structure as a CSR matrix
    (entries 1; a pair linked both ways appears twice, which reordering
    ignores) and a :class:`GraphInfo`.

    ``graph="item_item"`` runs the same construction on
    :meth:`ExampleEmbeddings.item_view` (an example's "user" is its positive
    item); ``exclude_above_positive`` is the false-negative guard (see the
    module docstring). ``graph_builder`` and its bounds pick how the pools
    are found and cap the links (:class:`~tfrs_irns.batching.gcbs_ann.PoolBuilder`).
    """
    threshold, quantile, graph = params.threshold, params.quantile, params.graph
    exclude_above_positive = params.exclude_above_positive
    builder = PoolBuilder.of(params)
    view = emb if graph == "user_item" else emb.item_view()
    n, n_items = len(emb), len(emb.item_ids)
    pool = int(min(params.neighbors, n_items))
    k = int(min(pool, builder.links_per_example(params.links_per_example, n)))
    positives = _positive_keys(view)
    ann = builder.uses_ann(len(view.user_ids), n_items)
    if ann and not exclude_above_positive:
        # The r-th example of a user reads pool slots r*k .. r*k+k-1: beyond
        # k x (most examples of one user) the pool is never read.
        pool = int(min(pool, k * np.bincount(view.user_row).max(initial=1)))
    rows, scores = _hard_items(view, pool, positives, builder, int(rng.integers(1 << 30)) if ann else 0)
    cut = estimate_quantile(view, quantile, rng) if threshold == "quantile" else -np.inf
    # Rows are sorted by score, so each user's pool is a prefix of its row.
    pool_size = (scores > cut).sum(axis=1)
    by_user = np.argsort(view.user_row, kind="stable")
    user_count = np.bincount(view.user_row)
    rank = np.empty(n, np.int64)
    rank[by_user] = np.arange(n) - np.repeat(np.cumsum(user_count) - user_count, user_count)
    size = pool_size[view.user_row]
    start = np.zeros(n, np.int64)
    if exclude_above_positive and graph == "user_item":
        # The example's share of the pool starts below its own positive.
        start = _count_above(scores, view.user_row, emb.positive_scores(), size)
        size = size - start
    out = np.minimum(size, k)
    src = np.repeat(np.arange(n, dtype=np.int32), out)
    step = np.arange(src.shape[0]) - np.repeat(np.cumsum(out) - out, out)
    hard = rows[view.user_row[src], start[src] + (rank[src] * k + step) % size[src]]
    dst, ok = _pick_holders(view, src, hard, rng, params.holder_tries, positives)
    if graph == "item_item":
        # Never two examples of one user (a false negative in the batch),
        # nor, with the guard, an item the source's user prefers to its own.
        ok &= emb.user_row[src] != emb.user_row[dst]
        if exclude_above_positive:
            above = _pair_scores(emb.user_vectors, emb.user_row[src], emb.item_vectors, emb.item_row[dst])
            ok &= above <= emb.positive_scores()[src]
    src, dst = src[ok], dst[ok]
    # Thin the links into crowded examples to about 2k: a hub would make every
    # BFS level of the reordering huge. (k as asked for: when max_links cut the
    # links sent, a cap of twice that few would unlink most examples.)
    most = 2 * int(min(pool, params.links_per_example))
    indeg = np.bincount(dst, minlength=n)
    if indeg.max(initial=0) > most:
        keep = rng.random(dst.shape[0], dtype=np.float32) * indeg[dst] < most
        src, dst = src[keep], dst[keep]
    forward = sp.csr_matrix(
        (np.ones(src.shape[0], np.int8), dst, np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))])),
        shape=(n, n),
    )
    # Rows of forward and its transpose side by side, then fold the columns:
    # a linear-time symmetrisation (A + A.T would sort and sum duplicates).
    both = sp.hstack([forward, forward.T.tocsr()], format="csr")
    graph = sp.csr_matrix((both.data, both.indices % n, both.indptr), shape=(n, n))
    return graph, GraphInfo(k, int(src.shape[0]), float(cut), src, dst)


def _count_above(scores: np.ndarray, user_row: np.ndarray, own: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Per example, how many of the first ``size`` items of its user's row of
    ``scores`` (descending) score above ``own``: a binary search for all
    examples at once (``log2(pool)`` vectorised steps, no ``[n, pool]`` array)."""
    lo, hi = np.zeros(own.shape[0], np.int64), size.astype(np.int64)
    while True:
        active = lo < hi
        if not active.any():
            return lo
        mid = (lo + hi) // 2
        # Inactive examples may have mid == pool: read a valid slot, ignore it.
        above = scores[user_row, np.minimum(mid, scores.shape[1] - 1)] > own
        lo = np.where(active & above, mid + 1, lo)
        hi = np.where(active & ~above, mid, hi)


def _pick_holders(
    emb: ExampleEmbeddings,
    src: np.ndarray,
    hard: np.ndarray,
    rng: np.random.Generator,
    tries: int,
    positives: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For each link ``src -> hard item``, one example holding the item.

    Holders are drawn at random, so links spread over all of an item's
    holders. Of ``tries`` draws we keep the holder whose user scores the
    source's item highest: the link is then hard both ways and the graph more
    transitive (two hard neighbours of an example tend to be hard for each
    other), which is what lets a bandwidth ordering pack them into one batch.
    A holder whose user has the source's item among its positives would be a
    false negative in the source's batch and is never kept. Scoring costs a
    table lookup per try when the user x item table is small, else a dot
    product; beyond ``_PAIR_BUDGET`` scored pairs holders are simply random
    (and unchecked, like random batches). Returns the holders and a mask of
    the links that found one.
    """
    n_items = len(emb.item_ids)
    holders = np.argsort(emb.item_row, kind="stable").astype(np.int32)
    count = np.bincount(emb.item_row, minlength=n_items)
    first = (np.cumsum(count) - count)[hard].astype(np.int64)
    count = count[hard].astype(np.int32)

    def draw() -> np.ndarray:
        # Modulo bias is negligible: counts are far below 2**30.
        return first + rng.integers(0, 1 << 30, hard.shape[0], dtype=np.int32) % count

    best = draw()
    dense = len(emb.user_ids) * n_items <= _DENSE_SCORES
    if not dense:
        tries = min(tries, _PAIR_BUDGET // max(1, best.shape[0]))
    if tries <= 1 or best.shape[0] == 0:
        return holders[best], np.ones(best.shape[0], bool)
    wanted = emb.item_row[src]
    if dense:
        table = (emb.user_vectors @ emb.item_vectors.T).ravel()
        table[positives] = -np.inf
        holder_key = emb.user_row[holders] * np.int32(n_items)  # fits: U * I <= _DENSE_SCORES

        def score(slot: np.ndarray) -> np.ndarray:
            return table[holder_key[slot] + wanted]

    else:

        holder_user = emb.user_row[holders].astype(np.int64)

        def score(slot: np.ndarray) -> np.ndarray:
            users = holder_user[slot]
            value = _pair_scores(emb.user_vectors, users, emb.item_vectors, wanted)
            key = users * n_items + wanted
            at = np.minimum(np.searchsorted(positives, key), positives.shape[0] - 1)
            value[positives[at] == key] = -np.inf
            return value

    best_score = score(best)
    for _ in range(tries - 1):
        slot = draw()
        value = score(slot)
        better = value > best_score
        best[better], best_score[better] = slot[better], value[better]
    return holders[best], best_score > -np.inf


def cut_into_batches(order: np.ndarray, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """Cut ``order`` into runs of ``batch_size`` and shuffle the runs.

    The short run (``n mod B`` examples) is taken from a random place in the
    order and put last, where the pipeline expects it (and drops it with
    ``drop_remainder``), so no example is always the one left out.
    """
    n = order.shape[0]
    full, rest = divmod(n, batch_size)
    at = int(rng.integers(0, full + 1)) * batch_size if rest else n
    short = order[at : at + rest]
    runs = np.concatenate([order[:at], order[at + rest :]]).reshape(full, batch_size)
    return np.concatenate([runs[rng.permutation(full)].reshape(-1), short])


@dataclass
class GcbsOrder:
    """The permutation for one epoch and how it was made."""

    order: np.ndarray
    # Largest distance, in the bandwidth-minimising order, between two linked
    # examples (before the runs of B are shuffled).
    bandwidth: int
    links_per_example: int
    num_links: int
    threshold: float
    isolated: int
    seconds: dict[str, float]
    # Directed links (example indices), for diagnostics.
    src: np.ndarray = field(repr=False)
    dst: np.ndarray = field(repr=False)


def gcbs_order(
    emb: ExampleEmbeddings, batch_size: int, params: GcbsParams = _DEFAULTS, epoch: int = 0
) -> GcbsOrder:
    """A permutation of ``range(len(emb))`` whose runs of ``batch_size`` are
    GCBS batches, reproducible from ``(params.seed, epoch)``. ``params``'s
    ``similarity``, ``graph`` and ``exclude_above_positive``: see the module
    docstring."""
    if params.similarity == "cosine":
        emb = emb.normalized()
    rng = np.random.default_rng([params.seed, epoch])
    n = len(emb)
    clock = time.perf_counter()
    # Relabel the examples at random first: ties and isolated examples then
    # land in random order, not in the data's (often user-sorted) order.
    relabel = rng.permutation(n).astype(np.int32)
    if n <= batch_size:  # one batch whatever the order
        empty = np.zeros(0, np.int32)
        return GcbsOrder(relabel, 0, 0, 0, -np.inf, n, {"graph": 0.0, "reorder": 0.0}, empty, empty)
    graph_matrix, info = hard_negative_graph(emb.take(relabel), rng, params)
    graph_seconds = time.perf_counter() - clock
    clock = time.perf_counter()
    rcm = reverse_cuthill_mckee(graph_matrix, symmetric_mode=True)
    position = np.empty(n, np.int64)
    position[rcm] = np.arange(n)
    bandwidth = int(np.abs(position[info.src] - position[info.dst]).max(initial=0))
    isolated = int(np.count_nonzero(np.diff(graph_matrix.indptr) == 0))
    order = relabel[cut_into_batches(rcm.astype(np.int32), batch_size, rng)]
    seconds = {"graph": graph_seconds, "reorder": time.perf_counter() - clock}
    return GcbsOrder(
        order, bandwidth, info.links_per_example, info.num_links, info.threshold, isolated, seconds,
        relabel[info.src], relabel[info.dst],
    )
