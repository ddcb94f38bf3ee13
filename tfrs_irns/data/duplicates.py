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


def pair_groups(inter: Interactions) -> np.ndarray:
    """``group[r]``: the same integer for the rows of one (user, item) pair, ``0..G-1``, ``int64 [n]``."""
    user, _ = _codes(inter.user_id, inter.user_codes)
    item, num_items = _codes(inter.item_id, inter.item_codes)
    return np.unique(user * num_items + item, return_inverse=True)[1].reshape(-1)


def first_of_groups(inter: Interactions, group: np.ndarray, last: bool = False) -> np.ndarray:
    """Sorted rows holding each group's earliest copy (by timestamp, then row
    order), or its latest with ``last=True``."""
    rows = np.arange(len(inter))
    order = np.lexsort((rows, inter.timestamp, group))  # by group, then time, then row
    g = group[order]
    edge = np.append(g[1:] != g[:-1], True) if last else np.insert(g[1:] != g[:-1], 0, True)
    return np.sort(order[edge])


def collapse_duplicates(inter: Interactions, policy: str) -> tuple[Interactions, int]:
    """``inter`` with each (user, item) pair kept once by ``policy`` (all
    copies with ``keep_all``), and the number of repeated rows found (rows
    beyond the first of their pair: dropped, or kept with ``keep_all``)."""
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {policy!r}")
    if len(inter) == 0:
        return inter, 0
    group = pair_groups(inter)
    repeats = len(inter) - (int(group.max()) + 1)
    if policy == "keep_all" or repeats == 0:
        return inter, repeats
    return inter.take(first_of_groups(inter, group, last=policy == "keep_last")), repeats
