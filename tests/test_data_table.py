"""The interaction table: ids as strings or as codes only, built into strings only when read."""

import dataclasses

import numpy as np
import pytest

from tfrs_irns.data.table import CodedIds, Interactions

USERS = np.array(["b", "a", "b", "c"])
ITEMS = np.array(["x", "y", "x", "z"])
TIMES = np.arange(4, dtype=np.int64)


def _coded_only() -> Interactions:
    return Interactions(None, None, TIMES, user_codes=CodedIds.from_strings(USERS),
                        item_codes=CodedIds.from_strings(ITEMS))


def test_codes_only_table_builds_strings_only_when_read():
    inter = _coded_only()
    assert inter.__dict__["user_id"] is None  # nothing built yet
    half = inter.take(np.array([0, 3]))
    assert half.__dict__["user_id"] is None and len(half) == 2
    assert half.user_id.tolist() == ["b", "c"] and half.item_id.tolist() == ["x", "z"]
    assert inter.user_id.tolist() == USERS.tolist()


def test_coded_gives_the_source_codes_or_codes_made_once_from_strings():
    coded = _coded_only()
    assert coded.coded("user") is coded.user_codes
    plain = Interactions(USERS, ITEMS, TIMES)
    made = plain.coded("user")
    assert made is plain.coded("user")  # made once
    assert made.values.tolist() == ["a", "b", "c"] and made.strings().tolist() == USERS.tolist()
    # The made codes follow the rows of a take (no second string sort).
    taken = plain.take(np.array([2, 3]))
    assert taken.__dict__["_coded"]["user"].strings().tolist() == ["b", "c"]
    assert taken.coded("user").used().tolist() == ["b", "c"]


def test_dataclass_replace_keeps_the_strings_when_codes_are_dropped():
    stripped = dataclasses.replace(_coded_only(), user_codes=None, item_codes=None)
    assert stripped.user_id.tolist() == USERS.tolist() and stripped.user_codes is None


def test_a_table_needs_ids_of_either_kind_and_timestamps():
    with pytest.raises(ValueError, match="user_id or user_codes"):
        Interactions(None, ITEMS, TIMES)
    with pytest.raises(ValueError, match="timestamp"):
        Interactions(USERS, ITEMS)


def test_used_mask_marks_the_values_still_in_use():
    coded = CodedIds.from_strings(USERS).take(np.array([1, 3]))
    assert coded.used_mask().tolist() == [True, False, True] and coded.used().tolist() == ["a", "c"]
