"""Metrics from ranks, against hand-computed examples."""

import tfrs_irns  # noqa: F401  (pins Keras 2 before TensorFlow)

import math

import numpy as np
import pytest

from tfrs_irns.evaluation import metrics
from tfrs_irns.evaluation.ranking import UNRANKABLE

MISS = UNRANKABLE


def test_hit_rate_per_interaction_with_unrankable_items():
    ranks = np.array([0, 3, 10, MISS])
    assert metrics.hit_rate(ranks, 1) == 0.25
    assert metrics.hit_rate(ranks, 4) == 0.5
    assert metrics.hit_rate(ranks, 11) == 0.75
    # K far above any catalogue still never retrieves an OOV item.
    assert metrics.hit_rate(ranks, 10**12) == 0.75


def test_recall_averages_per_user_share():
    # user 7: ranks 0 and 5 (one of two in top 3); user 9: rank 2 (in top 3).
    ranks = np.array([0, 5, 2])
    users = np.array([7, 7, 9])
    assert metrics.recall(ranks, users, 3) == pytest.approx((0.5 + 1.0) / 2)
    assert metrics.recall(ranks, users, 1) == pytest.approx((0.5 + 0.0) / 2)
    # an unrankable item counts in the denominator
    assert metrics.recall(np.array([0, MISS]), np.array([1, 1]), 100) == 0.5


def test_ndcg_hand_computed():
    # user 1 has test items at ranks 1 and 3; user 2 one item at rank 0.
    ranks = np.array([1, 3, 0])
    users = np.array([1, 1, 2])
    dcg_u1_k5 = 1 / math.log2(3) + 1 / math.log2(5)
    idcg_u1_k5 = 1 + 1 / math.log2(3)
    assert metrics.ndcg(ranks, users, 5) == pytest.approx((dcg_u1_k5 / idcg_u1_k5 + 1.0) / 2)
    # K = 2: only rank 1 counts for user 1; ideal = two hits at ranks 0, 1.
    assert metrics.ndcg(ranks, users, 2) == pytest.approx(((1 / math.log2(3)) / (1 + 1 / math.log2(3)) + 1.0) / 2)
    # K = 1: the ideal holds min(2, 1) = 1 item, user 1 has none in the top 1.
    assert metrics.ndcg(ranks, users, 1) == pytest.approx((0.0 + 1.0) / 2)


def test_ndcg_ideal_uses_min_of_items_and_k_and_counts_unrankable():
    # three relevant items, K = 2: ideal DCG = 1 + 1/log2(3); an OOV item adds nothing.
    ranks = np.array([0, 1, MISS])
    assert metrics.ndcg(ranks, np.zeros(3), 2) == pytest.approx(1.0)
    assert metrics.ndcg(ranks, np.zeros(3), 3) == pytest.approx((1 + 1 / math.log2(3)) / (1 + 1 / math.log2(3) + 0.5))


def test_mrr_per_user_then_over_users():
    ranks = np.array([0, 3, MISS])
    users = np.array([1, 1, 2])
    # user 1: (1/1 + 1/4) / 2 = 0.625; user 2: 0.
    assert metrics.mrr(ranks, users) == pytest.approx(0.3125)


def test_coverage_counts_distinct_items_and_ignores_padding():
    top = np.array([[1, 2, 0], [2, 3, 0]])
    assert metrics.coverage(top, 1, num_items=4) == 0.5  # {1, 2}
    assert metrics.coverage(top, 3, num_items=4) == 0.75  # {1, 2, 3}; padding 0 ignored
    band = np.array([True, False, True, False, True])  # items 2 and 4 (index 0 ignored)
    assert metrics.coverage(top, 3, num_items=4, items=band) == 0.5


def test_popularity_head_holds_half_the_training_interactions():
    # total 10 (OOV count ignored): item 1 alone holds 5 >= 50%.
    np.testing.assert_array_equal(metrics.popularity_head(np.array([9, 5, 1, 3, 1])), [0, 1, 0, 0, 0])
    # ties broken by lower index: 2 + 2 < 5 <= 2 + 2 + 2.
    np.testing.assert_array_equal(metrics.popularity_head(np.array([0, 2, 2, 2, 2, 2])), [0, 1, 1, 1, 0, 0])
    # unseen items (count 0) are never head
    np.testing.assert_array_equal(metrics.popularity_head(np.array([0, 0, 4, 0]), 0.5), [0, 0, 1, 0])
    assert not metrics.popularity_head(np.zeros(4)).any()


def test_empty_inputs_give_nan():
    empty = np.zeros(0, np.int64)
    assert math.isnan(metrics.hit_rate(empty, 5))
    assert math.isnan(metrics.recall(empty, empty, 5))
    assert math.isnan(metrics.ndcg(empty, empty, 5))
    assert math.isnan(metrics.mrr(empty, empty))
    assert math.isnan(metrics.coverage(np.zeros((1, 1), int), 1, 3, items=np.zeros(4, bool)))
