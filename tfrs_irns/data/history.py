"""Each user's interaction timeline as one compact table, for activity (history) towers.

A history tower embeds a user by the items they touched. Giving every
training example its own copy of a 50-item window would cost O(examples ×
length) memory (5 GB of int32 for 25M interactions); instead all windows are
slices of one table, in CSR form:

* ``items``: every training item index, sorted by (user, time, row order),
  then each cold user's history (``data.split: cold_users``) the same way;
* ``offsets``: user index ``u``'s timeline is ``items[offsets[u]:offsets[u + 1]]``,
  oldest first (user 0, the OOV bucket, has an empty one);
* ``positions``: training example ``r``'s own place in ``items``.

Memory is O(interactions + users). The tower stores ``offsets`` and ``items``
and cuts each window in-graph
(:class:`~tfrs_irns.layers.history.HistoryQueryTower`); the training pipeline
carries each example's position. Which part of the timeline an example may
see (the no-leakage rule) is the tower's ``window`` argument:

* ``"before"`` (``temporal``, ``leave_last_out``, ``cold_users``): the
  ``length`` interactions strictly before the example (ties by row order);
* ``"others"`` (``random`` and ``cold_items``, where time does not separate train from test): the
  ``length`` most recent of the user's *other* training interactions;
* at evaluation and serving, a user's window is the ``length`` most recent
  entries of their whole timeline (all training interactions; a cold user's
  earlier half).

The positive item of an example is never in its own window.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from tfrs_irns._files import atomic_open
from tfrs_irns.data.prepare import EncodedSplit, PreparedData

#: The file a run's data snapshot keeps the table in (``<run>/vocab/history.npz``).
HISTORY_FILE = "history.npz"
#: Window rule per ``data.split`` (see the module doc).
WINDOW_RULES = {
    "random": "others", "cold_items": "others", "temporal": "before", "leave_last_out": "before", "cold_users": "before"
}


@dataclass(frozen=True)
class UserHistory:
    """Per-user timelines in CSR form (see the module doc)."""

    offsets: np.ndarray  # int64 [num_rows + 1]: they count interactions, which can pass 2^31
    items: np.ndarray  # int32 [num training interactions + cold history] (item indices)
    positions: np.ndarray  # int64 [num training examples]; empty when loaded from a snapshot

    @property
    def num_rows(self) -> int:
        """User indices the table covers (OOV 0, known users, then cold users)."""
        return int(self.offsets.shape[0]) - 1

    def timeline(self, user: int) -> np.ndarray:
        """User index ``user``'s item indices, oldest first."""
        return self.items[self.offsets[user] : self.offsets[user + 1]]


def build_history(train: EncodedSplit, num_rows: int, extra: Optional[EncodedSplit] = None) -> UserHistory:
    """The table of ``train`` (plus ``extra``, e.g. cold users' histories) over user indices ``0..num_rows-1``."""
    parts = [train] if extra is None or len(extra) == 0 else [train, extra]
    users = np.concatenate([p.user for p in parts]).astype(np.int64)
    if len(users) and (users.min() < 0 or users.max() >= num_rows):
        raise ValueError(f"user indices must be in [0, {num_rows}), got {users.min()}..{users.max()}")
    times = np.concatenate([p.timestamp for p in parts])
    items = np.concatenate([p.item for p in parts]).astype(np.int32)
    rows = np.arange(len(users))
    order = np.lexsort((rows, times, users))  # by user, then time, ties by row order
    positions = np.empty(len(users), np.int64)
    positions[order] = np.arange(len(users), dtype=np.int64)
    counts = np.bincount(users, minlength=num_rows)
    return UserHistory(offsets=offsets_of(counts), items=items[order], positions=positions[: len(train)])


def offsets_of(counts: np.ndarray) -> np.ndarray:
    """CSR offsets (int64 ``[len(counts) + 1]``) of per-user interaction counts: int64 so that
    a table of more than 2^31 interactions does not wrap."""
    return np.concatenate([[0], np.cumsum(np.asarray(counts, np.int64))]).astype(np.int64)


def history_of(data: PreparedData) -> UserHistory:
    """The table a history tower trained on ``data`` uses: training
    interactions, then the cold users' histories."""
    return build_history(data.train, data.num_query_users + 1, data.cold_history)


def save_history(history: UserHistory, folder: str) -> None:
    """Keep the table in a run's snapshot folder: an export rebuilds the tower without the data."""
    os.makedirs(folder, exist_ok=True)
    with atomic_open(os.path.join(folder, HISTORY_FILE), "wb") as fh:
        np.savez(fh, offsets=history.offsets, items=history.items)


def load_history(folder: str) -> Optional[UserHistory]:
    """The table :func:`save_history` kept in ``folder`` (no positions), or None."""
    path = os.path.join(folder, HISTORY_FILE)
    if not os.path.isfile(path):
        return None
    with np.load(path) as saved:
        # int64 whatever was saved (older runs kept int32 offsets).
        return UserHistory(
            offsets=np.asarray(saved["offsets"], np.int64), items=saved["items"], positions=np.zeros(0, np.int64)
        )
