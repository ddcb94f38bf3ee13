"""One evaluation protocol for training, ``evaluate``, export checks, early
stopping and benchmarks.

Retrieval is judged the way it is used: each test user is scored against the
whole catalogue with the model's own towers in inference mode, and every test
item is located in that ranking (:mod:`~tfrs_irns.evaluation.ranking`). The
numbers (:mod:`~tfrs_irns.evaluation.metrics`) come back as one flat dict —
what ``metrics.json`` holds — together with a ``"protocol"`` entry that says
exactly how they were produced, so two runs are only compared when their
protocols match.

Choices a reader of the numbers must know (all recorded in ``"protocol"``):

* full-corpus ranking over items ``1..num_items`` (OOV 0 never ranked), ties
  by lower item index;
* items the user saw in training stay in the ranking (the TFRS protocol)
  unless ``exclude_seen``; a target is never removed from its own ranking;
* a test item unseen in training (OOV index 0) can never be retrieved: it is a
  miss at every K and counts in every denominator;
* test users unseen in training are ranked with the OOV user row 0 and, with
  no raw id to tell them apart, form one user in per-user averages;
* head = the most popular items holding 50% of the training interactions,
  tail = everything else, including unseen items;
* on a ``cold_items`` split the test is also ranked among the cold items
  only (``"cold_only"``: the same metrics, catalogue = the cold items; a
  random ranking hits at K with probability ``K / number of cold items``).
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence, TypedDict, Unpack

import numpy as np
import scipy.sparse as sp
import tensorflow as tf

from tfrs_irns.data.prepare import PreparedData
from tfrs_irns.errors import DataError
from tfrs_irns.evaluation import metrics
from tfrs_irns.evaluation.ranking import CHUNK_SIZE, TIE_RULE, rank_and_top_k
from tfrs_irns.evaluation.shares import WorkerShare, combine_blocks
from tfrs_irns.layers.towers import embed_indices

#: Cut-offs K reported by default.
DEFAULT_KS = (1, 5, 10, 50, 100)
#: Indices embedded per tower call by default.
EMBED_BATCH = 8192
#: Share of training interactions held by the head items.
HEAD_SHARE = 0.5
#: Which earlier splits count as "seen" for ``exclude_seen``.
HISTORY = {"validation": ("train",), "test": ("train", "validation")}


class ProtocolArgs(TypedDict, total=False):
    """The keywords that say how the numbers are produced.

    Two evaluations are comparable only when these agree (the result's
    ``"protocol"`` records them). Every entry point of this package takes them
    as ``**protocol`` and hands them on to :func:`evaluate_embeddings`, which
    documents them and holds their defaults.
    """

    ks: Sequence[int]
    exclude_seen: bool
    chunk_size: int
    max_queries: Optional[int]
    seed: int
    device: str


def evaluate_embeddings(
    user_emb: np.ndarray,
    item_emb: np.ndarray,
    test_users: np.ndarray,
    test_items: np.ndarray,
    ks: Sequence[int] = DEFAULT_KS,
    train_users: Optional[np.ndarray] = None,
    train_items: Optional[np.ndarray] = None,
    item_counts: Optional[np.ndarray] = None,
    exclude_seen: bool = False,
    chunk_size: int = CHUNK_SIZE,
    max_queries: Optional[int] = None,
    seed: int = 0,
    device: str = "auto",
    share: Optional[WorkerShare] = None,
) -> dict[str, Any]:
    """Full-corpus retrieval metrics of precomputed embeddings.

    Args:
      user_emb: ``[num_users + 1, d]`` query embeddings by user index.
      item_emb: ``[num_items + 1, d]`` candidate embeddings by item index.
      test_users, test_items: the test interactions (indices, 0 = OOV).
      ks: cut-offs K (any K > 0; K above ``num_items`` keeps every item).
      train_users, train_items: the history removed when ``exclude_seen``;
        also gives item counts when ``item_counts`` is None.
      item_counts: ``[num_items + 1]`` training counts for the head/tail
        split; without it (and without training arrays) no bands are reported.
      exclude_seen: remove each user's history items from their ranking.
      chunk_size: users scored per matrix product.
      max_queries: evaluate at most this many test users, sampled with
        ``seed`` (all their test interactions are kept).
      seed: the sample of ``max_queries`` users.
      device: where the ranking runs (:func:`tfrs_irns.topk.rank_top_k`):
        ``"auto"`` (TensorFlow when a GPU is visible, else numpy), ``"numpy"``
        or ``"tf"``; the same numbers either way.

    Returns:
      ``hit_rate@K``, ``recall@K``, ``ndcg@K``, ``coverage@K``, ``mrr``,
      ``num_test_interactions``, ``num_test_users``, ``"head"`` and
      ``"tail"`` dicts with the same keys, and ``"protocol"``. A metric with no
      test interaction to average over is ``None``.
    """
    ks = _check_ks(ks)
    num_users = np.shape(user_emb)[0] - 1
    num_items = np.shape(item_emb)[0] - 1
    users = np.asarray(test_users, np.int64).reshape(-1)
    items = np.asarray(test_items, np.int64).reshape(-1)
    if users.shape != items.shape:
        raise ValueError(f"{users.shape[0]} test users but {items.shape[0]} test items")
    if users.size == 0:
        raise DataError("evaluation: there are no test interactions to evaluate")
    _check_range("test user", users, num_users, "user")
    _check_range("test item", items, num_items, "item")

    total_users = int(np.unique(users).size)
    chosen = scored_users(users, max_queries, seed)
    if chosen.size < total_users:
        keep = np.isin(users, chosen)
        users, items = users[keep], items[keep]
    queries = np.unique(users)
    num_queries = int(queries.size)
    oov_items, oov_users = int(np.count_nonzero(items == 0)), int(np.count_nonzero(users == 0))
    if share is not None:  # the protocol above is the whole evaluation's; the ranking below this worker's
        keep = np.isin(users, share.users(queries))
        users, items = users[keep], items[keep]

    bands, head_items = item_bands(num_items, item_counts, train_items)
    blocks, top = ranked_blocks(
        user_emb, item_emb, users, items, ks, bands, exclude_seen, train_users, train_items, chunk_size, device
    )
    ranked_by_worker = None
    if share is not None:
        blocks, ranked_by_worker = combine_blocks(blocks, top, ks, num_items, bands, share)
    result = blocks.pop("all")
    result.update(blocks)
    if ranked_by_worker is not None:
        result["users_ranked_by_worker"] = ranked_by_worker

    result["protocol"] = protocol_record(
        num_items, exclude_seen, head_items, max_queries, seed,
        {"queries": num_queries, "users": total_users, "oov_items": oov_items, "oov_users": oov_users},
    )
    return result


def evaluate_model(
    model: Any,
    data: PreparedData,
    split: str = "test",
    *,
    batch_size: int = EMBED_BATCH,
    share: Optional[WorkerShare] = None,
    **protocol: Unpack[ProtocolArgs],
) -> dict[str, Any]:
    """:func:`evaluate_embeddings` of ``model``'s towers on a split of ``data``.

    Every item index (OOV row included) and only the users that are ranked
    (the split's users, or the seeded sample of ``max_queries`` of them: what
    per-epoch validation scores) are embedded with ``model.query_tower`` /
    ``model.candidate_tower`` in inference mode (``training=False``), so
    dropout or batch statistics never leak in. With ``exclude_seen`` the
    history is the training split for ``"validation"`` and training +
    validation for ``"test"``.

    Args:
      model: anything with ``query_tower`` and ``candidate_tower`` layers.
      data: the prepared data the model was trained on.
      split: ``"validation"`` or ``"test"``.
      batch_size: indices embedded per tower call.
      share: this worker's share of the users (:func:`evaluate_embeddings`):
        only they are embedded and ranked.
      **protocol: ``ks``, ``exclude_seen``, ``chunk_size``, ``max_queries``,
        ``seed``, as in :func:`evaluate_embeddings`.
    """
    if split not in HISTORY:
        raise ValueError(f"split must be 'validation' or 'test', got {split!r}")
    users = getattr(data, split).user
    # cold_only (a cold_items test) samples its own users among the split's: embed them all then.
    sampled = not (split == "test" and len(data.cold_items))
    chosen = scored_users(users, protocol.get("max_queries") if sampled else None, protocol.get("seed", 0))
    if share is not None and sampled:
        chosen = share.users(chosen)
    # Cold users (data.split: cold_users) follow the known users' indices.
    user_emb = embed_users(model.query_tower, chosen, data.num_query_users, batch_size)
    item_emb = embed_indices(model.candidate_tower, data.num_items + 1, batch_size)
    return evaluate_on_split(user_emb, item_emb, data, split, share=share, **protocol)


def scored_users(users: np.ndarray, max_queries: Optional[int] = None, seed: int = 0) -> np.ndarray:
    """The distinct users an evaluation ranks, sorted: all of ``users``, or the
    sample of ``max_queries`` of them drawn with ``seed`` (the same every epoch)."""
    queries = np.unique(np.asarray(users, np.int64).reshape(-1))
    if max_queries is not None and queries.size > max_queries:
        if max_queries < 1:
            raise ValueError(f"max_queries must be >= 1, got {max_queries}")
        picked = np.random.default_rng(seed).choice(queries.size, int(max_queries), replace=False)
        queries = np.sort(queries[picked])
    return queries


def embed_users(tower: Any, users: np.ndarray, num_users: int, batch_size: int = EMBED_BATCH) -> np.ndarray:
    """``[num_users + 1, d]`` float32 with the rows of ``users`` embedded
    (``training=False``) and every other row zero: the tower runs on the users
    that are ranked only (``np.zeros`` costs no memory for rows never touched)."""
    users = np.asarray(users, np.int64).reshape(-1)
    users = users[(users >= 0) & (users <= num_users)]  # out-of-range indices: evaluate_embeddings names them
    parts = [
        np.asarray(tower(tf.constant(users[start : start + batch_size], tf.int32), training=False), np.float32)
        for start in range(0, users.shape[0], batch_size)
    ]
    if not parts:
        parts = [np.asarray(tower(tf.constant([0], tf.int32), training=False), np.float32)[:0]]
    embedded = np.concatenate(parts)
    out = np.zeros((num_users + 1, embedded.shape[1]), np.float32)
    out[users] = embedded
    return out


def evaluate_on_split(
    user_emb: np.ndarray,
    item_emb: np.ndarray,
    data: PreparedData,
    split: str = "test",
    share: Optional[WorkerShare] = None,
    **protocol: Unpack[ProtocolArgs],
) -> dict[str, Any]:
    """:func:`evaluate_embeddings` on ``data``'s ``split``, with its history
    (see :data:`HISTORY`) and training ``item_counts``; records the split.

    ``share``, ``**protocol``: as in :func:`evaluate_model`.
    """
    if split not in HISTORY:
        raise ValueError(f"split must be 'validation' or 'test', got {split!r}")
    part = getattr(data, split)
    if len(part) == 0:
        raise DataError(
            f"the {split} split is empty: nothing to evaluate"
            + (" (was the data prepared with validation_fraction=0?)" if split == "validation" else ""),
            arguments=["validation_fraction"],  # a run names its key
        )
    names = list(HISTORY[split])
    if split == "test" and len(data.cold_history):  # cold users' given history is what they have seen
        names.append("cold_history")
    history = [getattr(data, name) for name in names]
    result = evaluate_embeddings(
        user_emb,
        item_emb,
        part.user,
        part.item,
        train_users=np.concatenate([h.user for h in history]),
        train_items=np.concatenate([h.item for h in history]),
        item_counts=data.item_counts,
        share=share,
        **protocol,
    )
    recorded = result["protocol"]
    recorded["split"] = split
    recorded["history"] = names if recorded["exclude_seen"] else []
    if len(data.cold_items) and split == "test":
        result["cold_only"] = cold_only_metrics(
            user_emb, item_emb, part.user, part.item, data.cold_items, share=share, **protocol
        )
    return result


def cold_only_metrics(
    user_emb: np.ndarray,
    item_emb: np.ndarray,
    test_users: np.ndarray,
    test_items: np.ndarray,
    cold_items: np.ndarray,
    share: Optional[WorkerShare] = None,
    **protocol: Unpack[ProtocolArgs],
) -> dict[str, Any]:
    """:func:`evaluate_embeddings` with the catalogue cut down to ``cold_items``.

    How well a model orders the items nobody trained on among themselves:
    the test interactions on cold items are ranked against the other cold
    items only. No history is removed (no cold item is in any history), and
    ``"random_hit_rate@K"`` records what a random order would score.
    """
    cold = np.asarray(cold_items, np.int64)
    position = np.zeros(np.shape(item_emb)[0], np.int64)
    position[cold] = np.arange(1, len(cold) + 1)  # cold item -> its index in the cut catalogue
    items = np.asarray(test_items, np.int64)
    keep = position[items] > 0
    protocol = dict(protocol, exclude_seen=False)
    sub_items = np.concatenate([np.asarray(item_emb)[:1], np.asarray(item_emb)[cold]])
    result = evaluate_embeddings(
        user_emb, sub_items, np.asarray(test_users)[keep], position[items[keep]], share=share, **protocol
    )
    result["protocol"]["catalogue"] = f"the {len(cold)} cold items only (the cold_items split)"
    result["protocol"]["random_hit_rate"] = {
        f"@{k}": min(1.0, k / len(cold)) for k in _check_ks(protocol.get("ks", DEFAULT_KS))
    }
    return result


def embed_all(
    model: Any, num_users: int, num_items: int, batch_size: int = EMBED_BATCH
) -> tuple[np.ndarray, np.ndarray]:
    """``([num_users + 1, d], [num_items + 1, d])`` float32 tower outputs for
    every index, OOV row 0 included, computed with ``training=False``."""
    return (
        embed_indices(model.query_tower, num_users + 1, batch_size),
        embed_indices(model.candidate_tower, num_items + 1, batch_size),
    )


def _metric_block(
    ranks: np.ndarray,
    rows: np.ndarray,
    items: np.ndarray,
    top: np.ndarray,
    ks: Sequence[int],
    num_items: int,
    band: Optional[np.ndarray] = None,
) -> dict[str, Any]:
    """Every metric over the test interactions whose item is in ``band``."""
    if band is not None:
        inside = band[items]
        ranks, rows, items = ranks[inside], rows[inside], items[inside]
    # Per-user metrics count each (user, item) once; every OOV interaction is
    # a different unknown item, so those rows all stay.
    _, first = np.unique(rows * (num_items + 1) + items, return_index=True)
    distinct = np.zeros(ranks.shape[0], bool)
    distinct[first] = True
    distinct |= items == 0
    r, u = ranks[distinct], rows[distinct]
    out: dict[str, Any] = {}
    out.update({f"hit_rate@{k}": metrics.hit_rate(ranks, k) for k in ks})
    out.update({f"recall@{k}": metrics.recall(r, u, k) for k in ks})
    out.update({f"ndcg@{k}": metrics.ndcg(r, u, k) for k in ks})
    out.update({f"coverage@{k}": metrics.coverage(top, k, num_items, band) for k in ks})
    out["mrr"] = metrics.mrr(r, u)
    out = {key: (None if math.isnan(value) else value) for key, value in out.items()}
    out["num_test_interactions"] = int(ranks.shape[0])
    out["num_test_users"] = int(np.unique(rows).shape[0])
    return out


def item_bands(
    num_items: int, item_counts: Optional[np.ndarray], train_items: Optional[np.ndarray]
) -> tuple[dict[str, Optional[np.ndarray]], Optional[int]]:
    """The item masks metrics are reported for (``"all"``, and ``"head"`` / ``"tail"``
    when training counts are known) and the number of head items."""
    if item_counts is None and train_items is not None:
        train = np.asarray(train_items, np.int64).reshape(-1)
        item_counts = np.bincount(train[(train > 0) & (train <= num_items)], minlength=num_items + 1)
    bands: dict[str, Optional[np.ndarray]] = {"all": None}
    head_items = None
    if item_counts is not None:
        if np.shape(item_counts) != (num_items + 1,):
            raise ValueError(f"item_counts has shape {np.shape(item_counts)}, expected ({num_items + 1},)")
        head = metrics.popularity_head(item_counts, HEAD_SHARE)
        head_items = int(head.sum())
        bands.update(head=head, tail=~head)
    return bands, head_items


def ranked_blocks(
    user_emb: np.ndarray,
    item_emb: np.ndarray,
    users: np.ndarray,
    items: np.ndarray,
    ks: Sequence[int],
    bands: dict[str, Optional[np.ndarray]],
    exclude_seen: bool,
    train_users: Optional[np.ndarray],
    train_items: Optional[np.ndarray],
    chunk_size: int,
    device: str,
) -> tuple[dict[str, dict[str, Any]], np.ndarray]:
    """Every metric block (one per band) of the test interactions ``users``, ``items``
    (checked, 0-based indices), and the evaluated users' top lists."""
    num_items = np.shape(item_emb)[0] - 1
    queries, rows = np.unique(users, return_inverse=True)
    exclude = None
    if exclude_seen:
        if train_users is None or train_items is None:
            raise ValueError("exclude_seen=True needs train_users and train_items")
        exclude = _seen_matrix(queries, train_users, train_items, num_items)
    ranks, top, _ = rank_and_top_k(
        np.asarray(user_emb)[queries],
        item_emb,
        targets=items,
        target_rows=rows,
        k=max(ks),
        exclude=exclude,
        chunk_size=chunk_size,
        device=device,
    )

    blocks = {name: _metric_block(ranks, rows, items, top, ks, num_items, band=band) for name, band in bands.items()}
    return blocks, top


def protocol_record(
    num_items: int,
    exclude_seen: bool,
    head_items: Optional[int],
    max_queries: Optional[int],
    seed: int,
    counts: dict[str, int],
) -> dict[str, Any]:
    """The ``"protocol"`` record; ``counts``: evaluated ``queries`` of the split's
    ``users``, and the ``oov_items`` / ``oov_users`` test interactions."""
    return {
        "ranking": f"full corpus, brute force: each test user scored against all {num_items} catalogue items",
        "num_items": int(num_items),
        "catalogue": "item indices 1..num_items; the OOV index 0 is never ranked",
        "tie_rule": TIE_RULE,
        "exclude_seen": bool(exclude_seen),
        "seen_items": (
            "each user's history items are removed from their ranking, except the target itself"
            if exclude_seen
            else "items seen in training stay in the ranking (TFRS protocol)"
        ),
        "hit_rate": "per test interaction: share ranked < K (TFRS FactorizedTopK top-K accuracy)",
        "recall": "per user: share of the user's distinct test items ranked < K; mean over users",
        "ndcg": "per user, binary relevance, ideal DCG from min(#test items, K); mean over users",
        "mrr": "per user: mean of 1/(rank+1) over the user's distinct test items; mean over users",
        "coverage": "share of catalogue (or band) items in at least one evaluated user's top K",
        "k_above_catalogue": "K > num_items ranks the whole catalogue",
        "oov_items": (
            f"{counts['oov_items']} test interactions have an item unseen in training (OOV); "
            "they cannot be retrieved and count as misses"
        ),
        "oov_users": (
            f"{counts['oov_users']} test interactions have a user unseen in training; they are ranked "
            "with the OOV user embedding and form one user in per-user metrics"
        ),
        "head": (
            f"the {head_items} most popular items holding {HEAD_SHARE:.0%} of training interactions "
            "(ties by lower index); tail = every other item, including OOV and unseen items"
            if head_items is not None
            else "not computed: no training item counts given"
        ),
        "max_queries": None if max_queries is None else int(max_queries),
        "evaluated_users": f"{counts['queries']} of {counts['users']} test users",
        "seed": int(seed),
    }


def _seen_matrix(queries: np.ndarray, users: np.ndarray, items: np.ndarray, num_items: int) -> sp.csr_matrix:
    """``[len(queries), num_items + 1]`` CSR of each query user's history items."""
    users = np.asarray(users, np.int64).reshape(-1)
    items = np.asarray(items, np.int64).reshape(-1)
    if queries.size == 0:  # a worker with no users to rank
        return sp.csr_matrix((0, num_items + 1), dtype=np.int8)
    pos = np.minimum(np.searchsorted(queries, users), queries.shape[0] - 1)
    keep = (queries[pos] == users) & (items > 0) & (items <= num_items)
    return sp.csr_matrix(
        (np.ones(int(keep.sum()), np.int8), (pos[keep], items[keep])),
        shape=(queries.shape[0], num_items + 1),
    )


def _check_ks(ks: Sequence[int]) -> list[int]:
    values = list(ks)
    if not values or any(isinstance(k, bool) or int(k) != k or k < 1 for k in values):
        raise ValueError(f"ks must be a non-empty list of integers K > 0, got {values!r}")
    return sorted({int(k) for k in values})


def _check_range(what: str, values: np.ndarray, size: int, table: str) -> None:
    bad = (values < 0) | (values > size)
    if bad.any():
        raise DataError(
            f"evaluation: {what} index {int(values[bad][0])} is outside the {table} "
            f"embedding table (rows 0..{size}); were the model and the data prepared from the same data?"
        )
