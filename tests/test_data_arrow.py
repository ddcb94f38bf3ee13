"""The pyarrow CSV path against the line reader: same tables, same errors; coded ids."""

import dataclasses
import logging

import numpy as np
import pytest

import tfrs_irns  # noqa: F401
from tfrs_irns.config import CsvConfig, DataConfig
from tfrs_irns.data import arrow_source
from tfrs_irns.data.csv_source import load_csv
from tfrs_irns.data.prepare import prepare_from_raw
from tfrs_irns.data.table import CodedIds, Interactions, ItemTable, RawDataset
from tfrs_irns.errors import UserError

HEADER = "user_id,item_id,timestamp\n"
# (name, file bytes, CsvConfig overrides, skip_bad_rows, pyarrow reads it itself when it loads)
CASES = [
    ("all columns, quoted comma", b'ts,who,what,stars,extra\n100,alice,m1,4.5,x\n75,alice,"m,3",1,z\n',
     dict(user_column="who", item_column="what", timestamp_column="ts", rating_column="stars"), False, True),
    ("spaces around values", b"ts,who,what\n100,alice,m1\n 50 , bob ,m2\n",
     dict(user_column="who", item_column="what", timestamp_column="ts"), False, True),
    ("blank line", HEADER.encode() + b"a,x,1\n\nb,y,2\n", {}, False, True),
    ("whitespace-only line", HEADER.encode() + b"a,x,1\n  \nb,y,2\n", {}, False, False),
    ("tsv without header", b"u1\ti1\t7\nu2\ti2\t9\n",
     dict(user_column="0", item_column="1", timestamp_column="2", delimiter="\t", header=False), False, True),
    ("no timestamp column", b"user_id,item_id\na,x\nb,y\na,z\n", dict(timestamp_column=None), False, True),
    ("float timestamps", HEADER.encode() + b"a,x,1.9e3\nb,y,12.7\n", {}, False, False),
    ("plus sign", HEADER.encode() + b"a,x,+5\n", {}, False, False),
    ("utf-8 BOM", b"\xef\xbb\xbf" + HEADER.encode() + b"a,x,1\n", {}, False, True),
    ("BOM without header", b"\xef\xbb\xbfa,x,1\nb,y,2\n",
     dict(user_column="0", item_column="1", timestamp_column="2", header=False), False, True),
    ("CRLF", (HEADER + "a,x,1\r\nb,y,2\r\n").replace("\n", "\r\n").encode(), {}, False, True),
    ("unicode ids", (HEADER + "José,café,1\n用户,物品,2\nJosé,🎬,3\n").encode(), {}, False, True),
    ("latin-1", (HEADER + "José,café,1\n").encode("latin-1"), {}, False, False),
    ("quoted line break", HEADER.encode() + b'a,"multi\nline",1\nb,z,2\n', {}, False, True),
    ("quoted header", b'"user_id","item_id","timestamp"\na,x,1\n', {}, False, True),
    ("header quote spanning lines", b'"user_id,item\n_id",item_id,timestamp\na,x,1\n', {}, False, False),
    ("same id spelled with spaces", HEADER.encode() + b"a,x,1\n a ,x ,2\n", {}, False, True),
    ("ratings", HEADER.encode()[:-1] + b",rating\na,x,1,5\nb,y,2,3.5\n", dict(rating_column="rating"), False, True),
    ("header only", HEADER.encode(), {}, False, True),
    ("empty file", b"", {}, False, False),
    ("missing column", b"user_id,item_id\na,x\n", {}, False, False),
    ("headerless position out of range", b"a,x\n", dict(user_column="0", item_column="1",
     timestamp_column="5", header=False), False, False),
    # bad rows: the error (or the skip count) must be the line reader's
    ("short row", HEADER.encode() + b"a,x,1\nb,y\nc,z,3\n", {}, False, False),
    ("long row", HEADER.encode() + b"a,x,1\nb,y,2,9\n", {}, False, False),
    ("word for a time", HEADER.encode() + b"a,x,1\n\nb,y,soon\n", {}, False, False),
    ("nan time", HEADER.encode() + b"a,x,1\nb,y,nan\n", {}, False, False),
    ("NA time", HEADER.encode() + b"a,x,1\nb,y,NA\n", {}, False, False),
    ("empty time", HEADER.encode() + b"a,x,1\nb,y,\n", {}, False, False),
    ("blank user", HEADER.encode() + b"a,x,1\n ,y,2\n", {}, False, False),
    ("empty item after quoted break", HEADER.encode() + b'a,"multi\nline",1\nb,,2\n', {}, False, False),
    ("inf rating", HEADER.encode()[:-1] + b",rating\na,x,1,inf\n", dict(rating_column="rating"), False, False),
    ("bad rows skipped", HEADER.encode() + b"a,x,1\nb,y\nc,z,oops\nd,w,4\n", {}, True, False),
    ("bad rows skipped, no time", b"user_id,item_id\na,x\nb\nc,z\n", dict(timestamp_column=None), True, False),
]


def _outcome(path, cfg, skip, engine):
    try:
        raw = load_csv(path, cfg, skip_bad_rows=skip, engine=engine)
    except UserError as exc:
        return ("error", type(exc).__name__, str(exc))
    return raw


def _assert_same_arrays(a, b):
    assert (a is None) == (b is None)
    if a is not None:
        assert a.dtype == b.dtype or (a.dtype.kind == b.dtype.kind == "U")
        assert a.tolist() == b.tolist()


@pytest.mark.parametrize("name,data,overrides,skip,fast", CASES, ids=[c[0] for c in CASES])
def test_pyarrow_and_line_reader_agree(tmp_path, name, data, overrides, skip, fast):
    path = tmp_path / "events.csv"
    path.write_bytes(data)
    cfg = CsvConfig(**overrides)
    auto = _outcome(str(path), cfg, skip, "auto")
    python = _outcome(str(path), cfg, skip, "python")
    if isinstance(python, tuple):
        assert auto == python  # same exception type and message (file, line, column)
        return
    assert not isinstance(auto, tuple), auto
    for field in ("user_id", "item_id", "timestamp", "rating"):
        _assert_same_arrays(getattr(auto.interactions, field), getattr(python.interactions, field))
    _assert_same_arrays(auto.items.item_id, python.items.item_id)
    assert auto.skipped_rows == python.skipped_rows and auto.description == python.description
    # Only the pyarrow path codes the ids: proves which path answered.
    assert (auto.interactions.user_codes is not None) == fast
    if fast:
        for ids, coded in ((auto.interactions.user_id, auto.interactions.user_codes),
                           (auto.interactions.item_id, auto.interactions.item_codes)):
            assert coded.strings().tolist() == ids.tolist()
            assert coded.values.tolist() == sorted(set(coded.values.tolist()))


def test_items_file_through_pyarrow_matches(tmp_path):
    events = tmp_path / "e.csv"
    events.write_text("user_id,item_id,timestamp\na,x,1\nb,y,2\n")
    items = tmp_path / "items.csv"
    items.write_text('item_id,title,genres\nx,"Hello, World",Drama|Comedy\ny, Plain ,\nz,Unused,Horror\n')
    cfg = CsvConfig(items_path=str(items), genres_column="genres")
    auto, python = (load_csv(str(events), cfg, engine=e) for e in ("auto", "python"))
    for field in ("item_id", "title", "genres"):
        assert getattr(auto.items, field).tolist() == getattr(python.items, field).tolist()
    assert auto.items.title.tolist() == ["Hello, World", "Plain", "Unused"]


def test_fallback_is_logged(tmp_path, caplog):
    path = tmp_path / "e.csv"
    path.write_text(HEADER + "a,x,1\nb,y\n")
    with caplog.at_level(logging.INFO, logger="tfrs_irns.data.arrow_source"), pytest.raises(UserError):
        load_csv(str(path), CsvConfig())
    assert any("reading it line by line" in r.getMessage() for r in caplog.records)


def test_large_file_many_blocks_matches(tmp_path, monkeypatch):
    # Small parse blocks: many per-block dictionaries must unify to one code space.
    monkeypatch.setattr(arrow_source, "_BLOCK_SIZE", 1 << 10)
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 50, 3000), rng.integers(0, 300, 3000)
    path = tmp_path / "big.csv"
    path.write_text(HEADER + "".join(f"u{u},i{i},{t}\n" for t, (u, i) in enumerate(zip(users, items))))
    auto, python = (load_csv(str(path), CsvConfig(), engine=e) for e in ("auto", "python"))
    assert auto.interactions.user_codes is not None
    assert auto.interactions.user_id.tolist() == python.interactions.user_id.tolist()
    assert auto.interactions.item_id.tolist() == python.interactions.item_id.tolist()


def test_unknown_engine_is_refused(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text(HEADER + "a,x,1\n")
    with pytest.raises(ValueError, match="engine"):
        load_csv(str(path), CsvConfig(), engine="rust")


def _strip_codes(raw: RawDataset) -> RawDataset:
    inter = dataclasses.replace(raw.interactions, user_codes=None, item_codes=None)
    return dataclasses.replace(raw, interactions=inter)


@pytest.mark.parametrize("split", ["random", "temporal", "leave_last_out"])
def test_coded_ids_prepare_the_same_data(split):
    rng = np.random.default_rng(1)
    n = 2000
    user = np.array([f"u{i}" for i in rng.integers(0, 90, n)])
    item = np.array([f"i{i}" for i in rng.zipf(1.5, n) % 400])
    inter = Interactions(
        user_id=user, item_id=item, timestamp=rng.integers(0, 50, n).astype(np.int64),
        user_codes=CodedIds.from_strings(user), item_codes=CodedIds.from_strings(item),
    )
    raw = RawDataset(inter, ItemTable(np.unique(item)))
    cfg = DataConfig(source="csv", split=split)
    coded, plain = prepare_from_raw(raw, cfg), prepare_from_raw(_strip_codes(raw), cfg)
    assert coded.user_vocab.ids.tolist() == plain.user_vocab.ids.tolist()
    assert coded.item_vocab.ids.tolist() == plain.item_vocab.ids.tolist()
    for name in ("train", "validation", "test"):
        a, b = getattr(coded, name), getattr(plain, name)
        assert a.user.tolist() == b.user.tolist() and a.item.tolist() == b.item.tolist()
    assert (coded.test.item == 0).any() or split == "random"  # cold items occur: OOV handled alike


def test_integer_ids_are_coded_in_string_order():
    pa = pytest.importorskip("pyarrow")
    values, coded = arrow_source._column(pa.chunked_array([[9, 10, 9, 100, -1]]), "id")
    assert values is None  # ids come back as codes only
    assert coded.values.tolist() == ["-1", "10", "100", "9"]
    assert coded.strings().tolist() == ["9", "10", "9", "100", "-1"]


@pytest.mark.parametrize("ids", [[9, 10, 9, 100, -1], [5, 10**12, -(10**12), 5, 7], [3], []])
def test_integer_codes_dense_or_sparse_match_the_string_oracle(ids):
    coded = arrow_source.integer_codes(np.array(ids, np.int64))
    strings = np.array([str(i) for i in ids], dtype=str)
    assert coded.strings().tolist() == strings.tolist()
    assert coded.values.tolist() == sorted(set(strings.tolist()))
