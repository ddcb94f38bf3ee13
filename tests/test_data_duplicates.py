"""Repeated (user, item) pairs: collapsed by policy, and never on both sides of a split."""

import itertools

import numpy as np
import pytest

from tfrs_irns.config import DataConfig, load_config
from tfrs_irns.data.duplicates import collapse_duplicates, first_of_groups, pair_groups
from tfrs_irns.data.prepare import prepare_data, prepare_from_raw
from tfrs_irns.data.sources import collapse_raw_duplicates
from tfrs_irns.data.splits import split_interactions
from tfrs_irns.data.table import Interactions, ItemTable, RawDataset

from helpers import write_tiny_csv


def table(rows):
    """Interactions from ``(user, item, timestamp)`` tuples."""
    users, items, times = zip(*rows)
    return Interactions(np.array(users), np.array(items), np.array(times, np.int64), np.arange(len(rows), dtype=np.float32))


ROWS = [("a", "x", 5), ("b", "x", 1), ("a", "x", 2), ("a", "y", 3), ("a", "x", 9), ("b", "x", 1)]


def test_pair_groups_by_hand():
    g = pair_groups(table(ROWS))
    assert g[0] == g[2] == g[4] and g[1] == g[5] and len({g[0], g[1], g[3]}) == 3


@pytest.mark.parametrize(
    "policy, kept_rows",
    [
        # a-x: t=9 is the latest (row 4); b-x: equal times, so row order decides (row 5 is later).
        ("keep_last", [3, 4, 5]),
        ("keep_first", [1, 2, 3]),  # a-x at t=2 (row 2); b-x: the earlier row (1)
        ("keep_all", [0, 1, 2, 3, 4, 5]),
    ],
)
def test_collapse_keeps_the_copy_the_policy_names(policy, kept_rows):
    out, repeats = collapse_duplicates(table(ROWS), policy)
    assert repeats == 3
    assert out.rating.astype(int).tolist() == kept_rows  # rating = original row number, order kept


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("policy", ["keep_last", "keep_first"])
def test_collapse_matches_a_per_pair_oracle(seed, policy):
    # Few users, items and times: many repeats, many time ties, and some pairs seen once.
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 300))
    rows = [(f"u{u}", f"i{i}", int(t)) for u, i, t in zip(rng.integers(0, 6, n), rng.integers(0, 8, n), rng.integers(0, 4, n))]
    best = {}
    for r, (u, i, t) in enumerate(rows):
        # keep_last: the latest time, then the last row; keep_first: the earliest time, then the first row.
        rank = (t, r) if policy == "keep_last" else (-t, -r)
        if (u, i) not in best or rank > best[(u, i)][0]:
            best[(u, i)] = (rank, r)
    out, repeats = collapse_duplicates(table(rows), policy)
    assert repeats == n - len(best)
    assert out.rating.astype(int).tolist() == sorted(r for _, r in best.values())


def test_collapse_rejects_an_unknown_policy():
    with pytest.raises(ValueError, match="policy must be one of keep_last, keep_first, keep_all, got 'newest'"):
        collapse_duplicates(table(ROWS), "newest")


def test_first_of_groups_earliest_and_latest():
    inter = table(ROWS)
    g = pair_groups(inter)
    assert first_of_groups(inter, g).tolist() == [1, 2, 3]
    assert first_of_groups(inter, g, last=True).tolist() == [3, 4, 5]


def _pairs(split):
    return set(zip(split.user_id.tolist(), split.item_id.tolist()))


def _repeated_log(seed=0, n=3000):
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 60, n).astype(str)
    items = rng.integers(0, 40, n).astype(str)  # many repeated pairs
    return Interactions(users, items, rng.integers(0, 500, n).astype(np.int64))


@pytest.mark.parametrize(
    "method, validation_fraction", list(itertools.product(["random", "temporal", "leave_last_out"], [0.0, 0.1]))
)
def test_grouped_splits_never_put_a_pair_on_two_sides(method, validation_fraction):
    inter = _repeated_log()
    train, val, test = split_interactions(inter, method, 0.2, validation_fraction, 7, groups=pair_groups(inter))
    assert len(train) + len(val) + len(test) == len(inter)  # every copy kept
    for a, b in itertools.combinations([train, val, test], 2):
        assert not _pairs(a) & _pairs(b)
    assert len(test) > 0
    # Without groups the same log leaks (the finding this option fixes).
    train, val, test = split_interactions(inter, method, 0.2, validation_fraction, 7)
    if method == "random":
        assert _pairs(train) & _pairs(test)


@pytest.mark.parametrize("policy", ["keep_last", "keep_first", "keep_all"])
@pytest.mark.parametrize("method", ["random", "temporal", "leave_last_out"])
def test_no_pair_in_two_splits_under_any_policy(policy, method):
    raw = RawDataset(_repeated_log(1), ItemTable(np.array([str(i) for i in range(40)])))
    collapsed = collapse_raw_duplicates(raw, policy)
    data = prepare_from_raw(collapsed, DataConfig(split=method, duplicates=policy, validation_fraction=0.1))
    # Raw pairs (ids unknown to training encode to OOV, so compare ids, not indices).
    ids = [set(zip(data.user_vocab.id_of(s.user).tolist(), data.item_vocab.id_of(s.item).tolist()))
           for s in (data.train, data.validation, data.test)]
    for a, b in itertools.combinations(ids, 2):
        assert not {p for p in a & b if "" not in p}
    repeats = len(raw.interactions) - len(np.unique(pair_groups(raw.interactions)))
    assert repeats > 1000 and data.duplicate_rows == repeats
    kept = len(raw.interactions) - (0 if policy == "keep_all" else repeats)
    assert len(data.train) + len(data.validation) + len(data.test) == kept


def test_a_csv_with_every_row_twice_prepares_like_the_csv_once(tmp_path):
    once, twice = tmp_path / "once.csv", tmp_path / "twice.csv"
    write_tiny_csv(once)
    write_tiny_csv(twice, repeat=2)
    a = prepare_data(load_config(None, ["data.source=csv", f"data.path={once}"]).data)
    b = prepare_data(load_config(None, ["data.source=csv", f"data.path={twice}"]).data)
    assert b.duplicate_rows == len(a.train) + len(a.validation) + len(a.test) and a.duplicate_rows == 0
    assert a.fingerprint == b.fingerprint  # the same rows were split the same way
    for x, y in ((a.train, b.train), (a.validation, b.validation), (a.test, b.test)):
        np.testing.assert_array_equal(x.user, y.user)
        np.testing.assert_array_equal(x.item, y.item)
    assert "6,000 repeated (user, item) rows dropped (duplicates=keep_last)" in b.description
    # keep_all keeps the copies, but each pair on one side only.
    c = prepare_data(load_config(None, ["data.source=csv", f"data.path={twice}", "data.duplicates=keep_all"]).data)
    assert len(c.train) + len(c.validation) + len(c.test) == 12000
    sides = [set(zip(s.user.tolist(), s.item.tolist())) for s in (c.train, c.validation, c.test)]
    for x, y in itertools.combinations(sides, 2):
        assert not x & y


@pytest.mark.parametrize("keys", [
    [3, 1, 3, 0, 1, 3],
    [-5, 7, -5, 2**40, 7, 0],  # negative and wide: still packs
    [2**62, -(2**62), 5, 5],  # too wide to pack with the row: numpy's stable argsort
    [],
])
def test_stable_argsort_is_numpys_stable_argsort(keys):
    from tfrs_irns.data.duplicates import stable_argsort

    keys = np.array(keys, np.int64)
    assert stable_argsort(keys).tolist() == np.argsort(keys, kind="stable").tolist()
    rng = np.random.default_rng(0)
    many = rng.integers(-50, 50, 10_000)
    assert stable_argsort(many).tolist() == np.argsort(many, kind="stable").tolist()
