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
the *unique* users against the *unique* items block-wise (``tf.math.top_k``
per block, never an N x N matrix), then expand each (user, hard item) hit to
one example holding that item, picked at random so that links spread over all
the item's holders. Memory is O(N * neighbors). A user's own positives are
never its hard negatives (they would be false negatives), which also rules out
every link between two examples of the same user or of the same item.

``threshold="topk"`` keeps the ``neighbors`` strongest links per example;
``"quantile"`` (the paper's rule) keeps links scoring above the global
``quantile`` of example-pair scores, estimated on a sample, still at most
``neighbors`` per example. Either way at most ``max_links`` links are built in
total (the per-example count shrinks on big data: a graph of a few links per
example already orders the examples well, see ``benchmarks/gcbs.py``), and an
example receives at most as many links as it sends, so no hub dominates the
ordering.

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

import tfrs_irns  # noqa: F401  (Keras 2 policy before tensorflow)
import tensorflow as tf

from tfrs_irns.errors import ConfigError

# Default cap on links in the graph: ~1 s of graph work per 10M links here.
DEFAULT_MAX_LINKS = 16_000_000
_IN_CAP = 2
# Scores held at once while ranking items for a block of users.
_SCORE_BLOCK = 8_000_000
# Example pairs scored to estimate the quantile threshold.
_QUANTILE_SAMPLE = 200_000

EmbedFn = Callable[[np.ndarray], np.ndarray]


def is_due(epoch: int, start_epoch: int, every: int) -> bool:
    """Whether GCBS orders 1-based ``epoch`` (as Keras prints it)."""
    return epoch >= start_epoch and (epoch - start_epoch) % every == 0


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


def _hard_items(emb: ExampleEmbeddings, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per unique user, its ``k`` best-scoring items that are not its positives.

    Returns item rows ``[U, k]`` and scores ``[U, k]`` (descending; ``-inf``
    where a user has fewer than ``k`` non-positive items).
    """
    n_users, n_items = len(emb.user_ids), len(emb.item_ids)
    # Each user's positives, sorted by user: masked to -inf before top_k.
    pairs = np.unique(emb.user_row.astype(np.int64) * n_items + emb.item_row)
    items_t = tf.constant(emb.item_vectors)
    block = max(1, _SCORE_BLOCK // n_items)
    top_rows, top_scores = [], []
    for start in range(0, n_users, block):
        stop = min(start + block, n_users)
        scores = tf.matmul(tf.constant(emb.user_vectors[start:stop]), items_t, transpose_b=True)
        lo, hi = np.searchsorted(pairs, [start * n_items, stop * n_items])
        hit = np.stack([pairs[lo:hi] // n_items - start, pairs[lo:hi] % n_items], axis=1)
        scores = tf.tensor_scatter_nd_update(scores, hit, tf.fill([hi - lo], -np.inf))
        values, rows = tf.math.top_k(scores, k=k)
        top_rows.append(rows.numpy())
        top_scores.append(values.numpy())
    return np.concatenate(top_rows), np.concatenate(top_scores)


def estimate_quantile(emb: ExampleEmbeddings, q: float, rng: np.random.Generator, size: int = _QUANTILE_SAMPLE) -> float:
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
    emb: ExampleEmbeddings,
    neighbors: int,
    rng: np.random.Generator,
    threshold: str = "topk",
    quantile: float = 0.99,
    max_links: int = DEFAULT_MAX_LINKS,
) -> tuple[sp.csr_matrix, GraphInfo]:
    """The symmetric example graph whose bandwidth GCBS minimises.

    Example ``i`` sends links to up to ``k = min(neighbors, max_links // n)``
    examples, one holder of each of its user's ``k`` hardest non-positive
    items; an example's incoming links are thinned at random to at most ``k``.
    Returns the structure as a CSR matrix (entries 1; a pair linked both ways
    appears twice, which reordering ignores) and a :class:`GraphInfo`.
    """
    if threshold not in ("topk", "quantile"):
        raise ConfigError(f"batching.gcbs.threshold: expected 'topk' or 'quantile', got {threshold!r}")
    n, n_items = len(emb), len(emb.item_ids)
    pool = int(min(neighbors, n_items))
    k = int(min(pool, max(1, max_links // n)))
    rows, scores = _hard_items(emb, pool)
    cut = estimate_quantile(emb, quantile, rng) if threshold == "quantile" else -np.inf
    # top_k sorts descending, so each user's pool is a prefix of its row.
    pool_size = (scores > cut).sum(axis=1)
    # The r-th example of a user takes pool items r*k, r*k+1, ... (cyclically):
    # together a user's examples cover its hardest items first.
    by_user = np.argsort(emb.user_row, kind="stable")
    user_count = np.bincount(emb.user_row)
    rank = np.empty(n, np.int64)
    rank[by_user] = np.arange(n) - np.repeat(np.cumsum(user_count) - user_count, user_count)
    size = pool_size[emb.user_row]
    out = np.minimum(size, k)
    src = np.repeat(np.arange(n, dtype=np.int32), out)
    step = np.arange(src.shape[0]) - np.repeat(np.cumsum(out) - out, out)
    user = emb.user_row[src]
    hard = rows[user, (rank[src] * k + step) % size[src]]
    # One holder per hard item, drawn at random so links spread over all holders.
    dst = _pick_holders(emb, src, hard, rng, HOLDER_TRIES)
    # Cap incoming links: a hub would make every BFS level huge.
    indeg = np.bincount(dst, minlength=n)
    cap = _IN_CAP * k
    if indeg.max(initial=0) > cap:
        kept = rng.random(dst.shape[0], dtype=np.float32) * indeg[dst] < cap
        src, dst = src[kept], dst[kept]
    forward = sp.csr_matrix(
        (np.ones(src.shape[0], np.int8), dst, np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n))])),
        shape=(n, n),
    )
    # Rows of forward and its transpose side by side, then fold the columns:
    # a linear-time symmetrisation (A + A.T would sort and sum duplicates).
    both = sp.hstack([forward, forward.T.tocsr()], format="csr")
    graph = sp.csr_matrix((both.data, both.indices % n, both.indptr), shape=(n, n))
    return graph, GraphInfo(k, int(src.shape[0]), float(cut), src, dst)


def _pick_holders(
    emb: ExampleEmbeddings, src: np.ndarray, hard: np.ndarray, rng: np.random.Generator, tries: int
) -> np.ndarray:
    """For each link ``src -> hard item``, one example holding the item.

    Of ``tries`` holders drawn at random keep the one whose user scores the
    source's item highest: the link is then hard both ways, and the graph
    more transitive (two hard neighbours of an example tend to be hard for
    each other), which is what lets a bandwidth ordering pack them together.
    """
    n_items = len(emb.item_ids)
    holders = np.argsort(emb.item_row, kind="stable").astype(np.int32)
    count = np.bincount(emb.item_row, minlength=n_items)
    first = (np.cumsum(count) - count)[hard]
    count = count[hard]

    def draw() -> np.ndarray:
        return first + np.minimum((rng.random(hard.shape[0], dtype=np.float32) * count).astype(np.int64), count - 1)

    best = draw()
    if tries > 1:
        holder_user = emb.user_row[holders]
        wanted = emb.item_row[src]
        dense = len(emb.user_ids) * n_items <= _DENSE_SCORES
        table = (emb.user_vectors @ emb.item_vectors.T).ravel() if dense else None

        def score(slot: np.ndarray) -> np.ndarray:
            users = holder_user[slot]
            if table is not None:
                return table[users.astype(np.int64) * n_items + wanted]
            return np.concatenate([
                np.einsum("nd,nd->n", emb.user_vectors[users[s : s + 65536]], emb.item_vectors[wanted[s : s + 65536]])
                for s in range(0, slot.shape[0], 65536)
            ])

        best_score = score(best)
        for _ in range(tries - 1):
            slot = draw()
            value = score(slot)
            better = value > best_score
            best[better], best_score[better] = slot[better], value[better]
    return holders[best]


_DENSE_SCORES = 1 << 25
HOLDER_TRIES = 1


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
    # Position of each example in the bandwidth-minimising order; graph edges
    # join examples whose positions differ by at most ``bandwidth``.
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
    emb: ExampleEmbeddings,
    batch_size: int,
    neighbors: int = 600,
    threshold: str = "topk",
    quantile: float = 0.99,
    seed: int = 0,
    epoch: int = 0,
    max_links: int = DEFAULT_MAX_LINKS,
) -> GcbsOrder:
    """A permutation of ``range(len(emb))`` whose runs of ``batch_size`` are
    GCBS batches, reproducible from ``(seed, epoch)``."""
    rng = np.random.default_rng([seed, epoch])
    n = len(emb)
    clock = time.perf_counter()
    # Relabel the examples at random first: ties and isolated examples then
    # land in random order, not in the data's (often user-sorted) order.
    relabel = rng.permutation(n).astype(np.int32)
    if n <= batch_size:  # one batch whatever the order
        empty = np.zeros(0, np.int32)
        return GcbsOrder(relabel, 0, 0, 0, -np.inf, n, {"graph": 0.0, "reorder": 0.0}, empty, empty)
    graph, info = hard_negative_graph(emb.take(relabel), neighbors, rng, threshold, quantile, max_links)
    graph_seconds = time.perf_counter() - clock
    clock = time.perf_counter()
    rcm = reverse_cuthill_mckee(graph, symmetric_mode=True)
    position = np.empty(n, np.int64)
    position[rcm] = np.arange(n)
    bandwidth = int(np.abs(position[info.src] - position[info.dst]).max(initial=0))
    isolated = int(np.count_nonzero(np.diff(graph.indptr) == 0))
    order = relabel[cut_into_batches(rcm.astype(np.int32), batch_size, rng)]
    seconds = {"graph": graph_seconds, "reorder": time.perf_counter() - clock}
    return GcbsOrder(
        order, bandwidth, info.links_per_example, info.num_links, info.threshold, isolated, seconds,
        relabel[info.src], relabel[info.dst],
    )
