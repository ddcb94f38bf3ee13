"""The shared row reader: line numbers, value kinds, bad rows, chunking."""

import csv
import io
import logging

import numpy as np
import pytest

import tfrs_irns  # noqa: F401
import tfrs_irns.data.rows as rows_module
from tfrs_irns.data.rows import Field, RowReader, decode_bytes, int_strings, iter_rows
from tfrs_irns.errors import DataError

# The interaction columns of a CSV with the header user_id,item_id,timestamp.
INTERACTIONS = [Field("user id", 0, "str"), Field("item id", 1, "str"), Field("timestamp", 2, "time")]


def read(text, fields=INTERACTIONS, delimiter=",", header=True, skip_bad_rows=False, source="bad.csv"):
    """``(columns, reader)`` of ``text``; a header row fixes the column count."""
    rows = iter_rows(io.StringIO(text, newline=""), delimiter)
    width = len(next(rows)[1]) if header else None
    reader = RowReader(fields, source, width, skip_bad_rows)
    return reader.read(rows), reader


def test_iter_rows_numbers_lines_and_skips_blank_ones():
    text = 'a,b\n\n"multi\nline",x\n  \nlast,"with, comma"\n'
    assert list(iter_rows(io.StringIO(text, newline=""), ",")) == [
        (1, ["a", "b"]),
        (3, ["multi\nline", "x"]),  # a quoted line break: the row starts on line 3
        (6, ["last", "with, comma"]),
    ]


def test_iter_rows_multi_character_delimiter_is_a_plain_split():
    text = '1::"Title, The"::Drama\r\n\n2::B::\n'
    assert list(iter_rows(io.StringIO(text, newline=""), "::")) == [
        (1, ["1", '"Title, The"', "Drama"]),
        (3, ["2", "B", ""]),
    ]


def test_every_kind_converts_to_its_type():
    fields = [
        Field("name", 0, "str"),
        Field("note", 1, "text"),
        Field("id", 2, "id"),
        Field("rating", 3, "float"),
        Field("time", 4, "time"),
        Field("flag", 5, "flag"),
    ]
    columns, reader = read(" a ,,007,4.5,1.9e3,1\nb, x ,-3.0,1,12,0\n", fields, header=False)
    name, note, ids, rating, time, flag = columns
    assert name.tolist() == ["a", "b"] and note.tolist() == ["", "x"]
    assert ids.tolist() == ["7", "-3"] and ids.dtype == np.dtype("<U2")  # canonical, narrow
    assert rating.tolist() == [4.5, 1.0] and rating.dtype == np.float32
    assert time.tolist() == [1900, 12] and time.dtype == np.int64
    assert flag.tolist() == [True, False] and flag.dtype == bool
    assert reader.num_columns == 6 and reader.skipped == 0


def test_no_rows_gives_empty_columns_of_each_type():
    fields = [Field("id", 0, "id"), Field("rating", 1, "float"), Field("time", 2, "time")]
    (ids, rating, time), _ = read("", fields, header=False)
    assert ids.shape == rating.shape == time.shape == (0,)
    assert rating.dtype == np.float32 and time.dtype == np.int64


BAD_ROWS = [
    # (body after the header, 1-based line of the first bad row, message part)
    ("a,x,1\nb,y\nc,z,3\n", 3, "expected 3 columns, found 2"),
    ("a,x,1\n\nb,y,soon\n", 4, "timestamp 'soon' is not a number or an ISO-8601 time (such as 1997-12-04T15:55:49Z)"),
    ("a,x,1\nb,y,nan\n", 3, "timestamp 'nan' is not a number or an ISO-8601 time (such as 1997-12-04T15:55:49Z)"),
    ("a,x,1\n ,y,2\n", 3, "user id ' ' is empty"),
    ("a,x,1\nb,y,2,9\n", 3, "expected 3 columns, found 4"),
    ('a,"multi\nline",1\nb,,2\n', 4, "item id '' is empty"),
]


@pytest.mark.parametrize("body,line,problem", BAD_ROWS)
def test_bad_row_names_source_and_line(body, line, problem):
    with pytest.raises(DataError) as err:
        read("user_id,item_id,timestamp\n" + body)
    assert str(err.value) == f"bad.csv, line {line}: {problem}"


@pytest.mark.parametrize(
    "text,problem",
    [
        ("2.5,1,0\n", "id '2.5' is not an integer id"),
        ("9007199254740992,1,0\n", "id '9007199254740992' is not an integer id"),  # 2**53: beyond exact floats
        ("1,inf,0\n", "rating 'inf' is not a number"),
        ("1,1,2\n", "flag '2' is not 0 or 1"),
    ],
)
def test_bad_values_of_each_kind(text, problem):
    fields = [Field("id", 0, "id"), Field("rating", 1, "float"), Field("flag", 2, "flag")]
    with pytest.raises(DataError) as err:
        read(text, fields, header=False)
    assert str(err.value) == f"bad.csv, line 1: {problem}"


def test_first_bad_row_is_reported_across_kinds_of_problem():
    # A bad value on line 3 comes before a wrong column count on line 4.
    with pytest.raises(DataError, match=r"bad.csv, line 3: timestamp 'zz'"):
        read("user_id,item_id,timestamp\na,x,1\nb,y,zz\nc,z\n")


def test_without_a_width_the_first_row_sets_it():
    with pytest.raises(DataError, match=r"^bad.csv, line 1: expected at least 3 columns, found 2$"):
        read("a,x\nb,y,1\n", header=False)
    (user, _, _), reader = read("a,x\nb,y,1\nc,z,2,extra\nd,w,3\n", header=False, skip_bad_rows=True)
    assert user.tolist() == ["b", "d"] and reader.num_columns == 3 and reader.skipped == 2


def test_skip_bad_rows_counts_remembers_the_first_and_warns(caplog):
    text = "user_id,item_id,timestamp\na,x,1\nb,y\nc,z,oops\nd,w,4\n"
    (user, _, time), reader = read(text, skip_bad_rows=True)
    assert user.tolist() == ["a", "d"] and time.tolist() == [1, 4]
    assert reader.skipped == 2 and reader.first_problem == (3, "expected 3 columns, found 2")
    with caplog.at_level(logging.WARNING):
        reader.warn()
    assert [r.getMessage() for r in caplog.records] == [
        "bad.csv: skipped 2 malformed rows (skip_bad_rows); first at line 3: expected 3 columns, found 2"
    ]


def test_nothing_skipped_logs_nothing(caplog):
    _, reader = read("user_id,item_id,timestamp\na,x,1\n")
    with caplog.at_level(logging.WARNING):
        reader.warn()
    assert caplog.records == []


def test_large_input_matches_csv_module_oracle(monkeypatch):
    # More rows than one conversion chunk, with a bad row near the end.
    rng = np.random.default_rng(0)
    n = 3000
    users = rng.integers(100, size=n)
    lines = [f"u{u},i{i},{t}" for u, i, t in zip(users, rng.integers(50, size=n), rng.integers(10**9, size=n))]
    lines[2500] = "bad,row"
    text = "user_id,item_id,timestamp\n" + "\n".join(lines) + "\n"
    monkeypatch.setattr(rows_module, "_CHUNK_ROWS", 512)
    with pytest.raises(DataError, match=r"big.csv, line 2502: expected 3 columns, found 2"):
        read(text, source="big.csv")
    (user, item, time), _ = read(text, skip_bad_rows=True, source="big.csv")
    oracle = [r for r in csv.reader(io.StringIO(text, newline=""))][1:]
    oracle = [r for r in oracle if len(r) == 3]
    assert user.tolist() == [r[0] for r in oracle]
    assert item.tolist() == [r[1] for r in oracle]
    assert time.tolist() == [int(r[2]) for r in oracle]


def test_int_strings_is_canonical_and_narrow():
    out = int_strings(np.array([5, -12, 300], np.int64))
    assert out.tolist() == ["5", "-12", "300"] and out.dtype == np.dtype("<U3")
    assert int_strings(np.zeros(0, np.int64)).shape == (0,)


def test_decode_bytes_utf8_bom_and_latin1_fallback():
    assert decode_bytes("\ufeffcafé".encode("utf-8")) == "café"
    assert decode_bytes("José".encode("latin-1")) == "José"
