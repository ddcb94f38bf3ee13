"""A local MovieLens release: folder or zip, format detected from the files.

MovieLens is the standard explicit-feedback benchmark; for retrieval every
rating counts as an interaction ("the user watched it"), and the movie file
gives titles and genres for the candidate tower. Three file layouts exist:

* ml-100k: ``u.data`` (tab-separated: user, item, rating, timestamp) and
  ``u.item`` (``|``-separated, latin-1, 19 genre flag columns named by the
  optional ``u.genre``);
* ml-1m, ml-10m: ``ratings.dat`` and ``movies.dat`` (``::``-separated, latin-1);
* ml-latest(-small), ml-20m, ml-25m: ``ratings.csv`` and ``movies.csv``
  (UTF-8 with a header; quoted titles may hold commas; genres ``|``-joined,
  ``(no genres listed)`` meaning none).

A zip may hold the files at its top or inside one top folder (as the
official downloads do); a folder may too.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
import zipfile
from typing import Iterator, Optional, TextIO

import numpy as np

from tfrs_irns.data import arrow_source
from tfrs_irns.data.arrow_source import Column
from tfrs_irns.data.rows import Field, RowReader, decode_bytes, int_strings, iter_rows
from tfrs_irns.data.table import Interactions, ItemTable, RawDataset
from tfrs_irns.errors import DataError

# (release, ratings file, movies file, delimiter, ratings header, movies header)
_FORMATS = (
    ("ml-100k", "u.data", "u.item", "\t", None, None),
    ("ml-1m", "ratings.dat", "movies.dat", "::", None, None),
    (
        "ml-latest",
        "ratings.csv",
        "movies.csv",
        ",",
        ("userId", "movieId", "rating", "timestamp"),
        ("movieId", "title", "genres"),
    ),
)

# u.genre is optional; these are its 19 names, in flag-column order.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
# Placeholders that mean "no genre", not a genre of their own.
_NO_GENRE = {"(no genres listed)", "unknown", "Unknown"}


class _Release:
    """The files of one release inside a folder or a zip archive."""

    def __init__(self, path: str) -> None:
        self.path = path
        if not os.path.exists(path):
            raise DataError(f"{path}: no such file or folder (path)", arguments=["path"])
        self.is_zip = os.path.isfile(path)
        if self.is_zip:
            try:
                with zipfile.ZipFile(path) as zf:
                    names = [n for n in zf.namelist() if not n.endswith("/")]
            except zipfile.BadZipFile:
                raise DataError(f"{path}: not a folder or a valid .zip file") from None
            # Files at the top or one folder down, keyed by folder prefix.
            groups: dict[str, dict[str, str]] = {}
            for n in names:
                parts = n.split("/")
                if len(parts) <= 2 and not parts[-1].startswith("."):
                    prefix = parts[0] if len(parts) == 2 else ""
                    groups.setdefault(prefix, {})[parts[-1]] = n
        else:
            groups = {"": {n: os.path.join(path, n) for n in os.listdir(path)}}
            for sub in sorted(os.listdir(path)):
                full = os.path.join(path, sub)
                if os.path.isdir(full):
                    groups[sub] = {n: os.path.join(full, n) for n in os.listdir(full)}
        ratings_names = [f[1] for f in _FORMATS]
        found = [p for p, files in groups.items() if any(r in files for r in ratings_names)]
        if not found:
            looked = ", ".join(f"{f[1]} ({f[0]})" for f in _FORMATS)
            raise DataError(
                f"{path}: no MovieLens ratings file found; looked for {looked} "
                "at the top level and one folder down"
            )
        if "" in found:
            found = [""]
        if len(found) > 1:
            raise DataError(
                f"{path}: holds several MovieLens folders ({', '.join(sorted(found))}); "
                "point path at one of them",
                arguments=["path"],
            )
        self.files = groups[found[0]]

    def has(self, name: str) -> bool:
        return name in self.files

    def label(self, name: str) -> str:
        return f"{self.path}:{self.files[name]}" if self.is_zip else self.files[name]

    @contextlib.contextmanager
    def open_text(self, name: str) -> Iterator[TextIO]:
        """Stream ``name`` as text (ratings files are plain ASCII digits)."""
        if self.is_zip:
            with zipfile.ZipFile(self.path) as zf, zf.open(self.files[name]) as raw:
                yield io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
        else:
            with open(self.files[name], encoding="utf-8-sig", errors="replace", newline="") as fh:
                yield fh

    def read_bytes(self, name: str) -> bytes:
        if self.is_zip:
            with zipfile.ZipFile(self.path) as zf:
                return zf.read(self.files[name])
        with open(self.files[name], "rb") as fh:
            return fh.read()

    def read_text(self, name: str) -> str:
        """The whole of a (small) file, UTF-8 or else latin-1."""
        return decode_bytes(self.read_bytes(name))


def _header_positions(
    rows: Iterator[tuple[int, list[str]]], expected: tuple[str, ...], source: str
) -> tuple[list[int], int]:
    """Positions of ``expected`` columns in the header row, and its width."""
    first = next(rows, None)
    header = [h.strip() for h in first[1]] if first is not None else []
    if sorted(header) != sorted(expected):
        raise DataError(
            f"{source}, line 1: expected the header {','.join(expected)}, "
            f"found {','.join(header) if header else 'an empty file'}"
        )
    return [header.index(name) for name in expected], len(header)


def _arrow_columns(
    release: _Release, name: str, delimiter: str, has_header: bool, width: int, fields: list[Field]
) -> Optional[list[Column]]:
    """``fields`` of ``name`` through pyarrow (:func:`~tfrs_irns.data.arrow_source.read_csv`),
    or ``None`` when the slower readers must decide.

    pyarrow splits on one character only; ml-1m's ``::`` becomes a tab first
    (splitting on ``::`` or on that tab gives the same fields when the file
    holds no tab; a file that does is left to the other readers)."""
    data = None
    if release.is_zip or len(delimiter) > 1:
        data = release.read_bytes(name)
    if len(delimiter) > 1:
        if b"\t" in data:  # type: ignore[operator]
            return None
        data, delimiter = data.replace(delimiter.encode(), b"\t"), "\t"  # type: ignore[union-attr]
    return arrow_source.read_csv(release.label(name), delimiter, has_header, width, fields, data=data)


def _fast_ratings(
    release: _Release, name: str, delimiter: str, has_header: bool, order: list[int]
) -> Optional[list[np.ndarray]]:
    """All ratings through numpy's C reader, or ``None`` if anything is off.

    The slow row reader is the authority on what is valid; this path only
    returns when every value passes the same checks, so both agree.
    """
    with release.open_text(name) as fh, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # loadtxt warns about blank lines
        if has_header:
            fh.readline()
        lines = fh if len(delimiter) == 1 else (line.replace(delimiter, ",") for line in fh)
        sep = delimiter if len(delimiter) == 1 else ","
        try:
            table = np.loadtxt(lines, delimiter=sep, dtype=np.float64, ndmin=2, comments=None)
        except (ValueError, UnicodeDecodeError):
            return None
    if table.shape[0] == 0 or table.shape[1] != 4 or not np.isfinite(table).all():
        return None
    user, item, rating, ts = (table[:, j] for j in order)
    for ids in (user, item):
        if (ids != np.floor(ids)).any() or (np.abs(ids) >= 2**53).any():
            return None
    if (np.abs(ts) >= 2.0**63).any():
        return None
    return [
        int_strings(user.astype(np.int64)),
        int_strings(item.astype(np.int64)),
        rating.astype(np.float32),
        np.floor(ts).astype(np.int64),
    ]


def _read_ratings(
    release: _Release, name: str, delimiter: str, header: Optional[tuple[str, ...]], skip_bad_rows: bool
) -> tuple[list[Column], int]:
    """User ids, movie ids, ratings, timestamps: pyarrow first (ids as codes),
    then numpy's C reader, then the line-locating reader that names bad lines."""
    source = release.label(name)
    order, width = [0, 1, 2, 3], 4
    if header is not None:
        with release.open_text(name) as fh:
            order, width = _header_positions(iter_rows(fh, delimiter), header, source)
    fields = [
        Field("user id", order[0], "id"),
        Field("movie id", order[1], "id"),
        Field("rating", order[2], "float"),
        Field("timestamp", order[3], "time"),
    ]
    arrow = _arrow_columns(release, name, delimiter, header is not None, width, fields)
    if arrow is not None:
        return arrow, 0
    if width == 4:
        columns = _fast_ratings(release, name, delimiter, header is not None, order)
        if columns is not None:
            return [(c, None) for c in columns], 0
    reader = RowReader(fields, source, width, skip_bad_rows)
    with release.open_text(name) as fh:
        rows = iter_rows(fh, delimiter)
        if header is not None:
            next(rows, None)
        columns = reader.read(rows)
    reader.warn()
    return [(c, None) for c in columns], reader.skipped


def _read_movies(
    release: _Release, fmt: str, name: str, delimiter: str, header: Optional[tuple[str, ...]], skip_bad_rows: bool
) -> tuple[ItemTable, int]:
    source = release.label(name)
    if fmt == "ml-100k":
        delimiter = "|"  # u.data is tab-separated, u.item pipe-separated
    rows = iter_rows(io.StringIO(release.read_text(name), newline=""), delimiter)
    if fmt == "ml-100k":
        genre_names = list(ML100K_GENRES)
        if release.has("u.genre"):
            genre_rows = iter_rows(io.StringIO(release.read_text("u.genre"), newline=""), "|")
            genre_names = [row[0].strip() for _, row in genre_rows]
        fields = [Field("movie id", 0, "id"), Field("title", 1, "text")]
        fields += [Field(f"genre flag {g!r}", 5 + j, "flag") for j, g in enumerate(genre_names)]
        reader = RowReader(fields, source, 5 + len(genre_names), skip_bad_rows)
        columns = reader.read(rows)
        flags = np.stack(columns[2:], axis=1) if genre_names else np.zeros((len(columns[0]), 0), bool)
        keep = np.array([g not in _NO_GENRE for g in genre_names], bool)
        names = np.array(genre_names, dtype=object)[keep]
        genres = np.array(["|".join(names[row]) for row in flags[:, keep]], dtype=str)
        item_id, title = columns[0], columns[1]
    else:
        order, width = [0, 1, 2], 3
        if header is not None:
            order, width = _header_positions(rows, header, source)
        fields = [Field("movie id", order[0], "id"), Field("title", order[1], "text"), Field("genres", order[2], "text")]
        reader = RowReader(fields, source, width, skip_bad_rows)
        arrow = _arrow_columns(release, name, delimiter, header is not None, width, fields)
        if arrow is not None:
            item_id, title, genres = (arrow_source.column_strings(c) for c in arrow)
        else:
            item_id, title, genres = reader.read(rows)
        genres = np.where(np.isin(genres, list(_NO_GENRE)), "", genres)
    reader.warn()
    genres = genres.astype(str) if len(genres) else np.zeros(0, dtype=str)
    return ItemTable(item_id=item_id, title=title, genres=genres), reader.skipped


def load_movielens(path: str, skip_bad_rows: bool = False) -> RawDataset:
    """Ratings and movies of the MovieLens release at ``path`` (folder or zip).

    Every rating becomes an interaction (``rating`` kept for
    ``data.min_rating``); movie ids and user ids are the release's integers
    as strings. Malformed rows raise :class:`DataError` naming the file and
    line, or are skipped and counted when ``skip_bad_rows`` is true.
    """
    release = _Release(path)
    fmt, ratings_name, movies_name, delimiter, ratings_header, movies_header = next(
        f for f in _FORMATS if release.has(f[1])
    )
    if not release.has(movies_name):
        raise DataError(
            f"{path}: found {ratings_name} ({fmt} format) but not {movies_name} beside it"
        )
    columns, skipped = _read_ratings(release, ratings_name, delimiter, ratings_header, skip_bad_rows)
    (user, user_codes), (item, item_codes), (rating, _), (timestamp, _) = columns
    if len(timestamp) == 0:
        raise DataError(f"{release.label(ratings_name)}: no ratings (the file has no data rows)")
    items, skipped_items = _read_movies(release, fmt, movies_name, delimiter, movies_header, skip_bad_rows)
    interactions = Interactions(
        user_id=user, item_id=item, timestamp=timestamp, rating=rating, user_codes=user_codes, item_codes=item_codes
    )
    description = (
        f"MovieLens ({fmt} format) {path}: {len(interactions):,} ratings, {len(items):,} movies"
    )
    return RawDataset(
        interactions=interactions, items=items, description=description, skipped_rows=skipped + skipped_items
    )
