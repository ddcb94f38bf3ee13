"""What a run keeps of its data: the vocabularies, the item side table and the data fingerprint.

A trained model is only meaningful with the vocabularies it was trained on:
row ``i`` of its user table *is* the user ``vocab/users.json`` names at
index ``i``. Rebuilding the vocabulary from the data "as it is now" at
export time silently serves one user another's list if a single id was
renamed since. So a run saves its vocabularies, the per-item arrays the
model is built from (training counts, titles, genres) and the fingerprint
of the data it split, and everything after training reads them back:

```
<run>/vocab/users.json      raw id of user index 1, 2, ...
<run>/vocab/items.json      raw id of item index 1, 2, ...
<run>/vocab/items.npz       counts, titles, genres (multi-hot), genre names, further item columns
                            (column:<name>) per item index, and the cold items of a cold_items split
<run>/vocab/data.json       fingerprint, description, split sizes
<run>/vocab/seen.npz        each user's training and validation items (CSR), excluded when served
```

:func:`load_snapshot` gives the run's :class:`~tfrs_irns.data.prepare.Catalogue`:
enough to build the model and export it, without the data.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

import numpy as np

from tfrs_irns._files import atomic_open
from tfrs_irns.data.prepare import Catalogue, PreparedData, seen_items
from tfrs_irns.data.vocab import Vocabulary

USERS = "users.json"
ITEMS = "items.json"
ITEM_SIDE = "items.npz"
DATA = "data.json"
SEEN = "seen.npz"  # each user's training + validation items (CSR): what a served model leaves out
COLUMN_PREFIX = "column:"


def save_snapshot(data: PreparedData, folder: str) -> None:
    """Write ``data``'s vocabularies, item side table and fingerprint to ``folder``."""
    os.makedirs(folder, exist_ok=True)
    data.user_vocab.save(os.path.join(folder, USERS))  # each file atomic: a kill leaves old or new
    data.item_vocab.save(os.path.join(folder, ITEMS))
    arrays: dict[str, Any] = {
        "counts": np.asarray(data.item_counts, np.float64),
        "titles": np.asarray(data.item_titles, str),
        "genre_names": np.asarray(data.genre_names, str),
    }
    if data.item_genres is not None:
        arrays["genres"] = np.asarray(data.item_genres, np.float32)
    for name, values in data.item_columns.items():
        arrays[COLUMN_PREFIX + name] = np.asarray(values, str)
    if len(data.cold_items):
        arrays["cold_items"] = np.asarray(data.cold_items, np.int32)
    with atomic_open(os.path.join(folder, ITEM_SIDE), "wb") as fh:  # a file object: np.savez adds no suffix
        np.savez_compressed(fh, **arrays)
    info = {
        "fingerprint": data.fingerprint,
        "description": data.description,
        "num_train": len(data.train),
        "num_validation": len(data.validation),
        "num_test": len(data.test),
        "skipped_rows": data.skipped_rows,
        "duplicate_rows": data.duplicate_rows,
    }
    with atomic_open(os.path.join(folder, DATA)) as fh:
        json.dump(info, fh, indent=2)
    indptr, items = seen_items(data)
    with atomic_open(os.path.join(folder, SEEN), "wb") as fh:
        np.savez_compressed(fh, indptr=indptr, items=items)


def load_seen(folder: str) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """The ``(indptr, items)`` CSR :func:`save_snapshot` wrote (None for an older run)."""
    path = os.path.join(folder, SEEN)
    if not os.path.isfile(path):
        return None
    with np.load(path) as seen:
        return seen["indptr"], seen["items"]


def has_snapshot(folder: str) -> bool:
    return all(os.path.isfile(os.path.join(folder, name)) for name in (USERS, ITEMS, ITEM_SIDE, DATA))


def saved_vocabularies(folder: str) -> tuple[Vocabulary, Vocabulary]:
    """The ``(users, items)`` vocabularies saved in ``folder``."""
    return Vocabulary.load(os.path.join(folder, USERS)), Vocabulary.load(os.path.join(folder, ITEMS))


def saved_info(folder: str) -> dict[str, Any]:
    """What ``data.json`` records of the data: fingerprint, description, split sizes, skipped
    and duplicate rows (empty if not recorded)."""
    path = os.path.join(folder, DATA)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def saved_fingerprint(folder: str) -> Optional[str]:
    """The fingerprint of the data the snapshot was made from (None if not recorded)."""
    return saved_info(folder).get("fingerprint") or None


def load_snapshot(folder: str) -> Catalogue:
    """The run's catalogue: vocabularies, item side table and the data fingerprint (no rows)."""
    users, items = saved_vocabularies(folder)
    with np.load(os.path.join(folder, ITEM_SIDE)) as side:
        counts, titles = side["counts"], side["titles"]
        genres = side["genres"] if "genres" in side.files else None
        genre_names = [str(g) for g in side["genre_names"]]
        columns = {k[len(COLUMN_PREFIX):]: side[k] for k in side.files if k.startswith(COLUMN_PREFIX)}
        cold = side["cold_items"] if "cold_items" in side.files else np.zeros(0, np.int32)
    for name, array in (("counts", counts), ("titles", titles), ("genres", genres), *columns.items()):
        if array is not None and array.shape[0] != items.size:
            raise ValueError(f"{folder}: {ITEM_SIDE} has {array.shape[0]} {name} rows, expected {items.size}")
    return Catalogue(
        user_vocab=users,
        item_vocab=items,
        item_counts=counts,
        item_titles=titles,
        item_genres=genres,
        genre_names=genre_names,
        item_columns=columns,
        cold_items=cold,
        fingerprint=saved_info(folder).get("fingerprint", ""),
    )
