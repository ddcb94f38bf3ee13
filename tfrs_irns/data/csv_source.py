"""Any CSV/TSV of interactions, plus an optional item file.

A recommender only needs "who interacted with what, when"; the config's
``data.csv`` section says which columns hold the user id, the item id and
(optionally) the timestamp and rating. Without a timestamp column the row
order stands in for time, so temporal splits still mean "later rows are
later". Ids are kept as strings exactly as written (whitespace trimmed).

The module also holds the row reader the MovieLens loader shares: it reads
rows in chunks, converts columns with numpy and, when a value does not
convert, finds the exact 1-based line so the error (or the skip warning)
can name it.
"""

from __future__ import annotations

import csv
import io
import logging
import operator
import os
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Sequence, TextIO

import numpy as np

from tfrs_irns.config import CsvConfig
from tfrs_irns.errors import ConfigError, DataError
from tfrs_irns.data.table import Interactions, ItemTable, RawDataset

logger = logging.getLogger(__name__)

# Rows converted per numpy pass: bounds memory on very large files.
_CHUNK_ROWS = 1 << 18


# --------------------------------------------------------------------------
# Shared row reader
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One column to extract: ``label`` names it in messages, ``index`` is its
    0-based position, ``kind`` how to convert it:

    * ``str``: trimmed text, must not be empty (an id, a title).
    * ``text``: trimmed text, may be empty (genres, an optional title).
    * ``id``: an integer id (MovieLens), returned as its canonical string.
    * ``float``: a finite number, returned as ``float32`` (a rating).
    * ``time``: a finite number, returned as ``int64`` (a timestamp).
    * ``flag``: ``0`` or ``1``, returned as ``bool`` (a genre flag).
    """

    label: str
    index: int
    kind: str = "str"


def _parse_float(s: str) -> float:
    v = float(s)
    if not np.isfinite(v):
        raise ValueError
    return v


def _convert_one(kind: str, text: str) -> None:
    """Raise ``ValueError`` if ``text`` is not a valid ``kind`` value."""
    s = text.strip()
    if kind == "str":
        if not s:
            raise ValueError
    elif kind == "id":
        v = _parse_float(s)
        if v != int(v) or abs(v) >= 2**53:
            raise ValueError
    elif kind in ("float", "time"):
        _parse_float(s)
    elif kind == "flag":
        if s not in ("0", "1"):
            raise ValueError


_PROBLEM = {
    "str": "is empty",
    "id": "is not an integer id",
    "float": "is not a number",
    "time": "is not a number",
    "flag": "is not 0 or 1",
}


def _convert_column(kind: str, col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised conversion of a ``<U`` column; returns (values, bad_mask).

    The fast path converts the whole column at once; only when numpy rejects
    a value do we test values one by one to find which rows are bad.
    """
    n = col.shape[0]
    bad = np.zeros(n, bool)
    if kind in ("str", "text"):
        out = np.char.strip(col)
        if kind == "str":
            bad = out == ""
        return out, bad
    if kind == "flag":
        s = np.char.strip(col)
        return s == "1", ~np.isin(s, ["0", "1"])
    if kind == "time":
        try:
            return col.astype(np.int64), bad
        except (ValueError, OverflowError):
            pass
    try:
        values = col.astype(np.float64)
    except (ValueError, OverflowError):
        for i, text in enumerate(col.tolist()):
            try:
                _convert_one(kind, text)
            except (ValueError, OverflowError):
                bad[i] = True
        values = np.where(bad, "0", col).astype(np.float64)
    bad |= ~np.isfinite(values)
    if kind == "id":
        bad |= (values != np.floor(values)) | (np.abs(values) >= 2**53)
    elif kind == "time":
        bad |= np.abs(values) >= 2.0**63
    values = np.where(bad, 0.0, values)
    if kind == "float":
        return values.astype(np.float32), bad
    if kind == "time":
        return np.floor(values).astype(np.int64), bad
    return int_strings(values.astype(np.int64)), bad  # id


def int_strings(values: np.ndarray) -> np.ndarray:
    """``int64`` ids as canonical strings, in the narrowest ``<U`` dtype
    (numpy's default ``<U21`` would triple the memory of large files)."""
    if values.size == 0:
        return np.zeros(0, dtype=str)
    width = max(len(str(int(values.max()))), len(str(int(values.min()))))
    return values.astype(f"<U{width}")


def iter_rows(fh: TextIO, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """Non-blank rows of ``fh`` with their 1-based line numbers.

    Single-character delimiters go through :mod:`csv` (quoted fields may hold
    the delimiter); longer ones (MovieLens ``::``) are a plain split.
    """
    if len(delimiter) == 1:
        reader = csv.reader(fh, delimiter=delimiter)
        start = 1
        for row in reader:
            if row and not (len(row) == 1 and not row[0].strip()):
                yield start, row
            start = reader.line_num + 1
    else:
        for n, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if line.strip():
                yield n, line.split(delimiter)


class RowReader:
    """Collects ``fields`` from ``rows``; bad rows raise or are counted.

    A row is bad when its column count differs from ``num_columns`` (the
    first row's count when ``None``) or a value does not convert. Errors name
    ``source`` and the 1-based line; with ``skip_bad_rows`` the row is dropped
    and :attr:`skipped` / :attr:`first_problem` record it.
    """

    def __init__(
        self,
        fields: Sequence[Field],
        source: str,
        num_columns: Optional[int] = None,
        skip_bad_rows: bool = False,
    ) -> None:
        self.fields = list(fields)
        self.source = source
        self.num_columns = num_columns
        self.skip_bad_rows = skip_bad_rows
        self.skipped = 0
        self.first_problem: Optional[tuple[int, str]] = None

    def _bad(self, line: int, problem: str) -> None:
        if not self.skip_bad_rows:
            raise DataError(f"{self.source}, line {line}: {problem}")
        self.skipped += 1
        if self.first_problem is None or line < self.first_problem[0]:
            self.first_problem = (line, problem)

    def read(self, rows: Iterable[tuple[int, list[str]]]) -> list[np.ndarray]:
        getter = operator.itemgetter(*[f.index for f in self.fields])
        single = len(self.fields) == 1
        out: list[list[np.ndarray]] = [[] for _ in self.fields]
        picked: list = []
        lines: list[int] = []
        for line, row in rows:
            if self.num_columns is None:
                self.num_columns = len(row)
                needed = max(f.index for f in self.fields) + 1
                if self.num_columns < needed:
                    self._bad(line, f"expected at least {needed} columns, found {self.num_columns}")
                    self.num_columns = None
                    continue
            if len(row) != self.num_columns:
                # Earlier rows of this chunk come first in the error order.
                self._flush(picked, lines, out)
                picked, lines = [], []
                self._bad(line, f"expected {self.num_columns} columns, found {len(row)}")
                continue
            picked.append((getter(row),) if single else getter(row))
            lines.append(line)
            if len(lines) >= _CHUNK_ROWS:
                self._flush(picked, lines, out)
                picked, lines = [], []
        self._flush(picked, lines, out)
        result = []
        for f, parts in zip(self.fields, out):
            if parts:
                result.append(np.concatenate(parts))
            else:
                result.append(_convert_column(f.kind, np.zeros(0, dtype=str))[0])
        return result

    def _flush(self, picked: list, lines: list[int], out: list[list[np.ndarray]]) -> None:
        if not picked:
            return
        table = np.array(picked, dtype=str).reshape(len(picked), len(self.fields))
        converted = []
        bad = np.zeros(len(picked), bool)
        reasons: list[np.ndarray] = []
        for j, f in enumerate(self.fields):
            values, col_bad = _convert_column(f.kind, table[:, j])
            converted.append(values)
            reasons.append(col_bad)
            bad |= col_bad
        if bad.any():
            for i in np.flatnonzero(bad):
                j = next(j for j, r in enumerate(reasons) if r[i])
                f = self.fields[j]
                self._bad(lines[i], f"{f.label} {str(table[i, j])!r} {_PROBLEM[f.kind]}")
            keep = ~bad
            converted = [v[keep] for v in converted]
        for parts, values in zip(out, converted):
            parts.append(values)

    def warn(self) -> None:
        """Log the one-line summary of skipped rows, if any."""
        if self.skipped:
            line, problem = self.first_problem  # type: ignore[misc]
            logger.warning(
                "%s: skipped %d malformed row%s (data.skip_bad_rows); first at line %d: %s",
                self.source, self.skipped, "" if self.skipped == 1 else "s", line, problem,
            )


def decode_bytes(data: bytes) -> str:
    """UTF-8 (BOM dropped), falling back to latin-1 for old MovieLens files."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_text_file(path: str) -> str:
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder, expected a CSV file")
    with open(path, "rb") as fh:
        return decode_bytes(fh.read())


# --------------------------------------------------------------------------
# The CSV source
# --------------------------------------------------------------------------


def _delimiter(value: str) -> str:
    # YAML and shells make a real tab awkward to type; accept the spellings.
    if value in ("\\t", "tab", "TAB", "\t"):
        return "\t"
    if not value:
        raise ConfigError("data.csv.delimiter: must not be empty")
    return value


def _resolve_columns(
    header: Optional[list[str]],
    wanted: Sequence[tuple[str, str]],
    source: str,
) -> list[int]:
    """Column positions of ``wanted`` ``(config key, column name)`` pairs."""
    positions = []
    for key, name in wanted:
        if header is None:
            try:
                pos = int(name)
            except ValueError:
                raise ConfigError(
                    f"{key}: with data.csv.header=false, columns are given by 0-based "
                    f"position, got {name!r}"
                ) from None
            if pos < 0:
                raise ConfigError(f"{key}: column position must be >= 0, got {pos}")
            positions.append(pos)
            continue
        if name not in header:
            hint = ""
            if key == "data.csv.timestamp_column":
                hint = "; set it to null to use the row order as time"
            elif key == "data.csv.title_column":
                hint = "; set it to null if the file has no titles"
            raise DataError(
                f"{source}: no column {name!r} ({key}); the header has "
                f"{', '.join(repr(h) for h in header)}{hint}"
            )
        positions.append(header.index(name))
    return positions


def _read_table(
    path: str,
    delimiter: str,
    has_header: bool,
    wanted: Sequence[tuple[str, str, str, str]],
    skip_bad_rows: bool,
) -> tuple[list[np.ndarray], RowReader]:
    """Read ``wanted`` = ``(config key, column, label, kind)`` columns of ``path``."""
    text = read_text_file(path)
    rows = iter_rows(io.StringIO(text, newline=""), delimiter)
    header = None
    if has_header:
        first = next(rows, None)
        if first is None:
            raise DataError(f"{path}: the file is empty (expected a header line)")
        header = [h.strip() for h in first[1]]
    positions = _resolve_columns(header, [(k, c) for k, c, _, _ in wanted], path)
    fields = [Field(label, pos, kind) for pos, (_, _, label, kind) in zip(positions, wanted)]
    reader = RowReader(fields, path, len(header) if header is not None else None, skip_bad_rows)
    columns = reader.read(rows)
    reader.warn()
    return columns, reader


def load_csv(path: str, cfg: CsvConfig, skip_bad_rows: bool = False) -> RawDataset:
    """Interactions from the CSV/TSV ``path`` with the column mapping ``cfg``.

    With ``cfg.header`` false, column names in ``cfg`` are 0-based positions
    (``"0"``, ``"1"``, ...). ``cfg.items_path`` optionally adds titles and
    ``|``-joined genres; without it the item table is just the item ids.
    """
    delimiter = _delimiter(cfg.delimiter)
    wanted = [
        ("data.csv.user_column", cfg.user_column, "user id", "str"),
        ("data.csv.item_column", cfg.item_column, "item id", "str"),
    ]
    if cfg.timestamp_column is not None:
        wanted.append(("data.csv.timestamp_column", cfg.timestamp_column, "timestamp", "time"))
    if cfg.rating_column is not None:
        wanted.append(("data.csv.rating_column", cfg.rating_column, "rating", "float"))
    columns, reader = _read_table(path, delimiter, cfg.header, wanted, skip_bad_rows)
    skipped = reader.skipped
    user, item = columns[0], columns[1]
    rest = columns[2:]
    timestamp = rest.pop(0) if cfg.timestamp_column is not None else np.arange(len(user), dtype=np.int64)
    rating = rest.pop(0) if cfg.rating_column is not None else None
    if len(user) == 0:
        raise DataError(f"{path}: no interactions (the file has no data rows)")
    interactions = Interactions(user_id=user, item_id=item, timestamp=timestamp, rating=rating)

    if cfg.items_path is None:
        items = ItemTable(item_id=np.unique(item))
    else:
        item_wanted = [("data.csv.item_id_column", cfg.item_id_column, "item id", "str")]
        if cfg.title_column is not None:
            item_wanted.append(("data.csv.title_column", cfg.title_column, "title", "text"))
        if cfg.genres_column is not None:
            item_wanted.append(("data.csv.genres_column", cfg.genres_column, "genres", "text"))
        item_cols, item_reader = _read_table(cfg.items_path, delimiter, cfg.header, item_wanted, skip_bad_rows)
        skipped += item_reader.skipped
        extra = item_cols[1:]
        items = ItemTable(
            item_id=item_cols[0],
            title=extra.pop(0) if cfg.title_column is not None else None,
            genres=extra.pop(0) if cfg.genres_column is not None else None,
        )
    description = (
        f"CSV {path}: {len(interactions):,} interactions, "
        f"{len(np.unique(user)):,} users, {len(np.unique(item)):,} items"
    )
    return RawDataset(interactions=interactions, items=items, description=description, skipped_rows=skipped)
