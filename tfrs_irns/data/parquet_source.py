"""Interactions from Parquet: a file or a folder of files, the CSV column mapping.

Interaction logs usually live in Parquet. ``data.source: parquet`` reads
``data.path`` (one file, or every ``*.parquet`` below a folder, in sorted
order, as one table) with the same ``data.csv`` column mapping as the CSV
source (``delimiter`` and ``header`` aside). Ids may be strings or integers
(kept as their canonical strings); timestamps integers, floats (truncated)
or Parquet timestamps (seconds).
"""

from __future__ import annotations

from tfrs_irns.data.arrow_source import read_parquet
from tfrs_irns.data.csv_source import describe, interaction_columns, interactions_from_columns, load_items
from tfrs_irns.data.params import CsvParams
from tfrs_irns.data.table import RawDataset


def load_parquet(path: str, cfg: CsvParams, skip_bad_rows: bool = False) -> RawDataset:
    """Interactions from the Parquet file or folder ``path`` with the column mapping ``cfg``."""
    columns, skipped = read_parquet(path, interaction_columns(cfg), skip_bad_rows)
    interactions = interactions_from_columns(columns, cfg, path)
    items, skipped_items = load_items(cfg, interactions, skip_bad_rows)
    return RawDataset(
        interactions=interactions,
        items=items,
        description=describe("Parquet", path, interactions),
        skipped_rows=skipped + skipped_items,
    )
