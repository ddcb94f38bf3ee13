"""Raw string ids → contiguous integer indices, built from training data only.

Index 0 is the out-of-vocabulary (OOV) bucket: ids never seen in training
(a new user at serving time, a test item nobody trained on) land there, so
lookups never fail. Known ids get 1..n in sorted order, which makes
vocabularies deterministic.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from tfrs_irns._files import atomic_open

OOV_INDEX = 0


@dataclass(frozen=True)
class Vocabulary:
    """``ids[i]`` is the raw id of index ``i + 1``; index 0 is OOV."""

    ids: np.ndarray

    @classmethod
    def from_ids(cls, raw_ids: np.ndarray) -> "Vocabulary":
        return cls(ids=np.unique(np.asarray(raw_ids).astype(str)))

    def __len__(self) -> int:
        """Number of known ids (the OOV bucket not counted)."""
        return int(self.ids.shape[0])

    @property
    def size(self) -> int:
        """Rows an embedding table needs: known ids plus the OOV bucket."""
        return len(self) + 1

    def lookup(self, raw_ids: np.ndarray) -> np.ndarray:
        """Indices (int32) of ``raw_ids``; unknown ids map to ``OOV_INDEX``."""
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
