"""The one interaction table every data source produces.

A recommender dataset here is two tables: interactions (who touched what,
when, optionally how much they liked it) and items (id → optional title and
genres). Raw ids are kept as strings so every source looks alike; integer
indices are assigned later by :mod:`tfrs_irns.data.vocab` from the training
split only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class Interactions:
    """Parallel arrays, one row per interaction.

    ``user_id`` and ``item_id`` are numpy arrays of ``str`` (dtype ``object``
    or ``<U``), ``timestamp`` is ``int64`` seconds, ``rating`` is ``float32``
    or ``None`` when the source has no ratings.
    """

    user_id: np.ndarray
    item_id: np.ndarray
    timestamp: np.ndarray
    rating: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return int(self.user_id.shape[0])

    def take(self, index: np.ndarray) -> "Interactions":
        """Rows ``index`` (an int array or a boolean mask), as a new table."""
        return Interactions(
            user_id=self.user_id[index],
            item_id=self.item_id[index],
            timestamp=self.timestamp[index],
            rating=None if self.rating is None else self.rating[index],
        )


@dataclass(frozen=True)
class ItemTable:
    """Item metadata: ``item_id`` (str), optional ``title`` (str) and
    ``genres`` (str, genres joined by ``|``; empty string when unknown)."""

    item_id: np.ndarray
    title: Optional[np.ndarray] = None
    genres: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return int(self.item_id.shape[0])


@dataclass(frozen=True)
class RawDataset:
    """What a source returns: all interactions plus the item table.

    ``skipped_rows`` counts malformed input rows dropped under
    ``data.skip_bad_rows: true`` (always 0 otherwise); ``duplicate_rows``
    the repeated (user, item) rows found (see :mod:`tfrs_irns.data.duplicates`).
    """

    interactions: Interactions
    items: ItemTable
    description: str = ""
    skipped_rows: int = 0
    duplicate_rows: int = 0
