"""Is a batch order any harder than random? Cheap measures on a sample.

GCBS (:mod:`tfrs_irns.batching.gcbs`) promises batches whose in-batch
negatives are harder, i.e. a training loss closer to the global contrastive
loss. These functions check that promise for one epoch's order against a
random order, on a few batches or a sample of examples so they cost little
next to the reordering itself:

* the mean similarity ``<q_i, c_j>`` of in-batch negatives (pairs of a batch
  with different items: same-item pairs are accidental hits the loss masks);
* the share of accidental hits (same item) and of same-user pairs per batch:
  hard batches must not get there by packing duplicates or false negatives;
* ``L_global - L_train``: the gap the paper bounds. For each sampled example,
  ``L_global`` is the softmax cross-entropy against every example's item and
  ``L_train`` against its own batch's items only, both with accidental hits
  masked as in training. The positive's logit cancels, so the gap is the
  difference of the two log-partition sums. The global sum is estimated from
  the other sampled examples, scaled by ``(n - 1) / (s - 1)`` so that it
  estimates the sum over all ``n`` examples (exact when ``s = n``). Harder
  batches have a larger partition sum, hence a smaller gap.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from tfrs_irns.batching.gcbs import ExampleEmbeddings


def batch_of(order: np.ndarray, batch_size: int) -> np.ndarray:
    """``batch_of(order, B)[i]``: the batch (run of ``B`` in ``order``) of example ``i``."""
    out = np.empty(order.shape[0], np.int64)
    out[order] = np.arange(order.shape[0]) // batch_size
    return out


def batch_stats(
    emb: ExampleEmbeddings, order: np.ndarray, batch_size: int, rng: np.random.Generator, max_batches: int = 16
) -> dict[str, float]:
    """Negative similarity, accidental-hit and same-user shares over up to
    ``max_batches`` random batches of ``order`` (pairs ``i != j`` of a batch)."""
    n = order.shape[0]
    num_batches = -(-n // batch_size)
    chosen = rng.choice(num_batches, size=min(max_batches, num_batches), replace=False)
    neg_sum = neg_count = pairs = hits = same_user = 0.0
    for b in chosen:
        idx = order[b * batch_size : (b + 1) * batch_size]
        scores = emb.queries(idx) @ emb.candidates(idx).T
        other = ~np.eye(idx.shape[0], dtype=bool)
        item = emb.item_row[idx]
        user = emb.user_row[idx]
        same_item = (item[:, None] == item[None, :]) & other
        negative = other & ~same_item
        neg_sum += float(scores[negative].sum())
        neg_count += float(negative.sum())
        pairs += float(other.sum())
        hits += float(same_item.sum())
        same_user += float(((user[:, None] == user[None, :]) & other).sum())
    nan = float("nan")
    return {
        "neg_sim": neg_sum / neg_count if neg_count else nan,
        "hit_share": hits / pairs if pairs else nan,
        "same_user_share": same_user / pairs if pairs else nan,
    }


def loss_gap(
    emb: ExampleEmbeddings,
    order: np.ndarray,
    batch_size: int,
    sample: np.ndarray,
    temperature: float = 1.0,
) -> float:
    """Mean ``L_global - L_train`` over the examples ``sample`` (see module doc)."""
    n, s = order.shape[0], sample.shape[0]
    q = emb.queries(sample) / temperature
    item = emb.item_row
    positive = np.einsum("nd,nd->n", q, emb.candidates(sample))
    # Global: the other sampled examples, accidental hits masked, scaled to n.
    logits = q @ emb.candidates(sample).T
    keep = (item[sample][:, None] != item[sample][None, :])
    scale = np.log((n - 1) / (s - 1)) if s > 1 else 0.0
    glob = logsumexp(np.where(keep, logits + scale, -np.inf), axis=1)
    glob = np.logaddexp(glob, positive)
    # Train: the rest of each sampled example's batch, one matmul per batch.
    where = batch_of(order, batch_size)[sample]
    train = np.empty(s)
    for b in np.unique(where):
        rows = np.flatnonzero(where == b)
        members = order[b * batch_size : (b + 1) * batch_size]
        logits = q[rows] @ emb.candidates(members).T
        valid = item[members][None, :] != item[sample[rows]][:, None]
        train[rows] = logsumexp(np.where(valid, logits, -np.inf), axis=1)
    train = np.logaddexp(train, positive)
    return float(np.mean(glob - train))


def links_in_batch(src: np.ndarray, dst: np.ndarray, order: np.ndarray, batch_size: int) -> float:
    """Share of graph links whose two examples share a batch of ``order``."""
    if src.shape[0] == 0:
        return float("nan")
    where = batch_of(order, batch_size)
    return float(np.mean(where[src] == where[dst]))


def compare_orders(
    emb: ExampleEmbeddings,
    order: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    temperature: float = 1.0,
    max_batches: int = 16,
    sample_size: int = 1024,
) -> dict[str, float]:
    """Every measure for ``order`` and (suffix ``_random``) a random order."""
    n = order.shape[0]
    random = rng.permutation(n)
    sample = rng.choice(n, size=min(sample_size, n), replace=False)
    out: dict[str, float] = {}
    for suffix, o in (("", order), ("_random", random)):
        for key, value in batch_stats(emb, o, batch_size, rng, max_batches).items():
            out[key + suffix] = value
        out["gap" + suffix] = loss_gap(emb, o, batch_size, sample, temperature)
    return out
