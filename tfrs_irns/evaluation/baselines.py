"""Non-personalised baselines, scored by the same code as the models.

A retrieval model is only interesting if it beats recommending the most
popular items to everyone. To make that comparison fair the baseline goes
through exactly the same ranking, exclusion, tie rule and metrics as a model:
it is expressed as embeddings — every user gets the query ``[1]`` and every
item the "embedding" ``[training count]`` — so its score is the item's
training popularity, and :func:`~tfrs_irns.evaluation.evaluate.evaluate_embeddings`
does the rest. Equally popular items are ordered by lower index.
"""

from __future__ import annotations

from typing import Any, Unpack

import numpy as np

from tfrs_irns.data.prepare import PreparedData
from tfrs_irns.evaluation.evaluate import ProtocolArgs, evaluate_embeddings, evaluate_on_split

SCORER = "most-popular baseline: score = the item's training interaction count"


def popularity_embeddings(item_counts: np.ndarray, num_users: int) -> tuple[np.ndarray, np.ndarray]:
    """``(user_emb [num_users + 1, 1] of ones, item_emb [num_items + 1, 1] of counts)``."""
    counts = np.asarray(item_counts, np.float32).reshape(-1, 1)
    return np.ones((int(num_users) + 1, 1), np.float32), counts


def popular_baseline_arrays(
    test_users: np.ndarray,
    test_items: np.ndarray,
    train_users: np.ndarray,
    train_items: np.ndarray,
    num_users: int,
    num_items: int,
    **protocol: Unpack[ProtocolArgs],
) -> dict[str, Any]:
    """Most-popular baseline from index arrays; popularity = training counts.

    ``**protocol``: ``ks``, ``exclude_seen``, ``chunk_size``, ``max_queries``,
    ``seed``, as in :func:`~tfrs_irns.evaluation.evaluate.evaluate_embeddings`.
    """
    train = np.asarray(train_items, np.int64).reshape(-1)
    counts = np.bincount(train[(train > 0) & (train <= num_items)], minlength=num_items + 1)
    user_emb, item_emb = popularity_embeddings(counts, num_users)
    result = evaluate_embeddings(
        user_emb,
        item_emb,
        test_users,
        test_items,
        train_users=train_users,
        train_items=train_items,
        item_counts=counts,
        **protocol,
    )
    result["protocol"]["scorer"] = SCORER
    return result


def popular_baseline(
    data: PreparedData, *, split: str = "test", **protocol: Unpack[ProtocolArgs]
) -> dict[str, Any]:
    """Most-popular baseline on a split of ``data``.

    Popularity is ``data.item_counts`` (training counts); the history removed
    by ``exclude_seen`` is the same as in
    :func:`~tfrs_irns.evaluation.evaluate.evaluate_model`, and so are the
    ``**protocol`` keywords.
    """
    user_emb, item_emb = popularity_embeddings(data.item_counts, data.num_query_users)
    result = evaluate_on_split(user_emb, item_emb, data, split, **protocol)
    result["protocol"]["scorer"] = SCORER
    return result
