"""``data.source`` → a :class:`RawDataset`, then the optional rating filter.

``data.min_rating`` turns explicit ratings into implicit feedback: only
ratings at or above it count as positives (e.g. 4 on MovieLens' 1-5 scale).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfrs_irns.data.duplicates import collapse_duplicates
from tfrs_irns.data.params import DataParams
from tfrs_irns.data.table import RawDataset
from tfrs_irns.errors import ConfigError, DataError


def _require(value, argument: str, source: str, what: str):
    if value is None:
        raise ConfigError(f"{argument}: required when source is {source!r} ({what})", arguments=[argument, "source"])
    return value


def load_raw(cfg: DataParams) -> RawDataset:
    """Load the source ``cfg.source``, collapse repeated pairs by ``cfg.duplicates``
    and apply ``cfg.min_rating``; a load that takes more than a few seconds
    prints progress lines."""
    from tfrs_irns.data.progress import Progress

    try:
        with Progress(f"loading {cfg.path or cfg.name or cfg.source}"):
            raw = _load_source(cfg)
    except OSError as exc:  # unreadable file or folder (permissions, I/O): one line naming it
        where = exc.filename or cfg.path or cfg.source
        raise DataError(f"{where}: cannot read ({exc.strerror or exc})") from None
    if len(raw.interactions) == 0:
        raise DataError(f"{raw.description or cfg.source}: the dataset has no interactions")
    # Before the rating filter: the latest rating of a pair is the user's opinion of it.
    raw = collapse_raw_duplicates(raw, cfg.duplicates)
    if cfg.min_rating is not None:
        raw = filter_min_rating(raw, cfg.min_rating, cfg.source)
    return raw


def _load_source(cfg: DataParams) -> RawDataset:
    if cfg.source == "synthetic":
        from tfrs_irns.data.synthetic import make_synthetic

        raw = make_synthetic(cfg.synthetic, cfg.seed)
    elif cfg.source == "tfds":
        from tfrs_irns.data.tfds_source import SUPPORTED, load_tfds

        name = _require(cfg.name, "name", "tfds", "one of " + ", ".join(SUPPORTED))
        raw = load_tfds(name, cfg.tfds_data_dir)
    elif cfg.source == "movielens":
        from tfrs_irns.data.movielens import load_movielens

        path = _require(cfg.path, "path", "movielens", "a MovieLens folder or .zip file")
        raw = load_movielens(path, skip_bad_rows=cfg.skip_bad_rows)
    elif cfg.source == "csv":
        from tfrs_irns.data.csv_source import load_csv

        path = _require(cfg.path, "path", "csv", "the interactions CSV/TSV file")
        raw = load_csv(path, cfg.csv, skip_bad_rows=cfg.skip_bad_rows)
    elif cfg.source == "parquet":
        from tfrs_irns.data.parquet_source import load_parquet

        path = _require(cfg.path, "path", "parquet", "a Parquet file or a folder of .parquet files")
        raw = load_parquet(path, cfg.csv, skip_bad_rows=cfg.skip_bad_rows)
    else:
        raise ConfigError(f"source: unknown source {cfg.source!r}", arguments=["source"])
    return raw


def collapse_raw_duplicates(raw: RawDataset, policy: str) -> RawDataset:
    """``raw`` with repeated (user, item) rows handled by ``policy`` (``DataConfig.duplicates``), counted and described."""
    interactions, repeats = collapse_duplicates(raw.interactions, policy)
    if not repeats:
        return raw
    what = "kept (duplicates=keep_all)" if policy == "keep_all" else f"dropped (duplicates={policy})"
    return dataclasses.replace(
        raw,
        interactions=interactions,
        description=f"{raw.description}; {repeats:,} repeated (user, item) rows {what}",
        duplicate_rows=repeats,
    )


def filter_min_rating(raw: RawDataset, min_rating: float, source: str = "this") -> RawDataset:
    """Keep interactions rated ``>= min_rating``."""
    rating = raw.interactions.rating
    if rating is None:
        hint = " (set rating_column)" if source in ("csv", "parquet") else ""
        raise ConfigError(
            f"min_rating: the {source} source has no ratings{hint}; set min_rating=None",
            arguments=["min_rating", "rating_column"],
        )
    keep = rating >= min_rating
    if not keep.any():
        raise DataError(
            f"no interactions left after min_rating={min_rating:g} "
            f"(ratings range from {float(np.min(rating)):g} to {float(np.max(rating)):g})",
            arguments=["min_rating"],
        )
    return dataclasses.replace(
        raw,
        interactions=raw.interactions.take(keep),
        description=f"{raw.description}; ratings >= {min_rating:g}: {int(keep.sum()):,} kept",
    )
