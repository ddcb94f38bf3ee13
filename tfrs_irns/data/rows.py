"""The row reader every file source shares: exact line numbers for bad rows.

Interaction files are large and mostly clean, so rows are converted in
chunks with numpy; only when a chunk holds a value that does not convert are
its values tested one by one, to name the exact 1-based line (and column) in
the error or the skip warning. The CSV source and the MovieLens loader both
read through :class:`RowReader`; what a file's columns mean is theirs to say.
"""

from __future__ import annotations

import csv
import datetime
import logging
import operator
import warnings
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Sequence, TextIO

import numpy as np

from tfrs_irns.errors import DataError

logger = logging.getLogger(__name__)

# Rows converted per numpy pass: bounds memory on very large files.
_CHUNK_ROWS = 1 << 18


@dataclass(frozen=True)
class Field:
    """One column to extract: ``label`` names it in messages, ``index`` is its
    0-based position, ``kind`` how to convert it:

    * ``str``: trimmed text, must not be empty (an id, a title).
    * ``text``: trimmed text, may be empty (genres, an optional title).
    * ``id``: an integer id (MovieLens), returned as its canonical string.
    * ``float``: a finite number, returned as ``float32`` (a rating).
    * ``time``: a finite number, or an ISO-8601 time (``1997-12-04T15:55:49Z``,
      ``1997-12-04 15:55:49+02:00``, ``1997-12-04``; no offset = UTC), returned as
      ``int64`` seconds since 1970 (a timestamp).
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


def _parse_time(s: str) -> int:
    """Seconds since 1970 of a number or an ISO-8601 time (UTC when it names no offset)."""
    try:
        return int(np.floor(_parse_float(s)))
    except ValueError:
        pass
    when = datetime.datetime.fromisoformat(s)  # Python 3.11: "Z", offsets, dates, a space for the "T"
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return int(np.floor(when.timestamp()))


def _iso_seconds(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(int64 seconds, bad mask)`` of a column of ISO-8601 times."""
    out = np.zeros(col.shape[0], np.int64)
    bad = np.zeros(col.shape[0], bool)
    text = np.char.strip(col)
    if (np.char.find(text, "-") > 0).all():  # every value a date (numpy would read "881250949" as a year)
        try:  # in one go (numpy applies an offset, warning that datetime64 keeps none: we want UTC)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                return np.char.rstrip(text, "Z").astype("datetime64[s]").astype(np.int64), bad
        except ValueError:
            pass
    for i, text in enumerate(col.tolist()):
        try:
            out[i] = _parse_time(text.strip())
        except (ValueError, OverflowError):
            bad[i] = True
    return out, bad


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
    elif kind == "float":
        _parse_float(s)
    elif kind == "time":
        _parse_time(s)
    elif kind == "flag":
        if s not in ("0", "1"):
            raise ValueError


_PROBLEM = {
    "str": "is empty",
    "id": "is not an integer id",
    "float": "is not a number",
    "time": "is not a number or an ISO-8601 time (such as 1997-12-04T15:55:49Z)",
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
            col.astype(np.float64)
        except (ValueError, OverflowError):
            return _iso_seconds(col)  # not all numbers: times as text (or bad values, found one by one)
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
                "%s: skipped %d malformed row%s (skip_bad_rows); first at line %d: %s",
                self.source, self.skipped, "" if self.skipped == 1 else "s", line, problem,
            )


# Leading bytes of files that are not text: the usual mistake is a compressed log.
_MAGIC = {b"\x1f\x8b": "gzip-compressed", b"PK\x03\x04": "a zip archive", b"BZh": "bzip2-compressed",
          b"\xfd7zXZ\x00": "xz-compressed", b"PAR1": "a Parquet file"}


def check_text_bytes(data: bytes, source: str) -> None:
    """Refuse bytes that are not a text table, naming ``source``: a compressed
    or binary file (instead of printing its bytes as "the header"), or a NUL
    byte anywhere (numpy strings would silently drop trailing NULs, merging
    ``u1\\0`` into ``u1``)."""
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            raise DataError(f"{source}: this is {what}, not a text CSV/TSV; decompress or convert it first")
    nul = data.find(b"\0")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise DataError(f"{source}, line {line}: contains a NUL byte; this is not a text CSV/TSV (binary or corrupt?)")


def decode_bytes(data: bytes) -> str:
    """UTF-8 (BOM dropped), falling back to latin-1 for old MovieLens files."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")
