"""GCBS diagnostics against hand computations and a loop-based oracle."""

import numpy as np
import pytest

import tfrs_irns  # noqa: F401
from tfrs_irns.batching.gcbs import embed_examples
from tfrs_irns.batching.gcbs_diagnostics import batch_of, batch_stats, compare_orders, links_in_batch, loss_gap


def toy():
    # 4 examples; users 1,1,2,3; items 1,2,1,3. 1-d embeddings.
    users = np.array([1, 1, 2, 3], np.int32)
    items = np.array([1, 2, 1, 3], np.int32)
    q = np.array([[0], [1], [2], [3]], np.float32)
    c = np.array([[0], [1], [10], [100]], np.float32)
    return embed_examples(users, items, lambda u: q[u], lambda v: c[v])


def test_batch_of_maps_examples_to_runs():
    np.testing.assert_array_equal(batch_of(np.array([3, 0, 2, 1, 4]), 2), [0, 1, 1, 0, 2])


def test_batch_stats_by_hand():
    emb = toy()
    # Batches {0, 2} and {1, 3} (batch size 2, both sampled).
    stats = batch_stats(emb, np.array([0, 2, 1, 3]), 2, np.random.default_rng(0), max_batches=5)
    # Pairs: (0,2),(2,0) share item 1 -> accidental hits; (1,3): q=1,c=100;
    # (3,1): q=3,c=10. Negatives are only the last two.
    assert stats["neg_sim"] == pytest.approx((100 + 30) / 2)
    assert stats["hit_share"] == pytest.approx(2 / 4)
    assert stats["same_user_share"] == pytest.approx(0.0)
    stats = batch_stats(emb, np.array([0, 1, 2, 3]), 2, np.random.default_rng(0), max_batches=5)
    # {0,1}: same user, q=1 c=10 and q=1 c=1; {2,3}: q=2 c=100, q=3 c=1.
    assert stats["neg_sim"] == pytest.approx((10 + 1 + 200 + 3) / 4)
    assert stats["same_user_share"] == pytest.approx(2 / 4)


def oracle_gap(emb, order, batch_size, sample, temperature):
    n, s = len(order), len(sample)
    where = batch_of(order, batch_size)
    score = lambda i, j: float(emb.queries([i])[0] @ emb.candidates([j])[0]) / temperature  # noqa: E731
    gaps = []
    for i in sample:
        item = emb.item_row[i]
        glob = [score(i, i)] + [
            score(i, j) + np.log((n - 1) / (s - 1)) for j in sample if j != i and emb.item_row[j] != item
        ]
        train = [score(i, i)] + [
            score(i, j) for j in range(n) if where[j] == where[i] and j != i and emb.item_row[j] != item
        ]
        gaps.append(np.log(np.sum(np.exp(glob))) - np.log(np.sum(np.exp(train))))
    return float(np.mean(gaps))


@pytest.mark.parametrize("sample_size", [37, 20])
def test_loss_gap_matches_the_oracle(sample_size):
    rng = np.random.default_rng(1)
    users = rng.integers(1, 6, 37).astype(np.int32)
    items = rng.integers(1, 9, 37).astype(np.int32)
    q = rng.normal(size=(6, 3)).astype(np.float32)
    c = rng.normal(size=(9, 3)).astype(np.float32)
    emb = embed_examples(users, items, lambda u: q[u], lambda v: c[v])
    order = rng.permutation(37)
    sample = rng.choice(37, sample_size, replace=False)
    got = loss_gap(emb, order, 8, sample, temperature=0.5)
    assert got == pytest.approx(oracle_gap(emb, order, 8, sample, 0.5), rel=1e-5)


def test_global_loss_gap_is_zero_when_one_batch_holds_everything():
    emb = toy()
    order = np.array([2, 0, 3, 1])
    assert loss_gap(emb, order, 4, np.arange(4)) == pytest.approx(0.0, abs=1e-6)


def test_links_in_batch():
    order = np.array([0, 1, 2, 3, 4, 5])
    share = links_in_batch(np.array([0, 0, 2, 5]), np.array([1, 2, 3, 4]), order, 2)
    assert share == pytest.approx(3 / 4)
    assert np.isnan(links_in_batch(np.zeros(0, int), np.zeros(0, int), order, 2))


def test_compare_orders_reports_both_orders():
    emb = toy()
    out = compare_orders(emb, np.array([0, 2, 1, 3]), 2, np.random.default_rng(0))
    for key in ("neg_sim", "hit_share", "same_user_share", "gap"):
        assert np.isfinite(out[key]) and np.isfinite(out[key + "_random"])
