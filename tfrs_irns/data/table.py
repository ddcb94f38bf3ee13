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
class CodedIds:
    """String ids as integer codes into their sorted distinct values.

    Sorting, grouping and counting millions of Python-free ``<U`` strings is
    slow in numpy (``np.unique`` sorts the strings); the same work on int32
    codes is a ``bincount``. Fast sources (pyarrow CSV, Parquet) hand these
    over beside the string column, ``values[codes]`` being that column, so
    splits and vocabularies never sort strings. ``values`` is sorted and
    distinct; a code may be unused once rows are taken away.
    """

    values: np.ndarray  # str, sorted, distinct
    codes: np.ndarray  # int32 index into values, one per row

    @classmethod
    def from_strings(cls, ids: np.ndarray) -> "CodedIds":
        values, codes = np.unique(np.asarray(ids).astype(str), return_inverse=True)
        return cls(values=values, codes=codes.reshape(-1).astype(np.int32))

    def strings(self) -> np.ndarray:
        return self.values[self.codes]

    def take(self, index: np.ndarray) -> "CodedIds":
        return CodedIds(values=self.values, codes=self.codes[index])

    def used(self) -> np.ndarray:
        """The distinct ids that occur in ``codes``, sorted."""
        return self.values[np.bincount(self.codes, minlength=len(self.values)) > 0]


@dataclass(frozen=True)
class Interactions:
    """Parallel arrays, one row per interaction.

    ``user_id`` and ``item_id`` are numpy arrays of ``str`` (dtype ``object``
    or ``<U``), ``timestamp`` is ``int64`` seconds, ``rating`` is ``float32``
    or ``None`` when the source has no ratings. ``user_codes`` /
    ``item_codes``, when a source provides them, are the same ids as
    :class:`CodedIds` (a speed-up for large tables, never a different answer).
    """

    user_id: np.ndarray
    item_id: np.ndarray
    timestamp: np.ndarray
    rating: Optional[np.ndarray] = None
    user_codes: Optional[CodedIds] = None
    item_codes: Optional[CodedIds] = None

    def __len__(self) -> int:
        return int(self.user_id.shape[0])

    def take(self, index: np.ndarray) -> "Interactions":
        """Rows ``index`` (an int array or a boolean mask), as a new table."""
        return Interactions(
            user_id=self.user_id[index],
            item_id=self.item_id[index],
            timestamp=self.timestamp[index],
            rating=None if self.rating is None else self.rating[index],
            user_codes=None if self.user_codes is None else self.user_codes.take(index),
            item_codes=None if self.item_codes is None else self.item_codes.take(index),
        )


@dataclass(frozen=True)
class ItemTable:
    """Item metadata: ``item_id`` (str), optional ``title`` (str) and
    ``genres`` (str, genres joined by ``|``; empty string when unknown), and
    ``columns``: further item columns by name (str, ``data.csv.item_columns``)."""

    item_id: np.ndarray
    title: Optional[np.ndarray] = None
    genres: Optional[np.ndarray] = None
    columns: Optional[dict[str, np.ndarray]] = None

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
