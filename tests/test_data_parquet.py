"""Parquet source: round trip against the CSV source, folders, types, missing values."""

import logging

import numpy as np
import pytest

import tfrs_irns  # noqa: F401
from tfrs_irns.config import CsvConfig, DataConfig
from tfrs_irns.data.csv_source import load_csv
from tfrs_irns.data.parquet_source import load_parquet
from tfrs_irns.data.sources import load_raw
from tfrs_irns.errors import ConfigError, DataError
from tfrs_irns.runs.wording import in_config_words

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def _events(n=500, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "user_id": [f"u{i}" for i in rng.integers(0, 40, n)],
        "item_id": [f"i{i}" for i in rng.integers(0, 90, n)],
        "timestamp": rng.integers(0, 10**9, n).tolist(),
        "rating": rng.integers(1, 6, n).astype(float).tolist(),
    }


def test_round_trip_equals_the_csv_source(tmp_path):
    data = _events()
    csv = tmp_path / "e.csv"
    csv.write_text(
        "user_id,item_id,timestamp,rating\n"
        + "".join(f"{u},{i},{t},{r:g}\n" for u, i, t, r in zip(*data.values()))
    )
    pq.write_table(pa.table(data), tmp_path / "e.parquet")
    cfg = CsvConfig(rating_column="rating")
    a, b = load_csv(str(csv), cfg), load_parquet(str(tmp_path / "e.parquet"), cfg)
    for field in ("user_id", "item_id", "timestamp", "rating"):
        assert getattr(a.interactions, field).tolist() == getattr(b.interactions, field).tolist()
    assert b.interactions.timestamp.dtype == np.int64 and b.interactions.rating.dtype == np.float32
    assert a.items.item_id.tolist() == b.items.item_id.tolist()
    assert b.description.startswith("Parquet ") and "500 interactions" in b.description


def test_folder_of_files_in_sorted_order_through_load_raw(tmp_path):
    data = _events(300)
    folder = tmp_path / "log"
    (folder / "day=2").mkdir(parents=True)
    table = pa.table(data)
    pq.write_table(table.slice(0, 100), folder / "a.parquet")
    pq.write_table(table.slice(100, 200), folder / "day=2" / "b.parquet")
    (folder / "_SUCCESS").write_text("")
    raw = load_raw(DataConfig(source="parquet", path=str(folder), duplicates="keep_all"))  # row order, not dedup
    assert raw.interactions.user_id.tolist() == data["user_id"]
    assert raw.interactions.timestamp.tolist() == data["timestamp"]


def test_integer_ids_timestamp_types_and_no_timestamp(tmp_path):
    table = pa.table({
        "u": pa.array([10, 9, 10], pa.int32()),
        "i": pa.array(["x", "y", "x"]).dictionary_encode(),
        "when": pa.array([1_000_000_000_000, 2_000_000_000_000, 3_000_000_000_000], pa.timestamp("ms")),
        "f": pa.array([1.9, 2.5, -0.5]),
    })
    pq.write_table(table, tmp_path / "t.parquet")
    raw = load_parquet(str(tmp_path / "t.parquet"), CsvConfig(user_column="u", item_column="i", timestamp_column="when"))
    assert raw.interactions.user_id.tolist() == ["10", "9", "10"]
    assert raw.interactions.item_id.tolist() == ["x", "y", "x"]
    assert raw.interactions.timestamp.tolist() == [1_000_000_000, 2_000_000_000, 3_000_000_000]
    floats = load_parquet(str(tmp_path / "t.parquet"), CsvConfig(user_column="u", item_column="i", timestamp_column="f"))
    assert floats.interactions.timestamp.tolist() == [1, 2, -1]  # floor, as the CSV reader
    order = load_parquet(str(tmp_path / "t.parquet"), CsvConfig(user_column="u", item_column="i", timestamp_column=None))
    assert order.interactions.timestamp.tolist() == [0, 1, 2]


def test_missing_value_names_file_row_and_column(tmp_path, caplog):
    table = pa.table({"user_id": ["a", None, "c", "d"], "item_id": ["x", "y", None, "w"], "timestamp": [1, 2, 3, 4]})
    path = str(tmp_path / "m.parquet")
    pq.write_table(table, path)
    with pytest.raises(DataError) as err:
        load_parquet(path, CsvConfig())
    assert str(err.value) == f"{path}, row 2: user id (column 'user_id') is missing"
    with caplog.at_level(logging.WARNING):
        raw = load_parquet(path, CsvConfig(), skip_bad_rows=True)
    assert raw.interactions.user_id.tolist() == ["a", "d"] and raw.skipped_rows == 2
    assert any("skipped 2 rows with missing values" in r.getMessage() for r in caplog.records)


def test_errors_name_the_file_and_key(tmp_path):
    pq.write_table(pa.table({"user_id": ["a"], "item": ["x"], "timestamp": [1]}), tmp_path / "c.parquet")
    no_column = r"c.parquet: no column 'item_id' \(item_column\); the file has 'user_id', 'item', 'timestamp'"
    with pytest.raises(DataError, match=no_column) as err:
        load_parquet(str(tmp_path / "c.parquet"), CsvConfig())
    assert "no column 'item_id' (data.csv.item_column);" in str(in_config_words(err.value))  # as a run reports it
    with pytest.raises(DataError, match="nope: no such file or folder"):
        load_parquet(str(tmp_path / "nope"), CsvConfig())
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: the folder holds no .parquet files"):
        load_parquet(str(tmp_path / "empty"), CsvConfig())
    (tmp_path / "text.parquet").write_text("user_id,item_id\n")
    with pytest.raises(DataError, match="text.parquet: not a Parquet file"):
        load_parquet(str(tmp_path / "text.parquet"), CsvConfig())
    pq.write_table(pa.table({"user_id": [1.5], "item_id": ["x"], "timestamp": [1]}), tmp_path / "f.parquet")
    with pytest.raises(DataError, match=r"column 'user_id' \(user_column\): has type double") as err:
        load_parquet(str(tmp_path / "f.parquet"), CsvConfig())
    assert "column 'user_id' (data.csv.user_column): has type double" in str(in_config_words(err.value))
    pq.write_table(pa.table({"user_id": [""], "item_id": ["x"], "timestamp": [1]}), tmp_path / "e.parquet")
    with pytest.raises(DataError, match="holds an empty id"):
        load_parquet(str(tmp_path / "e.parquet"), CsvConfig())
    with pytest.raises(ConfigError, match="^path: required when source is 'parquet'") as err:
        load_raw(DataConfig(source="parquet"))
    assert str(in_config_words(err.value)).startswith("data.path: required when data.source is 'parquet'")


def test_items_file_may_be_parquet(tmp_path):
    pq.write_table(pa.table(_events(50)), tmp_path / "e.parquet")
    pq.write_table(pa.table({"item_id": ["i1", "i2"], "title": [" One ", "Two"]}), tmp_path / "items.parquet")
    raw = load_parquet(str(tmp_path / "e.parquet"), CsvConfig(items_path=str(tmp_path / "items.parquet")))
    assert raw.items.item_id.tolist() == ["i1", "i2"] and raw.items.title.tolist() == ["One", "Two"]


def test_iso_8601_text_timestamps_equal_the_csv_and_timestamp_columns(tmp_path):
    """Finding 5, Parquet side: times as ISO-8601 text read as the CSV reads them and as a timestamp column."""
    times = ["1997-12-04T15:55:49Z", "1997-12-04 16:55:49+01:00", "1970-01-02"]
    seconds = [881250949, 881250949, 86400]
    table = pa.table({"user_id": ["a", "b", "a"], "item_id": ["x", "y", "z"], "timestamp": times,
                      "as_type": pa.array([s * 1000 for s in seconds], pa.timestamp("ms"))})
    pq.write_table(table, tmp_path / "t.parquet")
    assert load_parquet(str(tmp_path / "t.parquet"), CsvConfig()).interactions.timestamp.tolist() == seconds
    typed = load_parquet(str(tmp_path / "t.parquet"), CsvConfig(timestamp_column="as_type"))
    assert typed.interactions.timestamp.tolist() == seconds
    (tmp_path / "t.csv").write_text("user_id,item_id,timestamp\n" + "".join(
        f"{u},{i},{t}\n" for u, i, t in zip("aba", "xyz", times)))
    assert load_csv(str(tmp_path / "t.csv"), CsvConfig()).interactions.timestamp.tolist() == seconds
    pq.write_table(pa.table({"user_id": ["a"], "item_id": ["x"], "timestamp": ["soon"]}), tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"bad.parquet: column 'timestamp' .*row 1: 'soon' is not a number or an ISO-8601"):
        load_parquet(str(tmp_path / "bad.parquet"), CsvConfig())
