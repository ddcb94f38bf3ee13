"""A run's data snapshot: saved, loaded back identical, without the data."""

import json

import numpy as np
import pytest

from tfrs_irns.config import load_config
from tfrs_irns.data.prepare import Catalogue, PreparedData, data_fingerprint, prepare_data, seen_items
from tfrs_irns.data.snapshot import has_snapshot, load_seen, load_snapshot, save_snapshot, saved_fingerprint, saved_vocabularies
from tfrs_irns.data.table import Interactions

from helpers import TINY_OVERRIDES


@pytest.fixture(scope="module")
def data():
    return prepare_data(load_config("configs/quickstart.yaml", TINY_OVERRIDES).data)


def _with_catalogue(data: PreparedData, **changes) -> PreparedData:
    """``data`` with some of its catalogue's fields replaced."""
    import dataclasses

    return dataclasses.replace(data, catalogue=dataclasses.replace(data.catalogue, **changes))


def test_save_then_load_gives_the_same_vocabularies_and_item_table(data, tmp_path):
    save_snapshot(data, str(tmp_path / "vocab"))
    assert has_snapshot(str(tmp_path / "vocab"))
    back = load_snapshot(str(tmp_path / "vocab"))
    np.testing.assert_array_equal(back.user_vocab.ids, data.user_vocab.ids)
    np.testing.assert_array_equal(back.item_vocab.ids, data.item_vocab.ids)
    np.testing.assert_array_equal(back.item_counts, data.item_counts)
    np.testing.assert_array_equal(back.item_titles, data.item_titles)
    np.testing.assert_array_equal(back.item_genres, data.item_genres)
    assert back.genre_names == data.genre_names and back.fingerprint == data.fingerprint
    assert isinstance(back, Catalogue) and not hasattr(back, "train")  # the rows stay with the data
    assert saved_fingerprint(str(tmp_path / "vocab")) == data.fingerprint
    users, items = saved_vocabularies(str(tmp_path / "vocab"))
    np.testing.assert_array_equal(users.ids, data.user_vocab.ids)
    info = json.loads((tmp_path / "vocab" / "data.json").read_text())
    assert info["num_train"] == len(data.train)
    assert sorted(p.name for p in (tmp_path / "vocab").iterdir()) == [
        "data.json", "items.json", "items.npz", "seen.npz", "users.json"
    ]
    # Each user's training + validation items, so that `tfrs-irns export --run` (no data) still excludes them.
    indptr, items = load_seen(str(tmp_path / "vocab"))
    want_indptr, want_items = seen_items(data)
    np.testing.assert_array_equal(indptr, want_indptr)
    np.testing.assert_array_equal(items, want_items)
    assert load_seen(str(tmp_path / "nowhere")) is None  # a run from before seen items were kept


def test_a_snapshot_without_genres_loads_none(data, tmp_path):
    save_snapshot(_with_catalogue(data, item_genres=None, genre_names=[]), str(tmp_path))
    assert load_snapshot(str(tmp_path)).item_genres is None


def test_a_truncated_item_table_is_refused(data, tmp_path):
    save_snapshot(_with_catalogue(data, item_counts=data.item_counts[:-1]), str(tmp_path))
    with pytest.raises(ValueError, match=r"items.npz has \d+ counts rows, expected \d+"):
        load_snapshot(str(tmp_path))


def test_the_saved_vocabularies_encode_changed_data(tmp_path):
    cfg = load_config("configs/quickstart.yaml", TINY_OVERRIDES).data
    first = prepare_data(cfg)
    vocab = (first.user_vocab, first.item_vocab)
    again = prepare_data(cfg, vocabularies=vocab)
    np.testing.assert_array_equal(again.train.user, first.train.user)
    assert again.fingerprint == first.fingerprint


def _inter(users, items, times, rating=None):
    return Interactions(np.array(users), np.array(items), np.array(times, np.int64), rating)


def test_the_fingerprint_sees_every_column_and_the_split_settings():
    cfg = load_config(None, []).data
    base = data_fingerprint(_inter(["a", "b"], ["x", "y"], [1, 2]), cfg)
    assert base == data_fingerprint(_inter(["a", "b"], ["x", "y"], [1, 2]), cfg)
    changed = [
        _inter(["a", "c"], ["x", "y"], [1, 2]),  # a renamed user
        _inter(["a", "b"], ["x", "z"], [1, 2]),
        _inter(["a", "b"], ["x", "y"], [1, 3]),
        _inter(["b", "a"], ["y", "x"], [2, 1]),  # row order breaks time ties
        _inter(["ab", ""], ["x", "y"], [1, 2]),  # the same characters, cut elsewhere
        _inter(["a", "b"], ["x", "y"], [1, 2], np.array([1.0, 2.0], np.float32)),
    ]
    assert len({base} | {data_fingerprint(i, cfg) for i in changed}) == len(changed) + 1
    import dataclasses

    for change in (dict(seed=1), dict(split="temporal"), dict(test_fraction=0.3), dict(validation_fraction=0.2)):
        assert data_fingerprint(_inter(["a", "b"], ["x", "y"], [1, 2]), dataclasses.replace(cfg, **change)) != base
