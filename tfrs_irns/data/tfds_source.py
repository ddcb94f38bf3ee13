"""MovieLens ratings through ``tensorflow_datasets``, as in the TFRS tutorials.

The tutorials read ``movielens/*-ratings``: one example per rating with
``user_id``, ``movie_id``, ``movie_title``, ``movie_genres`` (class indices),
``timestamp`` and ``user_rating``. We turn those into the common interaction
table and build the item table from the ratings themselves (first title and
genres seen per movie), so no separate ``*-movies`` dataset is needed.
"""

from __future__ import annotations

import socket
from typing import Optional

import numpy as np

from tfrs_irns.data.table import Interactions, ItemTable, RawDataset
from tfrs_irns.errors import DataError

SUPPORTED = (
    "movielens/100k-ratings",
    "movielens/1m-ratings",
    "movielens/latest-small-ratings",
)
# Genre labels that mean "no genre".
_NO_GENRE = {"(no genres listed)", "Unknown", "unknown"}
_BATCH = 1 << 16
# Where tfds downloads every MovieLens release from.
DOWNLOAD_HOST = "files.grouplens.org"


def _reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to ``host`` opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _strings(values: np.ndarray) -> np.ndarray:
    """UTF-8 bytes from TensorFlow → a numpy ``str`` array."""
    return np.char.decode(np.asarray(values, dtype=bytes), "utf-8")


def load_tfds(name: str, data_dir: Optional[str] = None) -> RawDataset:
    """The ``train`` split (all ratings) of the tfds dataset ``name``."""
    if name not in SUPPORTED:
        raise DataError(
            f"name: unsupported tfds dataset {name!r}; supported: {', '.join(SUPPORTED)}", arguments=["name"]
        )
    import tensorflow as tf
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        # Offline, download_and_prepare retries for minutes and ends in tracebacks: ask first.
        if not _reachable(DOWNLOAD_HOST):
            raise DataError(
                f"tfds {name} is not prepared in {builder.data_dir} and {DOWNLOAD_HOST} cannot be reached "
                "(offline?); prepare it on a connected machine (tfds build or tfds.builder(...).download_and_prepare()) "
                "and pass that folder as data_dir, or use source=movielens with path a local MovieLens folder or .zip",
                arguments=["data_dir", "source", "path"],
            )
        print(f"tfds: {name} is not prepared in {builder.data_dir}; downloading it now", flush=True)
        builder.download_and_prepare()
    genre_names = list(builder.info.features["movie_genres"].feature.names)
    names = tf.constant(genre_names)
    is_genre = tf.constant([g not in _NO_GENRE for g in genre_names])

    def select(x: dict) -> dict:
        genres = tf.unique(x["movie_genres"]).y  # first occurrence order
        genres = tf.boolean_mask(genres, tf.gather(is_genre, genres))
        return {
            "user_id": x["user_id"],
            "movie_id": x["movie_id"],
            "movie_title": x["movie_title"],
            "genres": tf.strings.reduce_join(tf.gather(names, genres), separator="|"),
            "timestamp": x["timestamp"],
            "user_rating": x["user_rating"],
        }

    ds = builder.as_dataset(split="train").map(select, num_parallel_calls=tf.data.AUTOTUNE)
    parts: dict[str, list[np.ndarray]] = {}
    for batch in ds.batch(_BATCH).prefetch(2).as_numpy_iterator():
        for key, value in batch.items():
            parts.setdefault(key, []).append(value)
    if not parts:
        raise DataError(f"tfds {name}: the dataset has no ratings")
    col = {key: np.concatenate(value) for key, value in parts.items()}
    movie_id = _strings(col["movie_id"])
    interactions = Interactions(
        user_id=_strings(col["user_id"]),
        item_id=movie_id,
        timestamp=col["timestamp"].astype(np.int64),
        rating=col["user_rating"].astype(np.float32),
    )
    item_id, first = np.unique(movie_id, return_index=True)
    items = ItemTable(
        item_id=item_id,
        title=_strings(col["movie_title"][first]),
        genres=_strings(col["genres"][first]),
    )
    description = (
        f"tfds {name}: {len(interactions):,} ratings, "
        f"{len(np.unique(interactions.user_id)):,} users, {len(items):,} movies"
    )
    return RawDataset(interactions=interactions, items=items, description=description)
