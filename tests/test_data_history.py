"""Users' timelines (tfrs_irns/data/history.py): the no-leakage rule of each
split on a hand-built table with timestamps and ties, O(interactions) memory,
and the snapshot copy."""

import dataclasses

import numpy as np
import pytest

import tfrs_irns  # noqa: F401  (Keras 2 before tensorflow)
import tensorflow as tf

from tfrs_irns.config import Config
from tfrs_irns.data.history import (
    WINDOW_RULES, UserHistory, build_history, history_of, load_history, offsets_of, save_history,
)
from tfrs_irns.data.prepare import prepare_from_raw
from tfrs_irns.data.table import Interactions, ItemTable, RawDataset
from tfrs_irns.runs.build import build_towers, pipeline_extras, user_history

from helpers import encoded_split

LENGTH = 3


def _raw():
    """6 users × 7 interactions; every user has two rows at the same time (a tie)."""
    users, items, times = [], [], []
    for u in range(6):
        for k in range(7):
            users.append(f"u{u}")
            items.append(f"i{(u * 3 + k) % 11}")
            times.append(100 * u + (k if k != 4 else 3))  # k=3 and k=4 tie
    inter = Interactions(np.array(users), np.array(items), np.array(times, np.int64))
    return RawDataset(inter, ItemTable(np.array([f"i{i}" for i in range(11)])))


def _config(split):
    config = Config()
    # The data and history sections are frozen parameter objects: changed copies.
    config.data = dataclasses.replace(config.data, split=split, test_fraction=0.2, validation_fraction=0.1)
    config.model.user_features = ["history"]
    config.model.history = dataclasses.replace(config.model.history, length=LENGTH)
    config.model.embedding_dim = 4
    return config


def _oracle(data, row, rule):
    """Brute force over the training split: the window example ``row`` may see."""
    t = data.train
    mine = [r for r in range(len(t)) if t.user[r] == t.user[row]]
    line = sorted(mine, key=lambda r: (t.timestamp[r], r))  # time, ties by row order
    if rule == "before":
        kept = [r for r in line if (t.timestamp[r], r) < (t.timestamp[row], row)]
    else:
        kept = [r for r in line if r != row]
    return [int(t.item[r]) for r in kept][-LENGTH:]


@pytest.mark.parametrize("split", ["random", "temporal", "leave_last_out", "cold_items"])
def test_each_training_example_sees_only_what_its_split_allows(split):
    config = _config(split)
    data = prepare_from_raw(_raw(), config.data)
    history = user_history(config, data)
    tower, _ = build_towers(config, data, history)
    assert tower.window == WINDOW_RULES[split]
    items, mask = tower.windows(tf.constant(data.train.user), tf.constant(history.positions))
    items, mask = items.numpy(), mask.numpy()
    for row in range(len(data.train)):
        got = items[row][mask[row]].tolist()
        assert got == _oracle(data, row, tower.window), (split, row)
    # Only training interactions are in the table: never a validation or test row.
    np.testing.assert_array_equal(np.sort(history.items), np.sort(data.train.item))
    if tower.window == "before":  # time separates train from test: no window item is later than its example
        t = data.train
        where = {(int(t.user[r]), int(t.item[r])): int(t.timestamp[r]) for r in range(len(t))}
        for row in range(len(t)):
            for item in items[row][mask[row]]:
                assert where[(int(t.user[row]), int(item))] <= t.timestamp[row]


def test_evaluation_history_is_every_training_interaction_most_recent_last():
    config = _config("temporal")
    data = prepare_from_raw(_raw(), config.data)
    history = history_of(data)
    t = data.train
    for user in range(1, data.num_users + 1):
        rows = sorted(np.flatnonzero(t.user == user), key=lambda r: (t.timestamp[r], r))
        assert history.timeline(user).tolist() == [int(t.item[r]) for r in rows]
    tower, _ = build_towers(config, data, history)
    items, mask = tower.windows(tf.range(data.num_users + 1))
    assert items.numpy()[1][mask.numpy()[1]].tolist() == history.timeline(1).tolist()[-LENGTH:]


def test_memory_is_o_interactions_not_examples_times_length():
    config = _config("random")
    data = prepare_from_raw(_raw(), config.data)
    history = user_history(config, data)
    n = len(data.train)
    assert history.items.shape == (n,) and history.positions.shape == (n,)
    assert history.offsets.shape == (data.num_users + 2,)
    tower, _ = build_towers(config, data, history)
    stored = {w.name.split("/")[-1].split(":")[0]: w.shape.num_elements() for w in tower.non_trainable_weights}
    assert stored == {"history_offsets": data.num_users + 2, "history_items": n}
    # The pipeline carries one int per example, not a window.
    assert {k: v.shape for k, v in pipeline_extras(history).items()} == {"history_position": (n,)}
    assert pipeline_extras(None) == {}


def test_build_history_sorts_by_user_time_then_row():
    hand = encoded_split([2, 1, 2, 1], [5, 6, 7, 8])
    hand = type(hand)(hand.user, hand.item, np.array([9, 4, 9, 1], np.int64))
    h = build_history(hand, num_rows=3)
    assert h.offsets.tolist() == [0, 0, 2, 4]
    assert h.items.tolist() == [8, 6, 5, 7]  # user 1: t=1, t=4; user 2: t=9 tie → row order
    assert h.positions.tolist() == [2, 1, 3, 0]
    with pytest.raises(ValueError, match="user indices must be in"):
        build_history(hand, num_rows=2)


def test_saved_table_loads_back_without_positions(tmp_path):
    data = prepare_from_raw(_raw(), _config("random").data)
    history = history_of(data)
    assert load_history(str(tmp_path)) is None
    save_history(history, str(tmp_path))
    again = load_history(str(tmp_path))
    np.testing.assert_array_equal(again.offsets, history.offsets)
    np.testing.assert_array_equal(again.items, history.items)
    assert again.positions.size == 0


def test_offsets_past_2_31_do_not_wrap():
    # Counts whose sum passes 2^31: the offsets stay exact (int32 would wrap negative).
    big = 2**31 + 5
    offsets = offsets_of(np.array([0, big, 3, 2**33]))
    assert offsets.dtype == np.int64
    assert offsets.tolist() == [0, 0, big, big + 3, big + 3 + 2**33]
    # A timeline beyond 2^31 in a synthetic table: zero-stride items allocate one int, not 8 GB.
    items = np.lib.stride_tricks.as_strided(np.array([7], np.int32), shape=(big + 3,), strides=(0,))
    history = UserHistory(offsets=offsets[:4], items=items, positions=np.array([big + 1], np.int64))
    assert history.num_rows == 3
    assert history.timeline(2).tolist() == [7, 7, 7]
    assert history.timeline(0).size == 0


def test_built_and_loaded_tables_are_int64(tmp_path):
    hand = encoded_split([2, 1, 2, 1], [5, 6, 7, 8])
    h = build_history(hand, num_rows=3)
    assert h.offsets.dtype == np.int64 and h.positions.dtype == np.int64
    # An older run's int32 table loads as int64.
    np.savez(tmp_path / "history.npz", offsets=h.offsets.astype(np.int32), items=h.items)
    again = load_history(str(tmp_path))
    assert again.offsets.dtype == np.int64 and again.positions.dtype == np.int64
