"""Where the interactions come from and how they are split, defined once:
the ``data`` config section, and what each data source provides.

The loaders take these objects; the config uses them whole as its section
types and asks :data:`SOURCES` (not a list of source names of its own)
whether a source has titles, genres or ratings, needs ``path`` or can be
streamed. No TensorFlow: the config imports it (``*/params.py`` are layer 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from tfrs_irns._params import FRACTION, NON_NEGATIVE, POSITIVE, Check, Params, param

_UNIT: Check = (lambda v: 0 <= v <= 1, "must be in [0, 1]")


@dataclass(frozen=True)
class Source:
    """What one ``data.source`` provides, declared beside the loaders.

    Attributes:
      path: reads ``data.path`` (a file or folder).
      titles, genres: always yields item titles / genres (MovieLens, say).
      item_file: reads titles, genres and further item columns from the item
        file ``csv.items_path`` (with the columns set).
      ratings: always yields ratings (``csv.rating_column`` can add them).
      streams: can be read in bounded-memory batches (``data.streaming``).
    """

    path: bool = False
    titles: bool = False
    genres: bool = False
    item_file: bool = False
    ratings: bool = False
    streams: bool = False


SOURCES: dict[str, Source] = {
    "synthetic": Source(titles=True, genres=True),
    "tfds": Source(titles=True, genres=True, ratings=True),
    "movielens": Source(path=True, titles=True, genres=True, ratings=True),
    "csv": Source(path=True, item_file=True, streams=True),
    "parquet": Source(path=True, item_file=True, streams=True),
}

#: The splits the streamed input can cut without every row in memory.
STREAMING_SPLITS = ("random", "leave_last_out")


@dataclass(frozen=True)
class SyntheticParams(Params):
    """The embedded synthetic catalogue (``data.source: synthetic``).

    Users and items share latent taste clusters and item popularity is Zipf,
    so a model that learns the planted structure beats popularity: a
    self-contained check that training works.
    """

    num_users: int = param(5000, "users generated", check=POSITIVE)
    num_items: int = param(20000, "items generated", check=POSITIVE)
    num_interactions: int = param(
        500000, "(user, item) interactions generated; each pair occurs at most once", check=POSITIVE
    )
    num_clusters: int = param(
        20, "latent taste clusters shared by users and items (an item's genre is its cluster)", check=POSITIVE
    )
    zipf_exponent: float = param(
        0.8, "item popularity is Zipf with this exponent over a random ranking (0: uniform)", check=NON_NEGATIVE
    )
    affinity: float = param(
        0.9, "share of each user's interactions drawn from their own cluster (the planted signal)", check=_UNIT
    )


@dataclass(frozen=True)
class CsvParams(Params):
    """Column mapping of ``data.source: csv``; with ``header: false`` columns are 0-based positions ("0", "1", ...).

    Any interaction log is a table of (user, item, time[, rating]) rows; an
    optional item file adds the content (title, genres, more columns) a
    content tower embeds items from.
    """

    user_column: str = param("user_id", "column holding the user id", column=True)
    item_column: str = param("item_id", "column holding the item id", column=True)
    timestamp_column: Optional[str] = param(
        "timestamp", "column holding the time (null: row order stands in for time)", column=True
    )
    rating_column: Optional[str] = param(None, "column holding the rating (needed by data.min_rating)", column=True)
    delimiter: str = param(",", "field separator of both files; '\\t' or 'tab' for a tab")
    header: bool = param(True, "the first line of each file names the columns")
    items_path: Optional[str] = param(None, "optional item file giving titles and genres", path=True)
    item_id_column: str = param("item_id", "column of the item file holding the item id", column=True)
    title_column: Optional[str] = param(
        "title", "column of the item file holding the title (null: none)", column=True
    )
    genres_column: Optional[str] = param(
        None, "column of the item file holding '|'-joined genres (null: none)", column=True
    )
    item_columns: dict[str, Literal["text", "categorical"]] = param(
        help="further item-file columns usable in model.item_features: column name -> text (tokenised) or "
        "categorical ('|'-joined values)", factory=dict
    )


@dataclass(frozen=True)
class DataParams(Params):
    """Where the interactions come from and how they are split.

    Retrieval is judged on interactions the model never trained on; the split
    decides which (random, the latest ones, whole users or items never seen),
    and so which question the metrics answer.
    """

    source: Literal["synthetic", "tfds", "movielens", "csv", "parquet"] = param(
        "synthetic", "where the interactions come from: generated (synthetic), tensorflow_datasets (tfds), "
        "a local MovieLens release (movielens), any CSV/TSV file (csv), a Parquet file or folder (parquet)"
    )
    name: Optional[str] = param(None, "tensorflow_datasets name (source tfds), e.g. movielens/100k-ratings")
    path: Optional[str] = param(
        None, "a MovieLens folder or .zip (source movielens), the interactions CSV/TSV file (source csv), "
        "or a Parquet file or folder of .parquet files (source parquet)", path=True
    )
    split: Literal["random", "temporal", "leave_last_out", "cold_items", "cold_users"] = param(
        "random", "how test (and validation) interactions are held out: seeded shuffle, global time cut, "
        "each user's last interaction, every interaction of a seeded share of items never trained on (cold_items), "
        "or new users (cold_users: a seeded share of users never trained on, the earlier half of each one's "
        "interactions given as history, the later half tested)"
    )
    cold_item_fraction: float = param(
        0.1, "split cold_items: share of the items held out of training and validation; the test is every "
        "interaction on them (test_fraction unused)", check=FRACTION
    )
    test_fraction: float = param(
        0.2, "share of the interactions held out for test (random, temporal; unused by leave_last_out)",
        check=FRACTION,
    )
    validation_fraction: float = param(
        0.1, "share of the non-test interactions held out for validation (random, temporal); leave_last_out takes "
        "each user's second-to-last interaction (users with 3 or more) when > 0; 0: no validation split",
        check=(lambda v: 0 <= v < 1, "must be in [0, 1)"),
    )
    cold_user_fraction: float = param(
        0.1, "cold_users split: share of the users held out of training and validation (at least one)",
        check=FRACTION,
    )
    seed: int = param(42, "seed of the random split and of the synthetic data")
    min_rating: Optional[float] = param(
        None, "keep only interactions rated at least this (null: keep all; needs ratings)"
    )
    skip_bad_rows: bool = param(
        False, "movielens, csv and parquet: drop malformed rows with a warning instead of stopping"
    )
    duplicates: Literal["keep_last", "keep_first", "keep_all"] = param(
        "keep_last", "repeated (user, item) pairs: keep the latest copy (by timestamp), the earliest, or every "
        "copy (keep_all: all copies of a pair land on the same side of every split)"
    )
    tfds_data_dir: Optional[str] = param(
        None, "tensorflow_datasets data folder (null: the tfds default)", path=True
    )
    streaming: bool = param(
        False, "csv and parquet: read the data in bounded-memory batches once, into encoded int64 shards in a cache "
        "keyed by the data fingerprint, and train from them with tf.data (memory grows with the vocabularies, not "
        "the rows; splits random and leave_last_out, data.duplicates keep_all; see docs/streaming.md)"
    )
    cache_dir: Optional[str] = param(
        None, "data.streaming: the folder of the shard cache (null: .tfrs-irns-cache beside the run folder)",
        path=True,
    )
    synthetic: SyntheticParams = param(help="the synthetic catalogue (source synthetic)", factory=SyntheticParams)
    csv: CsvParams = param(help="the column mapping (sources csv and parquet)", factory=CsvParams)

    @property
    def provides(self) -> Source:
        """What this source provides (:data:`SOURCES`)."""
        return SOURCES[self.source]

    def item_file_column(self, feature: str) -> Optional[str]:
        """The item-file column that gives built-in ``feature`` (``title`` or
        ``genres``), None when it is not set."""
        return {"title": self.csv.title_column, "genres": self.csv.genres_column}[feature]

    def has_item_feature(self, feature: str) -> bool:
        """Whether the loaded items will carry ``feature``: ``title``, ``genres``
        (built in, or from the item file's column) or an item-file column."""
        if feature in ("title", "genres") and getattr(self.provides, "titles" if feature == "title" else "genres"):
            return True
        if not self.provides.item_file or self.csv.items_path is None:
            return False
        return feature in self.csv.item_columns or (
            feature in ("title", "genres") and self.item_file_column(feature) is not None
        )


def streaming_sources() -> tuple[str, ...]:
    """The sources ``data.streaming`` reads."""
    return tuple(name for name, source in SOURCES.items() if source.streams)
