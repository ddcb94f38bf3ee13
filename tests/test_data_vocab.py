"""Vocabulary: raw ids → indices 1..n in sorted order, 0 = OOV."""

import numpy as np

import tfrs_irns  # noqa: F401  (Keras policy before anything else)
from tfrs_irns.data.vocab import OOV_INDEX, Vocabulary


def test_from_ids_sorted_unique_and_sizes():
    vocab = Vocabulary.from_ids(np.array(["b", "a", "c", "a"]))
    assert vocab.ids.tolist() == ["a", "b", "c"]
    assert len(vocab) == 3
    assert vocab.size == 4  # embedding rows: known ids + OOV


def test_lookup_known_and_unknown():
    vocab = Vocabulary.from_ids(np.array(["u10", "u2", "u1"]))
    # Sorted as strings: u1 < u10 < u2.
    got = vocab.lookup(np.array(["u2", "u1", "nope", "u10", ""]))
    assert got.tolist() == [3, 1, OOV_INDEX, 2, OOV_INDEX]
    assert got.dtype == np.int32


def test_lookup_of_integers_treats_them_as_strings():
    vocab = Vocabulary.from_ids(np.array([3, 1, 2]))
    assert vocab.lookup(np.array([1, 2, 3, 4])).tolist() == [1, 2, 3, 0]
    assert vocab.lookup(np.array(["2"])).tolist() == [2]


def test_id_of_inverts_lookup_and_oov_is_empty():
    raw = np.array(["x", "y", "z"])
    vocab = Vocabulary.from_ids(raw)
    idx = vocab.lookup(raw)
    assert vocab.id_of(idx).tolist() == raw.tolist()
    assert vocab.id_of(np.array([0])).tolist() == [""]


def test_empty_vocabulary_maps_everything_to_oov():
    vocab = Vocabulary.from_ids(np.array([], dtype=str))
    assert len(vocab) == 0 and vocab.size == 1
    assert vocab.lookup(np.array(["a", "b"])).tolist() == [0, 0]


def test_save_load_round_trip(tmp_path):
    vocab = Vocabulary.from_ids(np.array(["Amélie", "42", "a,b", "z"]))
    path = tmp_path / "vocab.json"
    vocab.save(str(path))
    loaded = Vocabulary.load(str(path))
    assert loaded.ids.tolist() == vocab.ids.tolist()
    probe = np.array(["z", "Amélie", "missing", "a,b", "42"])
    assert loaded.lookup(probe).tolist() == vocab.lookup(probe).tolist()
    assert loaded.lookup(probe).tolist()[2] == OOV_INDEX


def test_lookup_in_the_code_space_of_the_vocabulary_equals_the_string_lookup():
    from tfrs_irns.data.table import CodedIds

    ids = np.array(["u3", "u1", "u9", "u1", "u2", "u7"])
    coded = CodedIds.from_strings(ids)
    vocab = Vocabulary.from_ids(None, coded.take(np.array([0, 1, 3])))  # train: u3, u1
    assert vocab.ids.tolist() == ["u1", "u3"]
    other = coded.take(np.array([2, 3, 4, 0]))  # the other rows, the same code space: an integer gather
    assert vocab.lookup(None, other).tolist() == vocab.lookup(other.strings()).tolist() == [0, 1, 0, 2]
    fresh = CodedIds.from_strings(other.strings())  # another code space: searched by string
    assert vocab.lookup(None, fresh).tolist() == [0, 1, 0, 2]
