"""The ``cold_users`` split: how well does the model serve someone it never trained on?

An ID tower cannot embed a user who signed up after training: it answers
with the OOV row, the mean user's list. An activity (history) tower can, from
the few items the newcomer touched. This protocol measures exactly that:

* a seeded random share ``cold_fraction`` of the users (at least one, never
  all) is held out: none of their interactions reaches training or validation;
* each cold user's interactions, ordered by time (ties by row order), are cut
  in two (under ``data.duplicates: keep_all`` by pairs, every copy with its
  pair): the earlier ``floor(n / 2)`` are the *history* handed to the model at
  evaluation, the later ``ceil(n / 2)`` are the *test* (a cold user with one
  interaction has an empty history: the model must fall back on the mean);
* the other (warm) users' interactions are train, and a random
  ``validation_fraction`` of them validation (as the ``random`` split).

Items that occur only in cold users' interactions are not in the training
vocabulary: in a history they are unknown (OOV, dropped), as a target they
are misses — the same rule as for any item unseen in training.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from tfrs_irns.data.duplicates import first_of_groups
from tfrs_irns.data.splits import split_interactions
from tfrs_irns.data.table import Interactions
from tfrs_irns.errors import DataError


def _user_codes(inter: Interactions) -> np.ndarray:
    if inter.user_codes is not None:
        return inter.user_codes.codes
    return np.unique(np.asarray(inter.user_id).astype(str), return_inverse=True)[1].reshape(-1)


def cold_user_rows(inter: Interactions, cold_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the rows of the held-out (cold) users."""
    codes = _user_codes(inter)
    present = np.flatnonzero(np.bincount(codes) > 0) if len(codes) else codes
    if len(present) < 2:
        raise DataError(
            f"split=cold_users needs at least 2 users (one to train on, one to hold out), the data has "
            f"{len(present)}",
            arguments=["split"],
        )
    count = min(max(1, int(round(cold_fraction * len(present)))), len(present) - 1)
    cold = np.random.default_rng(seed).choice(present, count, replace=False)
    return np.isin(codes, cold)


def _earlier_half(inter: Interactions, rows: np.ndarray) -> np.ndarray:
    """Boolean mask over ``rows``: the earlier ``floor(n / 2)`` of each user's rows by (time, row)."""
    if len(rows) == 0:
        return np.zeros(0, bool)
    user = _user_codes(inter)[rows]
    order = np.lexsort((rows, inter.timestamp[rows], user))
    user_sorted = user[order]
    starts = np.flatnonzero(np.append(True, user_sorted[1:] != user_sorted[:-1]))
    sizes = np.diff(np.append(starts, len(order)))
    rank = np.arange(len(order)) - np.repeat(starts, sizes)  # 0-based place in the user's timeline
    earlier = np.zeros(len(rows), bool)
    earlier[order] = rank < np.repeat(sizes // 2, sizes)
    return earlier


def split_cold_users(
    inter: Interactions,
    cold_fraction: float,
    validation_fraction: float,
    seed: int,
    groups: Optional[np.ndarray] = None,
) -> tuple[Interactions, Interactions, Interactions, Interactions]:
    """``(train, validation, test, history)`` of the ``cold_users`` protocol (see the module doc).

    ``groups`` (one integer per row, see :func:`~tfrs_irns.data.duplicates.pair_groups`)
    keeps the copies of a pair on one side: of train/validation for a warm
    user, of history/test for a cold one (each pair then counts once in the
    cut, at its earliest copy), so no test pair is also in the history.
    """
    cold = cold_user_rows(inter, cold_fraction, seed)
    warm_rows = np.flatnonzero(~cold)
    warm = inter.take(warm_rows)
    # The random split's own code, its "test" share being the validation.
    train, _, validation = split_interactions(
        warm, "random", validation_fraction, 0.0, seed, groups=None if groups is None else np.asarray(groups)[warm_rows]
    ) if validation_fraction > 0 else (warm, warm.take(np.zeros(0, np.int64)), warm.take(np.zeros(0, np.int64)))
    cold_rows = np.flatnonzero(cold)
    if groups is None:
        earlier = _earlier_half(inter, cold_rows)
    else:
        group = np.asarray(groups)[cold_rows]
        first = first_of_groups(inter.take(cold_rows), group)
        earlier_group = np.zeros(int(group.max()) + 1 if len(group) else 0, bool)
        earlier_group[group[first]] = _earlier_half(inter, cold_rows[first])
        earlier = earlier_group[group]
    return train, validation, inter.take(cold_rows[~earlier]), inter.take(cold_rows[earlier])
