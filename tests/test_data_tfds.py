"""tfds source, exercised only through ``tfds.testing.mock_data``.

An autouse guard makes any real ``download_and_prepare`` fail at once, so no
test can start a download (inside ``mock_data`` tfds replaces it by a no-op).
"""

import numpy as np
import pytest

import tfrs_irns  # noqa: F401
import tensorflow as tf
import tensorflow_datasets as tfds

from tfrs_irns.data import tfds_source
from tfrs_irns.data.tfds_source import SUPPORTED, load_tfds

REAL_REACHABLE = tfds_source._reachable
from tfrs_irns.errors import DataError  # noqa: E402


class RealDownloadReached(AssertionError):
    pass


@pytest.fixture(autouse=True)
def no_real_download(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise RealDownloadReached(f"a test reached a real download of {self.name}")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", refuse)
    # As if online, so the flow reaches download_and_prepare (mocked or refused).
    monkeypatch.setattr(tfds_source, "_reachable", lambda host, **kwargs: True)


def test_offline_and_not_prepared_stops_at_once_without_downloading(tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(tfds_source, "_reachable", lambda host, **kwargs: asked.append(host) or False)
    with pytest.raises(DataError, match=r"is not prepared in .* and files.grouplens.org cannot be reached \(offline\?\)"):
        load_tfds("movielens/100k-ratings", str(tmp_path))
    assert asked == ["files.grouplens.org"]


def test_reachable_is_false_for_a_closed_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connection refused
        assert REAL_REACHABLE("127.0.0.1", port=port, timeout=1.0) is False


def test_guard_stops_a_real_download(tmp_path):
    with pytest.raises(RealDownloadReached):
        load_tfds("movielens/100k-ratings", str(tmp_path))
    assert not any(tmp_path.iterdir())


def test_unsupported_name_lists_the_supported_ones():
    with pytest.raises(DataError) as err:
        load_tfds("movielens/25m-ratings", None)
    msg = str(err.value)
    assert "'movielens/25m-ratings'" in msg
    for name in SUPPORTED:
        assert name in msg


def oracle(name):
    """Examples read directly from the (mocked) builder, in Python."""
    builder = tfds.builder(name)
    genre_names = builder.info.features["movie_genres"].feature.names
    rows = list(tfds.as_numpy(builder.as_dataset(split="train")))
    return rows, genre_names


def joined(genres, names):
    seen = []
    for g in genres.tolist():
        if names[g] not in ("(no genres listed)", "Unknown") and names[g] not in seen:
            seen.append(names[g])
    return "|".join(seen)


@pytest.mark.slow
@pytest.mark.parametrize("name", SUPPORTED)
def test_mocked_dataset_matches_python_oracle(name, capsys):
    with tfds.testing.mock_data(num_examples=40):
        raw = load_tfds(name, None)
        rows, names = oracle(name)
    assert "downloading it now" in capsys.readouterr().out  # mock data is "not prepared"
    inter = raw.interactions
    assert len(inter) == 40
    assert inter.user_id.tolist() == [r["user_id"].decode() for r in rows]
    assert inter.item_id.tolist() == [r["movie_id"].decode() for r in rows]
    assert inter.timestamp.tolist() == [int(r["timestamp"]) for r in rows]
    assert inter.timestamp.dtype == np.int64 and inter.rating.dtype == np.float32
    assert np.allclose(inter.rating, [r["user_rating"] for r in rows])
    first = {}
    for r in rows:
        first.setdefault(r["movie_id"].decode(), r)
    assert raw.items.item_id.tolist() == sorted(first)
    assert raw.items.title.tolist() == [first[m]["movie_title"].decode() for m in sorted(first)]
    assert raw.items.genres.tolist() == [joined(first[m]["movie_genres"], names) for m in sorted(first)]
    assert name in raw.description


def test_item_table_from_repeated_movies_hand_made():
    def as_dataset(self, *args, **kwargs):
        return tf.data.Dataset.from_tensor_slices(
            {
                "user_id": [b"7", b"8", b"7"],
                "movie_id": [b"50", b"9", b"50"],
                "movie_title": [b"Star Wars (1977)", b"Caf\xc3\xa9 (1995)", b"Star Wars again"],
                # 0 Action, 4 Comedy, 20 "(no genres listed)"; 0 repeated.
                "movie_genres": tf.ragged.constant([[0, 4, 0], [20], [1]], dtype=tf.int64),
                "timestamp": tf.constant([5, 3, 9], tf.int64),
                "user_rating": [4.0, 2.0, 5.0],
            }
        )

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        raw = load_tfds("movielens/1m-ratings", None)
    assert raw.interactions.user_id.tolist() == ["7", "8", "7"]
    assert raw.interactions.item_id.tolist() == ["50", "9", "50"]
    assert raw.interactions.rating.tolist() == [4.0, 2.0, 5.0]
    assert raw.items.item_id.tolist() == ["50", "9"]
    assert raw.items.title.tolist() == ["Star Wars (1977)", "Café (1995)"]  # first seen wins
    assert raw.items.genres.tolist() == ["Action|Comedy", ""]


def test_empty_dataset_is_an_error():
    def as_dataset(self, *args, **kwargs):
        return tf.data.Dataset.from_tensor_slices(
            {
                "user_id": tf.constant([], tf.string),
                "movie_id": tf.constant([], tf.string),
                "movie_title": tf.constant([], tf.string),
                "movie_genres": tf.ragged.constant([], dtype=tf.int64, ragged_rank=1),
                "timestamp": tf.constant([], tf.int64),
                "user_rating": tf.constant([], tf.float32),
            }
        )

    with tfds.testing.mock_data(as_dataset_fn=as_dataset):
        with pytest.raises(DataError, match="movielens/100k-ratings: the dataset has no ratings"):
            load_tfds("movielens/100k-ratings", None)
