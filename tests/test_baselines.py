"""Most-popular baseline on a hand-made example, through the shared code path."""

import tfrs_irns  # noqa: F401  (pins Keras 2 before TensorFlow)


import numpy as np
import pytest

from tfrs_irns.evaluation import popular_baseline, popular_baseline_arrays, popularity_embeddings


from helpers import encoded_split, prepared_data  # noqa: E402  (real PreparedData from hand-made splits)


# Training counts: item 1: 3, item 2: 2, item 3: 1, items 4 and 5: 0 -> order 1, 2, 3, 4, 5.
DATA = prepared_data(
    train=encoded_split([1, 1, 1, 2, 2, 3], [1, 1, 2, 3, 1, 2]),
    validation=encoded_split([1], [4]),
    test=encoded_split([1, 2, 3, 2], [3, 2, 5, 0]),  # ranks 2, 1, 4 and an OOV item
    num_users=3,
    num_items=5,
    item_counts=np.array([0, 3, 2, 1, 0, 0], np.float64),
)


def test_popularity_embeddings_score_items_by_count():
    users, items = popularity_embeddings(DATA.item_counts, DATA.num_users)
    np.testing.assert_array_equal(users @ items.T, np.tile(DATA.item_counts, (4, 1)))


def test_popular_baseline_hand_computed():
    r = popular_baseline(DATA, ks=[1, 2, 3])
    assert [r["hit_rate@1"], r["hit_rate@2"], r["hit_rate@3"]] == [0.0, 0.25, 0.5]
    assert r["mrr"] == pytest.approx((1 / 3 + (1 / 2 + 0) / 2 + 1 / 5) / 3)
    assert r["coverage@1"] == pytest.approx(1 / 5) and r["coverage@3"] == pytest.approx(3 / 5)
    # head = {1} (3 of 6 interactions); no test item is head.
    assert r["head"]["num_test_interactions"] == 0 and r["head"]["hit_rate@1"] is None
    assert r["tail"]["hit_rate@3"] == 0.5
    assert r["protocol"]["scorer"].startswith("most-popular baseline")
    assert r["protocol"]["split"] == "test"


def test_popular_baseline_exclude_seen_uses_train_and_validation_history():
    r = popular_baseline(DATA, ks=[1], exclude_seen=True)
    # user 1 without {1, 2, 4}: 3, 5 -> item 3 rank 0; user 2 without {1, 3}: 2, 4, 5 -> rank 0;
    # user 3 without {2}: 1, 3, 4, 5 -> item 5 rank 3.
    assert r["hit_rate@1"] == 0.5
    assert r["mrr"] == pytest.approx((1 + (1 + 0) / 2 + 1 / 4) / 3)
    assert r["coverage@1"] == pytest.approx(3 / 5)  # tops: 3, 2, 1
    assert r["protocol"]["history"] == ["train", "validation"]


def test_arrays_entry_point_matches_data_entry_point():
    by_data = popular_baseline(DATA, ks=[1, 2, 3])
    by_arrays = popular_baseline_arrays(
        DATA.test.user, DATA.test.item, DATA.train.user, DATA.train.item,
        num_users=3, num_items=5, ks=[1, 2, 3],
    )
    for extra in ("split", "history"):
        by_data["protocol"].pop(extra)
    assert by_data == by_arrays
