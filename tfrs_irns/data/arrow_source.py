"""Columnar reading through pyarrow: multi-threaded CSV/TSV, and Parquet.

A large interaction log is mostly clean, so the fast path reads it with
``pyarrow.csv`` (types declared from the column mapping, several threads),
dictionary-encodes the id columns in one hash pass and never builds a Python
object per row: each
id column comes back as :class:`~tfrs_irns.data.table.CodedIds`, integer codes
into the sorted distinct ids. pyarrow does not say *which line* is bad, and
its idea of a valid value is not exactly ours (it trims ``" 7 "`` but rejects
``"+7"``), so this path is strict: at the first thing it does not accept (a
parse or conversion error, a null, an empty id, a non-finite number, a
a multi-character delimiter) it returns ``None`` and the
caller reads the file with the line-locating
:class:`~tfrs_irns.data.rows.RowReader`, which names the file, line and
column (or skips and counts under ``data.skip_bad_rows``). Both paths give
the same table on every input the fast path accepts.

Parquet files carry their own types, so they are converted rather than
parsed: integer ids become their canonical strings, timestamps become int64
seconds; a missing value names the 1-based row.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Sequence

import numpy as np

from tfrs_irns.data.rows import _PROBLEM, Field, _convert_column, int_strings
from tfrs_irns.data.table import CodedIds
from tfrs_irns.errors import DataError

logger = logging.getLogger(__name__)

# Bytes per parse block: 16 MB measured faster than pyarrow's 1 MB default on
# a 2M-row file, and still several blocks per thread on large files.
_BLOCK_SIZE = 1 << 24
# pyarrow type each row-reader kind is parsed as (``flag`` has no fast path).
_KINDS = ("str", "text", "id", "float", "time")

# A column as the sources use it: an ndarray and None, or for ids from pyarrow None and their
# codes (see column_strings).
Column = tuple[Optional[np.ndarray], Optional[CodedIds]]


def column_strings(column: Column) -> np.ndarray:
    """The values of ``column``, building per-row strings from codes if need be (small tables only)."""
    values, coded = column
    return values if values is not None else coded.strings()  # type: ignore[union-attr]


def _pa():
    import pyarrow as pa  # lazily: a source that never reads CSV/Parquet does not load it

    return pa


def coded_from_arrow(column, refuse_nul: bool = False) -> Optional[CodedIds]:
    """Distinct values and codes of a string column (any chunking), trimmed
    like the row reader trims ids; no per-row Python objects. With
    ``refuse_nul``, ``None`` when a value holds a NUL (checked on the distinct
    values only)."""
    pa = _pa()
    if pa.types.is_dictionary(column.type):  # Parquet dictionary pages: one code space for all chunks
        chunks = pa.table({"c": column}).unify_dictionaries()["c"].chunks if isinstance(
            column, pa.ChunkedArray) else [column]
    else:
        # One hash pass over the whole column (measured faster than parsing into
        # per-block dictionaries and unifying them).
        whole = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        chunks = [whole.dictionary_encode()]
    if not chunks:
        return CodedIds(values=np.zeros(0, dtype=str), codes=np.zeros(0, np.int32))
    if refuse_nul and _has_nul(chunks[0].dictionary):
        return None  # numpy strings drop trailing NULs: the line reader names the line instead
    dictionary = chunks[0].dictionary.to_numpy(zero_copy_only=False).astype(str)
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in chunks]).astype(np.int32)
    # Trimming may merge two spellings (" a" and "a"); np.unique also sorts.
    values, remap = np.unique(np.char.strip(dictionary), return_inverse=True)
    return CodedIds(values=values, codes=remap.reshape(-1).astype(np.int32)[codes])


def _has_nul(column) -> bool:
    """Whether any value of a string (or dictionary-of-string) column holds a NUL."""
    import pyarrow.compute as pc

    chunks = column.chunks if hasattr(column, "chunks") else [column]
    if _pa().types.is_dictionary(column.type):
        chunks = [c.dictionary for c in chunks]
    return any(len(c) and pc.any(pc.match_substring(c, "\x00")).as_py() for c in chunks)


def integer_codes(values: np.ndarray) -> CodedIds:
    """Integer ids as :class:`CodedIds` of their canonical strings, in string
    order (``"10" < "9"``, as the line reader's ids sort)."""
    values = np.asarray(values, np.int64)
    if not len(values):
        return CodedIds(values=np.zeros(0, str), codes=np.zeros(0, np.int32))
    lo, hi = int(values.min()), int(values.max())
    if hi - lo <= 4 * len(values) + 1024:
        # Dense ids (the usual case: 1..n): a presence table, no sort and no hash.
        present = np.zeros(hi - lo + 1, bool)
        present[values - lo] = True
        distinct = np.flatnonzero(present) + lo
        codes = (np.cumsum(present) - 1)[values - lo]
    else:
        encoded = _pa().array(values).dictionary_encode()
        first = encoded.dictionary.to_numpy()
        order = np.argsort(first)
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order))
        distinct, codes = first[order], rank[encoded.indices.to_numpy()]
    strings = int_strings(distinct)
    order = np.argsort(strings, kind="stable")
    rank = np.empty(len(order), np.int32)
    rank[order] = np.arange(len(order))
    return CodedIds(values=strings[order], codes=rank[codes])


def _column(column, kind: str) -> Optional[Column]:
    """One arrow column as the row reader would return it, or ``None`` if a
    value would be rejected there (so that reader can say where). Id columns
    come back as codes only, ``(None, codes)``: their per-row strings are
    never built here."""
    if column.null_count:
        return None
    if kind == "text" and _has_nul(column):
        return None  # numpy strings drop trailing NULs: the line reader names the line instead
    if kind == "str":
        coded = coded_from_arrow(column, refuse_nul=True)
        if coded is None or (len(coded.values) and coded.values[0] == ""):  # sorted: an empty id sorts first
            return None
        return None, coded
    if kind == "text":
        return np.char.strip(column.to_numpy().astype(str)) if len(column) else np.zeros(0, str), None
    values = column.to_numpy()
    if kind == "id":
        if len(values) and np.abs(values).max() >= 2**53:
            return None
        return None, integer_codes(values)
    if kind == "float":
        values = np.asarray(values, np.float64)
        if not np.isfinite(values).all():
            return None
        return values.astype(np.float32), None
    if kind == "time":
        return np.asarray(values, np.int64), None
    raise ValueError(f"kind must be one of {', '.join(_KINDS)}, got {kind!r}")


def first_row(path: str, delimiter: str) -> Optional[list[str]]:
    """The fields of ``path``'s first line, or ``None`` when the fast path
    should not try (no line break in the first 64 kB, a blank line, a quoted
    field that may span lines)."""
    import csv

    from tfrs_irns.data.rows import check_text_bytes, decode_bytes

    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    # A compressed or binary file stops here, naming it (not its bytes as "the header").
    check_text_bytes(head, path)
    end = head.find(b"\n")
    if end < 0 or head[:end].count(b'"') % 2:
        return None
    line = decode_bytes(head[:end]).rstrip("\r")
    if not line.strip():
        return None
    return next(csv.reader([line], delimiter=delimiter))


def read_csv(
    path: str,
    delimiter: str,
    has_header: bool,
    num_columns: int,
    fields: Sequence[Field],
    data: Optional[bytes] = None,
) -> Optional[list[Column]]:
    """``fields`` of the delimited file ``path`` with ``num_columns`` columns
    (the header line skipped when ``has_header``), or ``None`` when the line
    reader must read it (see the module doc). ``data``: the file's bytes, when
    they are not at ``path`` itself (a zip member; ``path`` then only names it)."""
    if len(delimiter) != 1 or any(f.kind not in _KINDS for f in fields):
        return None
    pa = _pa()
    import pyarrow.csv as pacsv

    names = [f"c{j}" for j in range(num_columns)]
    types = {"str": pa.string(), "text": pa.string(),
             "id": pa.int64(), "float": pa.float64(), "time": pa.int64()}
    wanted = list(dict.fromkeys(names[f.index] for f in fields))
    try:
        table = pacsv.read_csv(
            path if data is None else pa.BufferReader(data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1 if has_header else 0, block_size=_BLOCK_SIZE),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(
                include_columns=wanted,
                column_types={names[f.index]: types[f.kind] for f in fields},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        logger.info("%s: reading it line by line (pyarrow: %s)", path, str(exc).splitlines()[0])
        return None
    # Columns convert in parallel: pyarrow's hashing releases the GIL, and the
    # user and item columns are the two expensive ones.
    with ThreadPoolExecutor(max_workers=min(len(fields), os.cpu_count() or 1)) as pool:
        out = list(pool.map(lambda f: _column(table[names[f.index]], f.kind), fields))
    for f, column in zip(fields, out):
        if column is None:
            logger.info("%s: reading it line by line (a %s value pyarrow accepts needs checking)", path, f.label)
            return None
    return out  # type: ignore[return-value]


# --------------------------------------------------------------------------- Parquet


def parquet_files(path: str) -> list[str]:
    """``path`` itself, or the ``*.parquet`` files of the folder ``path`` (sorted, recursive)."""
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file or folder")
    if not os.path.isdir(path):
        return [path]
    files = sorted(
        os.path.join(d, f) for d, _, names in os.walk(path) for f in names if f.endswith(".parquet")
    )
    if not files:
        raise DataError(f"{path}: the folder holds no .parquet files")
    return files


def read_parquet(
    path: str, wanted: Sequence[tuple[str, str, str, str]], skip_bad_rows: bool = False
) -> tuple[list[Column], int]:
    """``wanted`` = ``(argument, column, label, kind)`` columns of the Parquet
    file or folder ``path``; returns the columns and the rows skipped (rows with
    a missing value, under ``skip_bad_rows``)."""
    pa = _pa()
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    files = parquet_files(path)
    tables = []
    for file in files:
        try:
            schema = pq.read_schema(file)
        except (pa.ArrowInvalid, OSError) as exc:
            raise DataError(f"{file}: not a Parquet file ({str(exc).splitlines()[0]})") from None
        for key, name, _, _ in wanted:
            if name not in schema.names:
                raise DataError(
                    f"{file}: no column {name!r} ({key}); the file has {', '.join(repr(n) for n in schema.names)}",
                    arguments=[key.partition(".")[0]],
                )
        tables.append(pq.read_table(file, columns=list(dict.fromkeys(n for _, n, _, _ in wanted))))
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"{path}: the files' column types differ ({str(exc).splitlines()[0]})") from None
    skipped = 0
    missing = None
    for _, name, _, _ in wanted:
        null = pc.is_null(table[name])
        missing = null if missing is None else pc.or_(missing, null)
    if missing is not None and pc.any(missing).as_py():
        first = int(np.flatnonzero(missing.to_numpy(zero_copy_only=False))[0])
        key, name, label, _ = next(w for w in wanted if table[w[1]][first].as_py() is None)
        if not skip_bad_rows:
            raise DataError(f"{path}, row {first + 1}: {label} (column {name!r}) is missing")
        keep = pc.invert(missing)
        skipped = len(table) - int(pc.sum(keep).as_py())
        logger.warning(
            "%s: skipped %d row%s with missing values (skip_bad_rows); first at row %d: %s",
            path, skipped, "" if skipped == 1 else "s", first + 1, label,
        )
        table = table.filter(keep)
    try:
        with ThreadPoolExecutor(max_workers=min(len(wanted), os.cpu_count() or 1)) as pool:
            out = list(pool.map(lambda w: _parquet_column(table[w[1]], w[3], f"{path}: column {w[1]!r} ({w[0]})"), wanted))
    except DataError as exc:  # names a column's argument: the caller may spell it its own way
        raise DataError(str(exc), arguments=[w[0].partition(".")[0] for w in wanted]) from None
    return out, skipped


def _parquet_column(column, kind: str, where: str) -> Column:
    """A typed Parquet column in the row reader's representation."""
    pa = _pa()
    import pyarrow.compute as pc

    t = column.type
    if kind in ("str", "text"):
        if pa.types.is_integer(t):
            return _column(column.cast(pa.int64()), "id")  # type: ignore[return-value]
        if pa.types.is_dictionary(t) or pa.types.is_string(t) or pa.types.is_large_string(t):
            if pa.types.is_large_string(t):
                column = column.cast(pa.string())
            result = _column(column, kind)
            if result is None:
                raise DataError(f"{where}: holds an empty id")
            return result
        raise DataError(f"{where}: has type {t}; expected strings or integers")
    if kind == "time":
        if pa.types.is_timestamp(t):
            column = column.cast(pa.timestamp("s")).cast(pa.int64())
        elif pa.types.is_date(t):
            column = column.cast(pa.timestamp("s")).cast(pa.int64())
        elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t):
            # Times as text (ISO-8601, or numbers), read as a CSV's are: the same values either way.
            text = np.asarray(column.cast(pa.string()).to_numpy(zero_copy_only=False), dtype=object)
            values, bad = _convert_column("time", np.where(text == None, "", text).astype(str))  # noqa: E711
            if bad.any():
                first = int(np.flatnonzero(bad)[0])
                raise DataError(f"{where}: row {first + 1}: {text[first]!r} {_PROBLEM['time']}")
            return values, None
        elif pa.types.is_floating(t):
            values = column.to_numpy()
            if not np.isfinite(values).all():
                raise DataError(f"{where}: holds a value that is not a finite number")
            return np.floor(values).astype(np.int64), None
        elif not pa.types.is_integer(t):
            raise DataError(f"{where}: has type {t}; expected integers, floats or timestamps")
        return np.asarray(column.cast(pa.int64()).to_numpy(), np.int64), None
    if kind == "float":
        if not (pa.types.is_integer(t) or pa.types.is_floating(t)):
            raise DataError(f"{where}: has type {t}; expected numbers")
        values = np.asarray(pc.cast(column, pa.float64()).to_numpy(), np.float64)
        if not np.isfinite(values).all():
            raise DataError(f"{where}: holds a value that is not a finite number")
        return values.astype(np.float32), None
    raise ValueError(f"kind must be one of {', '.join(_KINDS)}, got {kind!r}")
