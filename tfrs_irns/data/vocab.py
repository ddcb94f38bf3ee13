"""Raw string ids → contiguous integer indices, built from training data only.

Index 0 is the out-of-vocabulary (OOV) bucket: ids never seen in training
(a new user at serving time, a test item nobody trained on) land there, so
lookups never fail. Known ids get 1..n in sorted order, which makes
vocabularies deterministic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from tfrs_irns._files import atomic_open
from tfrs_irns.data.table import CodedIds
from tfrs_irns.errors import DataError

OOV_INDEX = 0
# Ids become lines of the export's lookup files (items.tsv: id<TAB>title).
LINE_BREAKS = "\n\r"
FORBIDDEN = {"user": LINE_BREAKS, "item": LINE_BREAKS + "\t"}


def check_ids(ids: np.ndarray, kind: str) -> list[str]:
    """``ids`` as a list of str, each non-empty, unique and free of the
    characters ``FORBIDDEN[kind]`` (``kind`` is ``"user"`` or ``"item"``);
    otherwise a :class:`DataError` naming the first bad id."""
    forbidden = FORBIDDEN[kind]
    # tolist() gives Python strs at C speed (str() per numpy scalar was a loop per id).
    ordered = np.asarray(ids).astype(str)
    out = ordered.tolist() if len(ids) else []
    joined = "\0".join(out)  # one C-speed scan instead of a Python loop per id
    if any(c in joined for c in forbidden) or not all(out):
        raw = next(i for i in out if not i or any(c in i for c in forbidden))
        what = "tab or line break" if "\t" in forbidden else "line break"
        raise DataError(
            f"{kind} id {raw!r} cannot be exported: ids must be non-empty and contain no {what} "
            "(the export's lookup files hold one id per line)"
        )
    # Vocabularies are sorted: strictly increasing means unique, with no set of every id.
    if len(out) > 1 and not (ordered[1:] > ordered[:-1]).all() and len(set(out)) != len(out):
        unique, counts = np.unique(np.asarray(out), return_counts=True)
        raise DataError(f"{kind} id {str(unique[counts > 1][0])!r} appears twice in the vocabulary")
    return out


@dataclass(frozen=True)
class Vocabulary:
    """``ids[i]`` is the raw id of index ``i + 1``; index 0 is OOV.

    A vocabulary built from :class:`CodedIds` remembers the index of every
    value of their code space, so looking up any rows coded against the same
    values (the other splits of one table) is an integer gather, not a string
    search.
    """

    ids: np.ndarray
    # (values of a code space, index of each value): see from_ids; not part of equality.
    coded: Optional[tuple[np.ndarray, np.ndarray]] = field(default=None, compare=False, repr=False)

    @classmethod
    def from_ids(cls, raw_ids: Optional[np.ndarray], codes: Optional[CodedIds] = None) -> "Vocabulary":
        """The sorted distinct ``raw_ids``; ``codes`` (the same ids, coded) avoids sorting strings."""
        if codes is not None:
            used = codes.used_mask()
            index = np.where(used, np.cumsum(used), OOV_INDEX).astype(np.int32)
            return cls(ids=codes.values[used], coded=(codes.values, index))
        return cls(ids=np.unique(np.asarray(raw_ids).astype(str)))

    def __len__(self) -> int:
        """Number of known ids (the OOV bucket not counted)."""
        return int(self.ids.shape[0])

    @property
    def size(self) -> int:
        """Rows an embedding table needs: known ids plus the OOV bucket."""
        return len(self) + 1

    def lookup(self, raw_ids: Optional[np.ndarray], codes: Optional[CodedIds] = None) -> np.ndarray:
        """Indices (int32) of ``raw_ids``; unknown ids map to ``OOV_INDEX``.
        With ``codes`` (the same ids, coded) only the distinct values are
        searched, or none when they share this vocabulary's code space."""
        if codes is not None:
            if self.coded is not None and self.coded[0] is codes.values:
                return self.coded[1][codes.codes]
            return self.lookup(codes.values)[codes.codes]
        raw = np.asarray(raw_ids).astype(str)
        if len(self) == 0:
            return np.zeros(raw.shape, np.int32)
        pos = np.searchsorted(self.ids, raw)
        pos_clipped = np.minimum(pos, len(self) - 1)
        found = self.ids[pos_clipped] == raw
        return np.where(found, pos_clipped + 1, OOV_INDEX).astype(np.int32)

    def id_of(self, index: np.ndarray) -> np.ndarray:
        """Raw ids of ``index`` (OOV maps to the empty string)."""
        table = np.concatenate([np.array([""]), self.ids.astype(str)])
        return table[np.asarray(index)]

    def save(self, path: str) -> None:
        with atomic_open(path) as fh:  # a kill leaves the old file or the new one
            json.dump([str(i) for i in self.ids], fh)

    @classmethod
    def load(cls, path: str) -> "Vocabulary":
        with open(path, encoding="utf-8") as fh:
            return cls(ids=np.asarray(json.load(fh), dtype=str))
