"""Each item's raw content, one string per item index, for a content tower.

A content tower (:mod:`tfrs_irns.layers.item_content`) embeds items from
strings — a title, the ``|``-joined genres, any declared item column — so it
needs them aligned to the item vocabulary: row ``i`` describes item index
``i``, row 0 (OOV) is empty. Where each feature comes from, per source:

========================  ==============================  ==============================
source                    ``title``                       ``genres``
========================  ==============================  ==============================
ml-100k (``u.item``)      the movie title column          the 19 genre flags, joined
ml-1m (``movies.dat``)    ``Title``                       ``Genres`` (``|``-joined)
ml-latest(-small), 25m    ``movies.csv`` ``title``        ``movies.csv`` ``genres``
csv / parquet             ``data.csv.title_column`` of    ``data.csv.genres_column`` of
                          ``data.csv.items_path``         ``data.csv.items_path``
tfds ``*-ratings``        ``movie_title``                 ``movie_genres`` (class names)
synthetic                 cluster tokens + filler tokens  the item's cluster name
========================  ==============================  ==============================

Further columns of the item file (``data.csv.item_columns``, csv and parquet)
are read as strings under their own name.
"""

from __future__ import annotations

import numpy as np

from tfrs_irns.data.prepare import Known

#: Built-in content features and their kind (text: tokenised; categorical: ``|``-joined values).
BUILTIN_KINDS = {"title": "text", "genres": "categorical"}


def joined_genres(data: Known) -> np.ndarray:
    """Each item's genres as one ``|``-joined string (from the multi-hot table), ``''`` when none."""
    out = np.full(data.item_vocab.size, "", dtype=object)
    if data.item_genres is not None:
        names = np.asarray(data.genre_names, dtype=object)
        rows, cols = np.nonzero(np.asarray(data.item_genres) > 0)  # row-major: grouped by row
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]]) if len(rows) else rows
        for row, group in zip(rows[starts], np.split(cols, starts[1:])):
            out[row] = "|".join(names[group])
    return out.astype(str)


def item_feature_strings(data: Known, name: str) -> np.ndarray:
    """The raw strings of content feature ``name`` per item index, ``[num_items + 1]``.

    ``title`` and ``genres`` are built in; any other name is a column of
    ``data.item_columns``. Raises ``KeyError`` naming an unknown feature.
    """
    if name == "title":
        return np.asarray(data.item_titles, str)
    if name == "genres":
        return joined_genres(data)
    if name in data.item_columns:
        return np.asarray(data.item_columns[name], str)
    raise KeyError(f"no item feature {name!r}: expected title, genres or one of {sorted(data.item_columns)}")
