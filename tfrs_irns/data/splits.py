"""Train / validation / test splits of an interaction table.

How the held-out interactions are chosen decides what a metric means:

* ``random``: a seeded shuffle, the last ``test_fraction`` is test (the TFRS
  tutorial protocol: seed 42, 80/20). Measures "fill in missing
  interactions".
* ``temporal``: a global time cut, the latest ``test_fraction`` of
  interactions is test. Measures "predict the future"; no test interaction
  is older than a training one.
* ``leave_last_out``: each user's last interaction (ties broken by row
  order) is test; users with a single interaction keep it in train. The
  usual next-item protocol; ``test_fraction`` is not used.
* ``cold_items``: a seeded random ``cold_item_fraction`` of the distinct items
  is held out entirely; the test is every interaction on them, and the warm
  items' interactions are split into train and validation as ``random`` does
  (``test_fraction`` is not used). Measures "embed an item nobody has
  interacted with yet" — only a content tower can.

Validation is carved from the non-test part the same way (a random share,
the latest share, or each user's second-to-last interaction for users with
at least 3), so it never touches test. ``validation_fraction = 0`` gives an
empty validation split. Every split keeps the input's row order and is
deterministic given ``seed``.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from tfrs_irns.data.duplicates import first_of_groups
from tfrs_irns.data.table import Interactions

METHODS = ("random", "temporal", "leave_last_out", "cold_items")


def _tail(order: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(head, tail) of ``order``; the tail holds ``round(fraction * n)`` rows."""
    k = int(round(fraction * len(order)))
    return order[: len(order) - k], order[len(order) - k :]


def _by_time(inter: Interactions, rows: np.ndarray) -> np.ndarray:
    """``rows`` ordered by timestamp, ties by row order (deterministic)."""
    return rows[np.lexsort((rows, inter.timestamp[rows]))]


def _last_per_user(inter: Interactions, rows: np.ndarray, min_count: int) -> np.ndarray:
    """Each user's last row of ``rows`` (by time, then row order), for users
    with at least ``min_count`` rows among ``rows``."""
    if len(rows) == 0:
        return rows
    if inter.user_codes is not None:  # the same grouping without sorting strings
        user = inter.user_codes.codes[rows]
    else:
        _, user = np.unique(inter.user_id[rows], return_inverse=True)
    order = np.lexsort((rows, inter.timestamp[rows], user))
    user_sorted = user[order]
    is_last = np.append(user_sorted[1:] != user_sorted[:-1], True)
    counts = np.bincount(user_sorted)
    last = order[is_last]  # one per user, in user-code order
    return rows[last[counts[user_sorted[is_last]] >= min_count]]


def cold_item_rows(inter: Interactions, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the rows whose item is among a seeded ``fraction`` of the distinct items."""
    coded = inter.coded("item")
    used = np.flatnonzero(coded.used_mask())
    k = int(round(fraction * len(used)))
    cold = np.zeros(len(coded.values), bool)
    if k:
        cold[np.random.default_rng(seed).choice(used, k, replace=False)] = True
    return cold[coded.codes]


def _split_rows(
    inter: Interactions, method: str, test_fraction: float, validation_fraction: float, seed: int,
    cold_item_fraction: float = 0.1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices ``(train, validation, test)`` of ``inter`` by ``method``."""
    n = len(inter)
    rows = np.arange(n)
    if method == "cold_items":
        cold = cold_item_rows(inter, cold_item_fraction, seed)
        test, warm = rows[cold], rows[~cold]
        # The warm rows shuffled, as ``random`` shuffles all rows.
        train, val = _tail(warm[np.random.default_rng(seed).permutation(len(warm))], validation_fraction)
    elif method == "random":
        rng = np.random.default_rng(seed)
        rest, test = _tail(rng.permutation(n), test_fraction)
        # ``rest`` is already shuffled, so its tail is a random share.
        train, val = _tail(rest, validation_fraction)
    elif method == "temporal":
        rest, test = _tail(_by_time(inter, rows), test_fraction)
        train, val = _tail(rest, validation_fraction)
    elif method == "leave_last_out":
        test = _last_per_user(inter, rows, min_count=2)
        rest = np.setdiff1d(rows, test)
        # Second-to-last = the last of the non-test rows; needing 2 of those
        # means 3 in all, so every user with a validation row keeps one in train.
        val = _last_per_user(inter, rest, min_count=2) if validation_fraction > 0 else rows[:0]
        train = np.setdiff1d(rest, val)
    else:
        raise ValueError(f"unknown split method {method!r}; expected one of {', '.join(METHODS)}")
    return train, val, test


def split_interactions(
    inter: Interactions,
    method: str,
    test_fraction: float,
    validation_fraction: float,
    seed: int,
    groups: Optional[np.ndarray] = None,
    cold_item_fraction: float = 0.1,
) -> tuple[Interactions, Interactions, Interactions]:
    """``(train, validation, test)`` of ``inter`` by ``method`` (see module doc).

    ``groups`` (one integer per row, e.g. :func:`~tfrs_irns.data.duplicates.pair_groups`)
    keeps the rows of a group on one side: the groups are split as the
    method splits rows, each represented by its earliest row, and every row
    follows its group. ``cold_item_fraction`` is the ``cold_items`` method's share of items.
    """
    if groups is None:
        train, val, test = _split_rows(inter, method, test_fraction, validation_fraction, seed, cold_item_fraction)
    else:
        groups = np.asarray(groups)
        first = first_of_groups(inter, groups)
        sides = _split_rows(inter.take(first), method, test_fraction, validation_fraction, seed, cold_item_fraction)
        side_of_group = np.zeros(int(groups.max()) + 1 if len(groups) else 0, np.int8)
        for side, picked in enumerate(sides):
            side_of_group[groups[first[picked]]] = side
        side = side_of_group[groups]
        return tuple(inter.take(np.flatnonzero(side == k)) for k in range(3))  # type: ignore[return-value]
    return tuple(inter.take(rows) for rows in _in_row_order(len(inter), (train, val, test)))  # type: ignore[return-value]


def _in_row_order(n: int, sides: tuple[np.ndarray, ...]) -> list[np.ndarray]:
    """Each of ``sides`` (disjoint row indices of ``0..n-1``) sorted: one scatter
    of side labels, then a scan per side, instead of a sort per side."""
    label = np.full(n, len(sides), np.int8)
    for k, rows in enumerate(sides):
        label[rows] = k
    return [np.flatnonzero(label == k) for k in range(len(sides))]
