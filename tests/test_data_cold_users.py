"""The cold_users split (tfrs_irns/data/cold_users.py and its encoding in
prepare): no cold user reaches training or validation, the history given at
evaluation is only each cold user's earlier half, and an [id] tower answers
them with the mean (OOV) user."""

import numpy as np
import pytest

import tfrs_irns  # noqa: F401  (Keras 2 before tensorflow)

from tfrs_irns.config import DataConfig
from tfrs_irns.data.cold_users import split_cold_users
from tfrs_irns.data.duplicates import pair_groups
from tfrs_irns.data.prepare import prepare_from_raw
from tfrs_irns.data.table import Interactions, ItemTable, RawDataset
from tfrs_irns.errors import DataError


def _raw(num_users=20, per_user=5):
    rng = np.random.default_rng(3)
    users = np.repeat([f"u{u:02d}" for u in range(num_users)], per_user)
    items = np.array([f"i{i}" for i in rng.integers(0, 15, len(users))])
    times = rng.integers(0, 4, len(users)).astype(np.int64)  # many ties: row order decides
    return RawDataset(Interactions(users, items, times), ItemTable(np.array([f"i{i}" for i in range(15)])))


def test_cold_users_are_only_in_test_and_history():
    raw = _raw()
    train, validation, test, history = split_cold_users(raw.interactions, 0.25, 0.2, seed=7)
    cold = set(test.user_id) | set(history.user_id)
    assert len(cold) == 5  # 25% of 20
    assert not cold & set(train.user_id) and not cold & set(validation.user_id)
    assert set(test.user_id) == cold and len(validation) > 0
    assert len(train) + len(validation) + len(test) + len(history) == len(raw.interactions)


def test_history_is_the_earlier_half_by_time_then_row():
    raw = _raw(per_user=5)
    inter = raw.interactions
    _, _, test, history = split_cold_users(inter, 0.25, 0.1, seed=7)
    for user in set(test.user_id):
        rows = np.flatnonzero(inter.user_id == user)
        line = sorted(rows, key=lambda r: (inter.timestamp[r], r))
        got_history = sorted(zip(history.timestamp[history.user_id == user], history.item_id[history.user_id == user]))
        want = sorted((inter.timestamp[r], inter.item_id[r]) for r in line[:2])  # floor(5 / 2)
        assert got_history == want
        assert np.sum(test.user_id == user) == 3
        # Nothing of the history is later than anything tested.
        assert history.timestamp[history.user_id == user].max() <= test.timestamp[test.user_id == user].min()


def test_keep_all_copies_of_a_cold_pair_stay_on_one_side():
    # u0 is the only user with enough rows to be cut; it saw x at t=0 and again at t=9.
    rows = [("u0", "x", 0), ("u0", "y", 1), ("u0", "z", 2), ("u0", "x", 9), ("u1", "x", 0), ("u1", "y", 1)]
    users, items, times = (np.array(c) for c in zip(*rows))
    inter = Interactions(users, items, times.astype(np.int64))
    groups = pair_groups(inter)
    for seed in range(8):
        _, _, test, history = split_cold_users(inter, 0.5, 0.0, seed=seed, groups=groups)
        test_pairs, history_pairs = set(zip(test.user_id, test.item_id)), set(zip(history.user_id, history.item_id))
        assert not test_pairs & history_pairs
        assert len(test) + len(history) == sum(u in set(test.user_id) for u in users)
        if "u0" in set(test.user_id):
            # Three pairs by their earliest copies x(0), y(1), z(2): the earlier one pair is the history.
            assert sorted(history.item_id.tolist()) == ["x", "x"] and sorted(test.item_id.tolist()) == ["y", "z"]
    # Without groups the later copy of x is a test row while the earlier one is history: the leak this prevents.
    _, _, test, history = split_cold_users(inter, 0.5, 0.0, seed=next(s for s in range(8) if _u0_cold(inter, s)))
    assert ("u0", "x") in set(zip(test.user_id, test.item_id)) & set(zip(history.user_id, history.item_id))


def _u0_cold(inter, seed):
    return "u0" in set(split_cold_users(inter, 0.5, 0.0, seed=seed)[2].user_id)


def test_prepared_cold_users_follow_the_known_users_indices():
    cfg = DataConfig(split="cold_users", cold_user_fraction=0.25, validation_fraction=0.1, seed=7)
    data = prepare_from_raw(_raw(), cfg)
    assert data.num_cold_users == 5 and data.num_users == 15 and data.num_query_users == 20
    assert set(data.test.user.tolist()) == set(range(16, 21))
    assert set(data.cold_history.user.tolist()) <= set(range(16, 21))
    assert data.train.user.max() <= 15 and data.validation.user.max() <= 15
    ids = data.cold_users.id_of(data.test.user - data.num_users)
    assert not set(ids) & set(data.user_vocab.ids)
    # Items seen only by cold users are OOV (0), in the history as in the test.
    assert set(data.cold_history.item.tolist()) <= set(range(data.num_items + 1))


def test_id_tower_answers_cold_users_with_the_mean_user():
    import tensorflow as tf

    from tfrs_irns.layers.towers import QueryTower

    tower = QueryTower(4, 3)
    out = tower(tf.constant([0, 3, 4, 9])).numpy()
    np.testing.assert_array_equal(out[2], out[0])
    np.testing.assert_array_equal(out[3], out[0])
    assert not np.array_equal(out[1], out[0])


def test_fingerprint_depends_on_the_cold_fraction():
    base = DataConfig(split="cold_users", cold_user_fraction=0.25)
    other = DataConfig(split="cold_users", cold_user_fraction=0.3)
    assert prepare_from_raw(_raw(), base).fingerprint != prepare_from_raw(_raw(), other).fingerprint


def test_one_user_cannot_be_split():
    with pytest.raises(DataError, match="cold_users needs at least 2 users"):
        split_cold_users(_raw(num_users=1).interactions, 0.5, 0.1, seed=0)


def test_data_summary_counts_every_cold_test_user_as_unseen():
    from tfrs_irns.data.summary import summarize

    raw = _raw()
    data = prepare_from_raw(raw, DataConfig(split="cold_users", cold_user_fraction=0.25))
    summary = summarize(raw, data)
    assert summary["cold_test_user_share"] == 1.0 and summary["splits"]["test"]["users"] == 5
