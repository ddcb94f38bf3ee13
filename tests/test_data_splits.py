"""Split properties: disjoint, complete, deterministic, right sizes and rows."""

import numpy as np
import pytest

import tfrs_irns  # noqa: F401
from tfrs_irns.data.splits import split_interactions
from tfrs_irns.data.table import Interactions

METHODS = ["random", "temporal", "leave_last_out"]


def make_interactions(n=1000, num_users=60, seed=0):
    """Row ``r`` carries the tag ``r{r}`` as its item id, so splits can be
    mapped back to row numbers. Few distinct timestamps force ties."""
    rng = np.random.default_rng(seed)
    return Interactions(
        user_id=np.array([f"u{u}" for u in rng.integers(num_users, size=n)]),
        item_id=np.array([f"r{r}" for r in range(n)]),
        timestamp=rng.integers(0, 50, size=n).astype(np.int64),
        rating=rng.random(n).astype(np.float32),
    )


def rows_of(part):
    return np.array([int(t[1:]) for t in part.item_id], dtype=np.int64)


@pytest.mark.parametrize("method", METHODS)
def test_partition_disjoint_and_complete(method):
    inter = make_interactions()
    train, val, test = (rows_of(p) for p in split_interactions(inter, method, 0.2, 0.1, seed=3))
    assert len(np.intersect1d(train, test)) == 0
    assert len(np.intersect1d(val, test)) == 0
    assert len(np.intersect1d(train, val)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, val, test])), np.arange(len(inter)))
    assert len(test) > 0 and len(val) > 0


@pytest.mark.parametrize("method", METHODS)
def test_rows_keep_their_columns_and_order(method):
    inter = make_interactions()
    for part in split_interactions(inter, method, 0.2, 0.1, seed=3):
        rows = rows_of(part)
        assert np.all(np.diff(rows) > 0)  # input order kept
        assert np.array_equal(part.user_id, inter.user_id[rows])
        assert np.array_equal(part.timestamp, inter.timestamp[rows])
        assert np.array_equal(part.rating, inter.rating[rows])


@pytest.mark.parametrize("method", METHODS)
def test_deterministic_given_seed(method):
    inter = make_interactions()
    a = split_interactions(inter, method, 0.2, 0.1, seed=7)
    b = split_interactions(inter, method, 0.2, 0.1, seed=7)
    for x, y in zip(a, b):
        assert np.array_equal(rows_of(x), rows_of(y))


def test_random_seed_changes_split():
    inter = make_interactions()
    a = rows_of(split_interactions(inter, "random", 0.2, 0.1, seed=1)[2])
    b = rows_of(split_interactions(inter, "random", 0.2, 0.1, seed=2)[2])
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("method", ["random", "temporal"])
def test_fraction_sizes(method):
    inter = make_interactions(n=1003)
    train, val, test = split_interactions(inter, method, 0.25, 0.1, seed=0)
    n_test = round(0.25 * 1003)
    assert len(test) == n_test
    assert len(val) == round(0.1 * (1003 - n_test))
    assert len(train) == 1003 - n_test - len(val)


@pytest.mark.parametrize("method", METHODS)
def test_zero_validation_fraction_gives_empty_validation(method):
    inter = make_interactions()
    train, val, test = split_interactions(inter, method, 0.2, 0.0, seed=0)
    assert len(val) == 0
    assert len(train) + len(test) == len(inter)


def test_temporal_is_a_time_cut():
    inter = make_interactions()
    train, val, test = split_interactions(inter, "temporal", 0.2, 0.1, seed=0)
    assert train.timestamp.max() <= val.timestamp.min()
    assert val.timestamp.max() <= test.timestamp.min()


def test_temporal_ties_broken_by_row_order():
    n = 10
    inter = Interactions(
        user_id=np.array(["u"] * n),
        item_id=np.array([f"r{r}" for r in range(n)]),
        timestamp=np.zeros(n, np.int64),
    )
    train, val, test = split_interactions(inter, "temporal", 0.3, 0.25, seed=0)
    assert rows_of(test).tolist() == [7, 8, 9]
    assert rows_of(val).tolist() == [5, 6]  # round(0.25 * 7) = 2
    assert rows_of(train).tolist() == [0, 1, 2, 3, 4]


def leave_last_out_oracle(inter):
    """Per user: rows sorted by (timestamp, row); last -> test if >= 2 rows,
    second-to-last -> validation if >= 3 rows."""
    by_user = {}
    for r, (u, t) in enumerate(zip(inter.user_id.tolist(), inter.timestamp.tolist())):
        by_user.setdefault(u, []).append((t, r))
    test, val = [], []
    for rows in by_user.values():
        rows.sort()
        if len(rows) >= 2:
            test.append(rows[-1][1])
        if len(rows) >= 3:
            val.append(rows[-2][1])
    return sorted(test), sorted(val)


def test_leave_last_out_matches_oracle():
    # Many users with 1-3 rows, plus ties in time.
    inter = make_interactions(n=400, num_users=200, seed=5)
    train, val, test = split_interactions(inter, "leave_last_out", 0.2, 0.1, seed=0)
    want_test, want_val = leave_last_out_oracle(inter)
    assert rows_of(test).tolist() == want_test
    assert rows_of(val).tolist() == want_val
    counts = {u: c for u, c in zip(*np.unique(inter.user_id, return_counts=True))}
    assert any(c == 1 for c in counts.values()) and any(c == 2 for c in counts.values())
    # Single-interaction users keep theirs in train.
    singles = [u for u, c in counts.items() if c == 1]
    assert set(singles) <= set(train.user_id.tolist())
    assert not set(singles) & set(test.user_id.tolist())


def test_leave_last_out_picks_latest_by_time_not_row():
    inter = Interactions(
        user_id=np.array(["a", "a", "a", "b", "b"]),
        item_id=np.array(["r0", "r1", "r2", "r3", "r4"]),
        timestamp=np.array([30, 10, 20, 5, 5], np.int64),
    )
    train, val, test = split_interactions(inter, "leave_last_out", 0.2, 0.1, seed=0)
    # a: latest is row 0 (t=30), then row 2; b: tie at t=5 -> later row 4.
    assert rows_of(test).tolist() == [0, 4]
    assert rows_of(val).tolist() == [2]  # b has only 2 rows: no validation
    assert rows_of(train).tolist() == [1, 3]


def test_unknown_method():
    with pytest.raises(ValueError, match="leave_last_out"):
        split_interactions(make_interactions(n=10), "bogus", 0.2, 0.1, seed=0)
