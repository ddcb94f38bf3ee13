"""Repeated (user, item) pairs: collapse them, or keep every copy on one side of the split.

Logs often hold the same interaction more than once (a movie rated twice, an
item clicked every day). For retrieval the pair is one fact — "this user
wants this item" — and two copies of it on both sides of a random split are
a leak: the model is tested on pairs it trained on (on a CSV with every row
twice, test hit_rate@100 doubled). So by default a pair is kept once, its
latest copy (the user's current opinion, e.g. their last rating) —
``keep_last``; ``keep_first`` keeps the earliest. ``keep_all`` keeps every
copy (repeats weigh more in training), and :func:`pair_groups` lets the
splits move all copies of a pair together, so none ever straddles the split.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from tfrs_irns.data.table import CodedIds, Interactions

POLICIES = ("keep_last", "keep_first", "keep_all")


def _codes(ids: np.ndarray, coded: Optional[CodedIds]) -> tuple[np.ndarray, int]:
    """Integer codes of ``ids`` and how many distinct codes there can be (coded ids need no string sort)."""
    if coded is None:
        coded = CodedIds.from_strings(ids)
    return coded.codes.astype(np.int64), max(len(coded.values), 1)


def _pair_keys(inter: Interactions) -> np.ndarray:
    """One int64 per row, equal for the rows of one (user, item) pair."""
    user, _ = _codes(inter.user_id, inter.user_codes)
    item, num_items = _codes(inter.item_id, inter.item_codes)
    return user * num_items + item


def pair_groups(inter: Interactions) -> np.ndarray:
    """``group[r]``: the same integer for the rows of one (user, item) pair, ``0..G-1``, ``int64 [n]``."""
    return np.unique(_pair_keys(inter), return_inverse=True)[1].reshape(-1)


def _pick(order: np.ndarray, starts: np.ndarray, timestamp: np.ndarray, last: bool) -> np.ndarray:
    """Per group of ``order`` (rows grouped, in row order within a group, groups
    beginning at ``starts``): the row with the earliest time (the first such row),
    or with ``last`` the latest time (the last such row). Sorted."""
    t = timestamp[order]
    reduce = np.maximum if last else np.minimum
    best = np.repeat(reduce.reduceat(t, starts), np.diff(np.append(starts, len(t))))
    hits = np.flatnonzero(t == best)
    group = np.searchsorted(starts, hits, side="right")  # 1-based group of each hit
    edge = np.append(group[1:] != group[:-1], True) if last else np.insert(group[1:] != group[:-1], 0, True)
    return np.sort(order[hits[edge]])


def _grouped(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ordered by key (a stable sort: row order within a key) and where each key starts."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.insert(sorted_keys[1:] != sorted_keys[:-1], 0, True))
    return order, starts


def first_of_groups(inter: Interactions, group: np.ndarray, last: bool = False) -> np.ndarray:
    """Sorted rows holding each group's earliest copy (by timestamp, then row
    order), or its latest with ``last=True``. ``group`` is any integer per row."""
    if len(group) == 0:
        return np.zeros(0, np.int64)
    order, starts = _grouped(np.asarray(group))
    return _pick(order, starts, np.asarray(inter.timestamp), last)


def collapse_duplicates(inter: Interactions, policy: str) -> tuple[Interactions, int]:
    """``inter`` with each (user, item) pair kept once by ``policy`` (all
    copies with ``keep_all``), and the number of repeated rows found (rows
    beyond the first of their pair: dropped, or kept with ``keep_all``)."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    if len(inter) == 0:
        return inter, 0
    # One stable sort of integer keys serves the count and the choice (no string sort, no lexsort).
    order, starts = _grouped(_pair_keys(inter))
    repeats = len(inter) - len(starts)
    if policy == "keep_all" or repeats == 0:
        return inter, repeats
    return inter.take(_pick(order, starts, np.asarray(inter.timestamp), last=policy == "keep_last")), repeats
