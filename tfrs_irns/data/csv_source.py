"""Any CSV/TSV of interactions, plus an optional item file.

A recommender only needs "who interacted with what, when"; the config's
``data.csv`` section says which columns hold the user id, the item id and
(optionally) the timestamp and rating. Without a timestamp column the row
order stands in for time, so temporal splits still mean "later rows are
later". Ids are kept as strings exactly as written (whitespace trimmed).

Files are read by pyarrow (:mod:`tfrs_irns.data.arrow_source`); a file
pyarrow objects to is read again by the shared
:class:`~tfrs_irns.data.rows.RowReader`, so a bad value is reported with its
file and 1-based line. The same column mapping reads Parquet
(:mod:`tfrs_irns.data.parquet_source`).
"""

from __future__ import annotations

import io
import os
from typing import Optional, Sequence

import numpy as np

from tfrs_irns.data import arrow_source
from tfrs_irns.data.arrow_source import Column
from tfrs_irns.data.params import CsvParams
from tfrs_irns.data.rows import Field, RowReader, check_text_bytes, decode_bytes, iter_rows
from tfrs_irns.data.table import Interactions, ItemTable, RawDataset
from tfrs_irns.errors import ConfigError, DataError


def _check_file(path: str) -> None:
    """A missing file or a folder is a :class:`DataError` naming the path."""
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder, expected a CSV file")


def read_text_file(path: str) -> str:
    """The whole of ``path`` as text (see :func:`decode_bytes`); a missing
    file or a folder is a :class:`DataError` naming the path."""
    _check_file(path)
    with open(path, "rb") as fh:
        data = fh.read()
    check_text_bytes(data, path)
    return decode_bytes(data)


def _delimiter(value: str) -> str:
    # YAML and shells make a real tab awkward to type; accept the spellings.
    if value in ("\\t", "tab", "TAB", "\t"):
        return "\t"
    if not value:
        raise ConfigError("delimiter: must not be empty", arguments=["delimiter"])
    return value


def _resolve_columns(
    header: Optional[list[str]],
    wanted: Sequence[tuple[str, str]],
    source: str,
) -> list[int]:
    """Column positions of ``wanted`` ``(argument, column name)`` pairs (the argument of
    :class:`CsvConfig` that names the column, for the errors)."""
    positions = []
    for key, name in wanted:
        if header is None:
            try:
                pos = int(name)
            except ValueError:
                raise ConfigError(
                    f"{key}: with header=False, columns are given by 0-based position, got {name!r}",
                    arguments=[key.partition(".")[0], "header"],
                ) from None
            if pos < 0:
                raise ConfigError(f"{key}: column position must be >= 0, got {pos}", arguments=[key.partition(".")[0]])
            positions.append(pos)
            continue
        if name not in header:
            hint = ""
            if key == "timestamp_column":
                hint = "; set timestamp_column=None to use the row order as time"
            elif key == "title_column":
                hint = "; set title_column=None if the file has no titles"
            raise DataError(
                f"{source}: no column {name!r} ({key}); the header has "
                f"{', '.join(repr(h) for h in header)}{hint}",
                arguments=[key.partition(".")[0]],
            )
        positions.append(header.index(name))
    return positions


def _read_table(
    path: str,
    delimiter: str,
    has_header: bool,
    wanted: Sequence[tuple[str, str, str, str]],
    skip_bad_rows: bool,
    engine: str = "auto",
) -> tuple[list[Column], int]:
    """Read ``wanted`` = ``(argument, column, label, kind)`` columns of ``path``;
    returns the columns (with their codes, for ids) and the rows skipped.

    ``engine`` ``"auto"`` tries pyarrow first and falls back to the line
    reader for the file when pyarrow objects (see :mod:`.arrow_source`);
    ``"python"`` is the line reader alone.
    """
    if engine not in ("auto", "python"):
        raise ValueError(f"engine must be 'auto' or 'python', got {engine!r}")
    _check_file(path)
    if engine == "auto" and len(delimiter) == 1:
        head = arrow_source.first_row(path, delimiter)
        if head is not None:
            header = [h.strip() for h in head] if has_header else None
            positions = _resolve_columns(header, [(k, c) for k, c, _, _ in wanted], path)
            if max(positions) < len(head):
                fields = [Field(label, pos, kind) for pos, (_, _, label, kind) in zip(positions, wanted)]
                columns = arrow_source.read_csv(path, delimiter, has_header, len(head), fields)
                if columns is not None:
                    return columns, 0
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
    return [(c, None) for c in columns], reader.skipped


def interaction_columns(cfg: CsvParams) -> list[tuple[str, str, str, str]]:
    """``(argument, column, label, kind)`` of the interaction columns ``cfg`` maps."""
    wanted = [
        ("user_column", cfg.user_column, "user id", "str"),
        ("item_column", cfg.item_column, "item id", "str"),
    ]
    if cfg.timestamp_column is not None:
        wanted.append(("timestamp_column", cfg.timestamp_column, "timestamp", "time"))
    if cfg.rating_column is not None:
        wanted.append(("rating_column", cfg.rating_column, "rating", "float"))
    return wanted


def interactions_from_columns(columns: list[Column], cfg: CsvParams, path: str) -> Interactions:
    """The interaction table of the columns :func:`interaction_columns` asked for."""
    (user, user_codes), (item, item_codes) = columns[0], columns[1]
    rest = [c for c, _ in columns[2:]]
    rows = len(user) if user is not None else len(user_codes.codes)  # type: ignore[union-attr]
    timestamp = rest.pop(0) if cfg.timestamp_column is not None else np.arange(rows, dtype=np.int64)
    rating = rest.pop(0) if cfg.rating_column is not None else None
    if rows == 0:
        raise DataError(f"{path}: no interactions (the file has no data rows)")
    return Interactions(
        user_id=user, item_id=item, timestamp=timestamp, rating=rating, user_codes=user_codes, item_codes=item_codes
    )


def load_items(
    cfg: CsvParams, interactions: Interactions, skip_bad_rows: bool = False, engine: str = "auto"
) -> tuple[ItemTable, int]:
    """The item table from ``cfg.items_path`` (a CSV/TSV, or Parquet when it
    ends in ``.parquet`` or is a folder), else just the interacted items; and
    the rows skipped."""
    if cfg.items_path is None:
        return ItemTable(item_id=interactions.coded("item").used()), 0
    item_wanted = [("item_id_column", cfg.item_id_column, "item id", "str")]
    if cfg.title_column is not None:
        item_wanted.append(("title_column", cfg.title_column, "title", "text"))
    if cfg.genres_column is not None:
        item_wanted.append(("genres_column", cfg.genres_column, "genres", "text"))
    for name in cfg.item_columns:
        item_wanted.append((f"item_columns.{name}", name, name, "text"))
    if cfg.items_path.endswith(".parquet") or os.path.isdir(cfg.items_path):
        item_cols, skipped = arrow_source.read_parquet(cfg.items_path, item_wanted, skip_bad_rows)
    else:
        delimiter = _delimiter(cfg.delimiter)
        item_cols, skipped = _read_table(cfg.items_path, delimiter, cfg.header, item_wanted, skip_bad_rows, engine)
    extra = [c for c, _ in item_cols[1:]]
    items = ItemTable(
        item_id=arrow_source.column_strings(item_cols[0]),
        title=extra.pop(0) if cfg.title_column is not None else None,
        genres=extra.pop(0) if cfg.genres_column is not None else None,
        columns={name: extra.pop(0) for name in cfg.item_columns} or None,
    )
    return items, skipped


def describe(kind: str, path: str, interactions: Interactions) -> str:
    """``"<kind> <path>: N interactions, U users, I items"``."""
    users, items = (int(interactions.coded(side).used_mask().sum()) for side in ("user", "item"))
    return f"{kind} {path}: {len(interactions):,} interactions, {users:,} users, {items:,} items"


def load_csv(path: str, cfg: CsvParams, skip_bad_rows: bool = False, engine: str = "auto") -> RawDataset:
    """Interactions from the CSV/TSV ``path`` with the column mapping ``cfg``.

    With ``cfg.header`` false, column names in ``cfg`` are 0-based positions
    (``"0"``, ``"1"``, ...). ``cfg.items_path`` optionally adds titles and
    ``|``-joined genres; without it the item table is just the item ids.
    ``engine``: ``"auto"`` (pyarrow, the line reader where pyarrow objects) or
    ``"python"`` (the line reader only; same answers, slower).
    """
    delimiter = _delimiter(cfg.delimiter)
    columns, skipped = _read_table(path, delimiter, cfg.header, interaction_columns(cfg), skip_bad_rows, engine)
    interactions = interactions_from_columns(columns, cfg, path)
    items, skipped_items = load_items(cfg, interactions, skip_bad_rows, engine)
    return RawDataset(
        interactions=interactions,
        items=items,
        description=describe("CSV", path, interactions),
        skipped_rows=skipped + skipped_items,
    )
