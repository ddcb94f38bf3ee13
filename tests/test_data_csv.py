"""CSV/TSV source: column mapping, optional columns, items file, bad rows."""

import logging

import numpy as np
import pytest

import tfrs_irns  # noqa: F401
from tfrs_irns.config import CsvConfig
from tfrs_irns.data.csv_source import load_csv
from tfrs_irns.errors import ConfigError, DataError
from tfrs_irns.runs.wording import in_config_words


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return str(path)


def test_csv_with_header_and_all_columns(tmp_path):
    path = write(
        tmp_path / "events.csv",
        "ts,who,what,stars,extra\n"
        "100,alice,m1,4.5,x\n"
        " 50 , bob ,m2,3,y\n"
        "\n"
        "75,alice,\"m,3\",1,z\n",
    )
    cfg = CsvConfig(user_column="who", item_column="what", timestamp_column="ts", rating_column="stars")
    raw = load_csv(path, cfg)
    inter = raw.interactions
    assert inter.user_id.tolist() == ["alice", "bob", "alice"]
    assert inter.item_id.tolist() == ["m1", "m2", "m,3"]
    assert inter.timestamp.tolist() == [100, 50, 75] and inter.timestamp.dtype == np.int64
    assert inter.rating.tolist() == [4.5, 3.0, 1.0] and inter.rating.dtype == np.float32
    assert sorted(raw.items.item_id.tolist()) == ["m,3", "m1", "m2"]
    assert raw.items.title is None and raw.skipped_rows == 0
    assert "3 interactions, 2 users, 3 items" in raw.description


@pytest.mark.parametrize("delimiter", ["\t", "\\t", "tab"])
def test_tsv_without_header_uses_positions(tmp_path, delimiter):
    path = write(tmp_path / "events.tsv", "u1\ti1\t7\nu2\ti2\t9\n")
    cfg = CsvConfig(
        user_column="0", item_column="1", timestamp_column="2", delimiter=delimiter, header=False
    )
    raw = load_csv(path, cfg)
    assert raw.interactions.user_id.tolist() == ["u1", "u2"]
    assert raw.interactions.item_id.tolist() == ["i1", "i2"]
    assert raw.interactions.timestamp.tolist() == [7, 9]


def test_no_timestamp_column_uses_row_order(tmp_path):
    path = write(tmp_path / "e.csv", "user_id,item_id\na,x\nb,y\na,z\n")
    raw = load_csv(path, CsvConfig(timestamp_column=None))
    assert raw.interactions.timestamp.tolist() == [0, 1, 2]
    assert raw.interactions.rating is None


def test_float_timestamps_are_truncated(tmp_path):
    path = write(tmp_path / "e.csv", "user_id,item_id,timestamp\na,x,1.9e3\nb,y,12.7\n")
    assert load_csv(path, CsvConfig()).interactions.timestamp.tolist() == [1900, 12]


def test_items_file_titles_and_genres(tmp_path):
    path = write(tmp_path / "e.csv", "user_id,item_id,timestamp\na,x,1\nb,y,2\n")
    items = write(
        tmp_path / "items.csv",
        'item_id,title,genres\nx,"Hello, World",Drama|Comedy\ny,Plain,\nz,Unused,Horror\n',
    )
    cfg = CsvConfig(items_path=items, genres_column="genres")
    raw = load_csv(path, cfg)
    assert raw.items.item_id.tolist() == ["x", "y", "z"]
    assert raw.items.title.tolist() == ["Hello, World", "Plain", "Unused"]
    assert raw.items.genres.tolist() == ["Drama|Comedy", "", "Horror"]


def test_declared_item_columns_are_read_and_aligned_to_the_vocabulary(tmp_path):
    from tfrs_irns.config import DataConfig
    from tfrs_irns.data.prepare import prepare_from_raw

    path = write(tmp_path / "e.csv", "user_id,item_id,timestamp\n" + "".join(f"u{k},{'xyz'[k % 3]},{k}\n" for k in range(30)))
    items = write(tmp_path / "items.csv", "item_id,title,brand\nx,X,Acme|Blue\ny,Y,\nz,Z,Zeta\n")
    cfg = CsvConfig(items_path=items, item_columns={"brand": "categorical"})
    raw = load_csv(path, cfg)
    assert raw.items.columns == {"brand": raw.items.columns["brand"]}
    assert raw.items.columns["brand"].tolist() == ["Acme|Blue", "", "Zeta"]
    data = prepare_from_raw(raw, DataConfig(source="csv", test_fraction=0.1, validation_fraction=0.0))
    by_id = dict(zip(data.item_vocab.ids.tolist(), data.item_columns["brand"][1:].tolist()))
    assert by_id == {"x": "Acme|Blue", "y": "", "z": "Zeta"} and data.item_columns["brand"][0] == ""


def test_a_declared_item_column_missing_from_the_file_names_the_key(tmp_path):
    path = write(tmp_path / "e.csv", "user_id,item_id,timestamp\na,x,1\n")
    items = write(tmp_path / "items.csv", "item_id,title\nx,X\n")
    with pytest.raises(DataError, match=r"no column 'brand' \(item_columns.brand\)") as err:
        load_csv(path, CsvConfig(items_path=items, item_columns={"brand": "text"}))
    assert "(data.csv.item_columns.brand)" in str(in_config_words(err.value))  # as a run reports it


def test_latin1_file_is_decoded(tmp_path):
    path = write(tmp_path / "e.csv", "user_id,item_id,timestamp\nJosé,café,1\n", encoding="latin-1")
    raw = load_csv(path, CsvConfig())
    assert raw.interactions.user_id.tolist() == ["José"]
    assert raw.interactions.item_id.tolist() == ["café"]


def test_missing_file_names_the_path(tmp_path):
    missing = str(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="nope.csv: no such file"):
        load_csv(missing, CsvConfig())


def test_missing_column_names_column_key_and_header(tmp_path):
    path = write(tmp_path / "e.csv", "user_id,item_id\na,x\n")
    with pytest.raises(DataError) as err:
        load_csv(path, CsvConfig())  # timestamp_column defaults to "timestamp"
    msg = str(err.value)
    assert "e.csv" in msg and "'timestamp'" in msg and "(timestamp_column)" in msg
    assert "'user_id', 'item_id'" in msg and "set timestamp_column=None" in msg
    msg = str(in_config_words(err.value))  # as a run reports it: the config's key and YAML's null
    assert "(data.csv.timestamp_column)" in msg and "set data.csv.timestamp_column=null" in msg


def test_missing_title_column_in_items_file(tmp_path):
    path = write(tmp_path / "e.csv", "user_id,item_id,timestamp\na,x,1\n")
    items = write(tmp_path / "items.csv", "item_id,name\nx,X\n")
    with pytest.raises(DataError, match=r"items.csv: no column 'title' \(title_column\)") as err:
        load_csv(path, CsvConfig(items_path=items))
    assert "(data.csv.title_column)" in str(in_config_words(err.value))


def test_headerless_needs_positions(tmp_path):
    path = write(tmp_path / "e.csv", "a,x,1\n")
    with pytest.raises(ConfigError, match="^user_column: with header=False, columns are given by 0-based position") as err:
        load_csv(path, CsvConfig(header=False))
    assert str(in_config_words(err.value)).startswith("data.csv.user_column: with data.csv.header=false, columns")


def test_empty_file_and_header_only(tmp_path):
    with pytest.raises(DataError, match="empty.csv: the file is empty"):
        load_csv(write(tmp_path / "empty.csv", ""), CsvConfig())
    with pytest.raises(DataError, match="head.csv: no interactions"):
        load_csv(write(tmp_path / "head.csv", "user_id,item_id,timestamp\n"), CsvConfig())


def test_bad_row_names_file_and_line(tmp_path):
    # The header line counts: the first data row is line 2.
    path = write(tmp_path / "bad.csv", "user_id,item_id,timestamp\na,x,1\nb,y\n")
    with pytest.raises(DataError) as err:
        load_csv(path, CsvConfig())
    assert str(err.value) == f"{path}, line 3: expected 3 columns, found 2"


def test_bad_rating_names_line(tmp_path):
    path = write(tmp_path / "r.csv", "user_id,item_id,timestamp,rating\na,x,1,5\nb,y,2,great\n")
    with pytest.raises(DataError, match=r"r.csv, line 3: rating 'great' is not a number"):
        load_csv(path, CsvConfig(rating_column="rating"))


def test_skip_bad_rows_counts_and_warns(tmp_path, caplog):
    path = write(
        tmp_path / "bad.csv",
        "user_id,item_id,timestamp\na,x,1\nb,y\nc,z,oops\nd,w,4\n",
    )
    items = write(tmp_path / "items.csv", "item_id,title\nx,X\ny,Y,extra\n")
    with caplog.at_level(logging.WARNING):
        raw = load_csv(path, CsvConfig(items_path=items), skip_bad_rows=True)
    assert raw.interactions.user_id.tolist() == ["a", "d"]
    assert raw.interactions.timestamp.tolist() == [1, 4]
    assert raw.items.item_id.tolist() == ["x"]
    assert raw.skipped_rows == 3
    messages = [r.getMessage() for r in caplog.records]
    assert any("bad.csv: skipped 2 malformed rows" in m and "first at line 3" in m for m in messages)
    assert any("items.csv: skipped 1 malformed row " in m and "line 3" in m for m in messages)


def test_skip_bad_rows_without_timestamps_keeps_row_order(tmp_path):
    path = write(tmp_path / "e.csv", "user_id,item_id\na,x\nb\nc,z\n")
    raw = load_csv(path, CsvConfig(timestamp_column=None), skip_bad_rows=True)
    assert raw.interactions.user_id.tolist() == ["a", "c"]
    assert raw.interactions.timestamp.tolist() == [0, 1]


def test_header_false_with_integer_positions_from_yaml(tmp_path):
    from tfrs_irns.config import load_config
    from tfrs_irns.data.csv_source import load_csv

    data = tmp_path / "log.tsv"
    data.write_text("u1\t5\ti1\nu2\t4\ti2\n", encoding="utf-8")
    cfg = load_config(None, ["data.csv.header=false", "data.csv.user_column=0", "data.csv.item_column=2",
                             "data.csv.timestamp_column=null", "data.csv.delimiter=tab"]).data.csv
    raw = load_csv(str(data), cfg)
    assert raw.interactions.user_id.tolist() == ["u1", "u2"] and raw.interactions.item_id.tolist() == ["i1", "i2"]


@pytest.mark.parametrize("engine", ["auto", "python"])
def test_iso_8601_timestamps_are_parsed(tmp_path, engine):
    """Finding 5: ISO-8601 times in a CSV become seconds since 1970, as a Parquet timestamp column does."""
    path = write(
        tmp_path / "iso.csv",
        "user_id,item_id,timestamp\n"
        "a,x,1997-12-04T15:55:49Z\n"
        "b,y,1997-12-04 16:55:49+01:00\n"
        "a,z,1970-01-02\n"
        "b,x,1997-12-04T15:55:50.9\n",
    )
    raw = load_csv(path, CsvConfig(), engine=engine)
    assert raw.interactions.timestamp.tolist() == [881250949, 881250949, 86400, 881250950]
    assert raw.interactions.timestamp.dtype == np.int64


def test_a_bad_time_says_what_a_time_can_be(tmp_path):
    path = write(tmp_path / "bad.csv", "user_id,item_id,timestamp\na,x,1997-12-04T15:55:49Z\nb,y,yesterday\n")
    expected = r"line 3: timestamp 'yesterday' is not a number or an ISO-8601 time \(such as 1997-12-04T15:55:49Z\)"
    with pytest.raises(DataError, match=expected):
        load_csv(path, CsvConfig())
