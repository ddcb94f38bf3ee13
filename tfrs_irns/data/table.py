"""The one interaction table every data source produces.

A recommender dataset here is two tables: interactions (who touched what,
when, optionally how much they liked it) and items (id → optional title and
genres). Raw ids are kept as strings so every source looks alike; integer
indices are assigned later by :mod:`tfrs_irns.data.vocab` from the training
split only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Optional

import numpy as np


@dataclass(frozen=True)
class CodedIds:
    """String ids as integer codes into their sorted distinct values.

    Sorting, grouping and counting millions of Python-free ``<U`` strings is
    slow in numpy (``np.unique`` sorts the strings); the same work on int32
    codes is a ``bincount``. Fast sources (pyarrow CSV, Parquet) hand over
    only these, ``values[codes]`` being the column, so duplicates, splits,
    vocabularies and the summary never sort, compare or even build per-row
    strings. ``values`` is sorted and distinct; a code may be unused once rows
    are taken away.
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

    @cached_property
    def _used(self) -> np.ndarray:
        mask = np.zeros(len(self.values), bool)
        mask[self.codes] = True  # a scatter: cheaper than counting with bincount
        mask.flags.writeable = False  # shared by every caller
        return mask

    def used_mask(self) -> np.ndarray:
        """``mask[v]``: whether ``values[v]`` occurs in ``codes`` (computed once per object)."""
        return self._used

    def used(self) -> np.ndarray:
        """The distinct ids that occur in ``codes``, sorted."""
        return self.values[self.used_mask()]


class _Ids:
    """An id column of :class:`Interactions`: given as strings, or built from
    the side's :class:`CodedIds` the first time someone reads it (the fast
    sources give codes only; most pipelines never need per-row strings)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.codes = name, name.replace("_id", "_codes")

    def __get__(self, obj: Any, owner: Optional[type] = None) -> np.ndarray:
        if obj is None:
            raise AttributeError(self.name)  # no class-level default: the dataclass field stays required
        value = obj.__dict__[self.name]
        if value is None:
            value = obj.__dict__[self.codes].strings()
            obj.__dict__[self.name] = value
        return value

    def __set__(self, obj: Any, value: Optional[np.ndarray]) -> None:
        obj.__dict__[self.name] = value


@dataclass(frozen=True)
class Interactions:
    """Parallel arrays, one row per interaction.

    ``user_id`` and ``item_id`` are numpy arrays of ``str`` (dtype ``object``
    or ``<U``), ``timestamp`` is ``int64`` seconds, ``rating`` is ``float32``
    or ``None`` when the source has no ratings. ``user_codes`` /
    ``item_codes``, when a source provides them, are the same ids as
    :class:`CodedIds`; such a source may pass ``user_id=None`` (and
    ``item_id=None``), and the strings are then built only if read.
    Library code reads ids through :meth:`coded`, which never builds them.
    """

    user_id: np.ndarray = _Ids()  # type: ignore[assignment]
    item_id: np.ndarray = _Ids()  # type: ignore[assignment]
    timestamp: np.ndarray = None  # type: ignore[assignment]
    rating: Optional[np.ndarray] = None
    user_codes: Optional[CodedIds] = None
    item_codes: Optional[CodedIds] = None

    def __post_init__(self) -> None:
        for side in ("user", "item"):
            if self.__dict__[f"{side}_id"] is None and getattr(self, f"{side}_codes") is None:
                raise ValueError(f"{side}_id or {side}_codes must be given")
        if self.timestamp is None:
            raise ValueError("timestamp must be given")

    def __len__(self) -> int:
        return int(self.timestamp.shape[0])

    def coded(self, side: str) -> CodedIds:
        """The ``side`` (``"user"`` or ``"item"``) ids as :class:`CodedIds`:
        the source's codes, or codes made once from the strings (and kept)."""
        codes = getattr(self, f"{side}_codes")
        if codes is None:
            cache = self.__dict__.setdefault("_coded", {})
            if side not in cache:
                cache[side] = CodedIds.from_strings(getattr(self, f"{side}_id"))
            codes = cache[side]
        return codes

    def take(self, index: np.ndarray) -> "Interactions":
        """Rows ``index`` (an int array or a boolean mask), as a new table."""
        pick = lambda a: None if a is None else a[index]  # noqa: E731
        taken = Interactions(
            user_id=pick(self.__dict__["user_id"]),
            item_id=pick(self.__dict__["item_id"]),
            timestamp=self.timestamp[index],
            rating=pick(self.rating),
            user_codes=None if self.user_codes is None else self.user_codes.take(index),
            item_codes=None if self.item_codes is None else self.item_codes.take(index),
        )
        if "_coded" in self.__dict__:  # codes made from strings follow the rows (no second string sort)
            taken.__dict__["_coded"] = {side: c.take(index) for side, c in self.__dict__["_coded"].items()}
        return taken


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
