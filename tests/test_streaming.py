"""data.streaming: the bounded-memory pass, its shards and cache, against the in-memory path and oracles."""

import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tfrs_irns  # noqa: F401
from tfrs_irns.batching.shards import ShardPipeline
from tfrs_irns.config import CsvConfig, DataConfig, from_dict
from tfrs_irns.data import streaming
from tfrs_irns.data.prepare import prepare_data
from tfrs_irns.data.streaming import id_hashes, pair_uniform, prepare_streamed
from tfrs_irns.errors import ConfigError, DataError
from tfrs_irns.runs.wording import in_config_words


def _log(seed=0, users=40, items=60, rows=900):
    """A log with no repeated (user, item) pair, with time ties (broken by row order)."""
    rng = np.random.default_rng(seed)
    pairs = rng.choice(users * items, rows, replace=False)
    return pairs // items, pairs % items, rng.integers(0, 50, rows)


def _write_csv(path, users, items, times):
    with open(path, "w") as fh:
        fh.write("u,i,t\n")
        for u, i, t in zip(users, items, times):
            fh.write(f"u{u},{i},{t}\n")


def _write_parquet_folder(folder, users, items, times, parts=3):
    os.makedirs(folder)
    for k, rows in enumerate(np.array_split(np.arange(len(users)), parts)):
        table = pa.table({"u": [f"u{x}" for x in users[rows]], "i": items[rows].astype(np.int64), "t": times[rows]})
        pq.write_table(table, os.path.join(folder, f"part-{k}.parquet"))


def _cfg(path, source="csv", split="leave_last_out", **kw):
    return DataConfig(
        source=source, path=str(path), split=split, duplicates="keep_all", streaming=True,
        csv=CsvConfig(user_column="u", item_column="i", timestamp_column="t"), **kw,
    )


def _pairs(split):
    return sorted(zip(split.user.tolist(), split.item.tolist(), split.timestamp.tolist()))


@pytest.mark.parametrize("source", ["csv", "parquet"])
def test_leave_last_out_matches_the_in_memory_path(tmp_path, monkeypatch, source):
    # Small batches and shards: the per-user state must carry across batches and files.
    monkeypatch.setattr(streaming, "BATCH_ROWS", 64)
    monkeypatch.setattr(streaming, "CHUNK", 50)
    monkeypatch.setattr(streaming, "SHARD_ROWS", 200)
    u, i, t = _log()
    if source == "csv":
        path = tmp_path / "log.csv"
        _write_csv(path, u, i, t)
    else:
        path = tmp_path / "log"
        _write_parquet_folder(path, u, i, t)
    cfg = _cfg(path, source)
    streamed = prepare_streamed(cfg, str(tmp_path / "cache"), load_train=True)
    memory = prepare_data(cfg)
    np.testing.assert_array_equal(streamed.data.user_vocab.ids, memory.user_vocab.ids)
    np.testing.assert_array_equal(streamed.data.item_vocab.ids, memory.item_vocab.ids)
    np.testing.assert_array_equal(streamed.data.item_counts, memory.item_counts)
    for name in ("train", "validation", "test"):
        assert _pairs(getattr(streamed.data, name)) == _pairs(getattr(memory, name)), name
    assert streamed.rows == {"train": len(memory.train), "validation": len(memory.validation), "test": len(memory.test)}
    assert len(streamed.files["train"]) > 1


def test_random_split_is_the_documented_pair_hash(tmp_path):
    u, i, t = _log(1)
    path = tmp_path / "log.csv"
    _write_csv(path, u, i, t)
    cfg = _cfg(path, split="random", test_fraction=0.2, validation_fraction=0.25, seed=7)
    streamed = prepare_streamed(cfg, str(tmp_path / "cache"), load_train=True)
    # Oracle: the pair's number in [0, 1) from the ids' seeded hashes, thresholds from the fractions.
    x = pair_uniform(id_hashes([f"u{v}" for v in u], 7), id_hashes([str(v) for v in i], 7))
    side = np.where(x < 0.2, 2, np.where(x < 0.2 + 0.8 * 0.25, 1, 0))
    train_users = np.unique([f"u{v}" for v in u[side == 0]])
    train_items = np.unique([str(v) for v in i[side == 0]])
    np.testing.assert_array_equal(streamed.data.user_vocab.ids, train_users)
    np.testing.assert_array_equal(streamed.data.item_vocab.ids, train_items)
    for k, name in enumerate(("train", "validation", "test")):
        split = getattr(streamed.data, name)
        assert len(split) == int((side == k).sum())
        got = sorted(zip(streamed.data.user_vocab.id_of(split.user), streamed.data.item_vocab.id_of(split.item)))
        want = sorted(zip((f"u{v}" for v in u[side == k]), (str(v) for v in i[side == k])))
        got = [(a, b if b else "<oov>") for a, b in got]
        want = [(a, b if b in set(train_items) else "<oov>") for a, b in want]
        want = [(a if a in set(train_users) else "", b) for a, b in want]
        assert got == want, name
    counts = np.zeros(streamed.data.item_vocab.size)
    np.add.at(counts, streamed.data.item_vocab.lookup(np.array([str(v) for v in i[side == 0]])), 1)
    np.testing.assert_array_equal(streamed.data.item_counts, counts)
    # The shares are the fractions in expectation.
    assert abs((side == 2).mean() - 0.2) < 0.05


def test_the_hash_keeps_every_copy_of_a_pair_on_one_side_and_depends_on_the_seed():
    users = id_hashes(["a"] * 5 + ["b"] * 5, 1)
    items = id_hashes(["x"] * 5 + ["y"] * 5, 1)
    x = pair_uniform(users, items)
    assert len(set(x[:5])) == 1 and len(set(x[5:])) == 1
    assert not np.array_equal(pair_uniform(id_hashes(["a"], 2), id_hashes(["x"], 2)), x[:1])
    many = pair_uniform(id_hashes([str(k) for k in range(4000)], 0), id_hashes(["i"] * 4000, 0))
    assert 0 <= many.min() and many.max() < 1 and abs(many.mean() - 0.5) < 0.03


def test_the_cache_is_reused_and_keyed_by_the_files(tmp_path):
    u, i, t = _log(2)
    path = tmp_path / "log.csv"
    _write_csv(path, u, i, t)
    cfg = _cfg(path)
    first = prepare_streamed(cfg, str(tmp_path / "cache"))
    again = prepare_streamed(cfg, str(tmp_path / "cache"))
    assert not first.reused and again.reused and again.folder == first.folder
    assert len(first.data.train) == 0 and first.num_train > 0  # training rows stay on disk
    assert os.listdir(tmp_path / "cache") == [os.path.basename(first.folder)]  # no leftover work folder
    # data.cache_dir wins over the default root.
    elsewhere = prepare_streamed(_cfg(path, cache_dir=str(tmp_path / "mine")), str(tmp_path / "cache"))
    assert elsewhere.folder.startswith(str(tmp_path / "mine"))
    _write_csv(path, u[:-1], i[:-1], t[:-1])  # the data changed: a new key
    os.utime(path, ns=(1, 1))
    changed = prepare_streamed(cfg, str(tmp_path / "cache"))
    assert changed.folder != first.folder and not changed.reused


def test_bad_rows_name_the_file_row_and_column(tmp_path):
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table({"u": ["a", "b", None, "c"], "i": [1, 2, 3, 4], "t": [1, 2, 3, 4]}), path)
    with pytest.raises(DataError, match=r"log.parquet, row 3: column 'u' \(user_column\) is missing") as err:
        prepare_streamed(_cfg(path, "parquet"), str(tmp_path / "cache"))
    assert "column 'u' (data.csv.user_column) is missing" in str(in_config_words(err.value))  # as a run says it
    with pytest.raises(DataError, match=r"no column 'i' \(item_column\)") as err:
        pq.write_table(pa.table({"u": ["a"], "item": [1], "t": [1]}), tmp_path / "other.parquet")
        prepare_streamed(_cfg(tmp_path / "other.parquet", "parquet"), str(tmp_path / "cache"))
    assert "no column 'i' (data.csv.item_column)" in str(in_config_words(err.value))
    empty = tmp_path / "empty.csv"
    empty.write_text("u,i,t\na, ,1\n")
    with pytest.raises(DataError, match="empty id"):
        prepare_streamed(_cfg(empty), str(tmp_path / "cache"))
    assert not [n for n in os.listdir(tmp_path / "cache") if n.startswith(".building")]


def test_skip_bad_rows_counts_them(tmp_path):
    path = tmp_path / "log.parquet"
    u, i, t = _log(3, rows=300)
    users = [f"u{x}" for x in u]
    users[5] = None
    pq.write_table(pa.table({"u": users, "i": i, "t": t}), path)
    streamed = prepare_streamed(_cfg(path, "parquet", skip_bad_rows=True), str(tmp_path / "cache"))
    assert streamed.data.skipped_rows == 1
    assert sum(streamed.rows.values()) == 299


@pytest.mark.parametrize(
    "change, words",
    [
        ({"data": {"split": "temporal"}}, "not 'temporal'"),
        ({"data": {"duplicates": "keep_last"}}, "data.duplicates: keep_all"),
        ({"data": {"source": "synthetic"}}, "csv or parquet"),
        ({"batching": {"strategy": "gcbs"}}, "batching.strategy: random"),
        ({"model": {"user_features": ["id", "history"]}}, "history"),
    ],
)
def test_the_config_refuses_what_cannot_stream(change, words):
    base = {"data": {"source": "csv", "path": "x.csv", "streaming": True, "duplicates": "keep_all"}}
    for section, values in change.items():
        base.setdefault(section, {}).update(values)
    with pytest.raises(ConfigError, match=words):
        from_dict(base)
    assert from_dict({"data": {"source": "csv", "path": "x.csv"}}).data.streaming is False


def _shards(tmp_path, monkeypatch, rows=1000):
    monkeypatch.setattr(streaming, "CHUNK", 64)
    monkeypatch.setattr(streaming, "SHARD_ROWS", 256)
    u, i, t = _log(4, users=100, items=100, rows=rows)
    path = tmp_path / "log.csv"
    _write_csv(path, u, i, t)
    streamed = prepare_streamed(_cfg(path, validation_fraction=0.0), str(tmp_path / "cache"), load_train=True)
    return streamed


def _epoch(pipeline, take=None):
    ds = pipeline.dataset if take is None else pipeline.dataset.take(take)
    return [(b["user"].numpy(), b["item"].numpy()) for b in ds]


def test_shard_pipeline_epochs_are_permutations_that_reshuffle(tmp_path, monkeypatch):
    streamed = _shards(tmp_path, monkeypatch)
    train = streamed.data.train
    p = ShardPipeline(streamed.files["train"], streamed.num_train, batch_size=96, seed=3, shuffle_buffer=200)
    assert len(streamed.files["train"]) >= 3
    first, second = _epoch(p), _epoch(p)
    want = sorted(zip(train.user.tolist(), train.item.tolist()))
    for batches in (first, second):
        assert [len(b[0]) for b in batches][:-1] == [96] * (p.steps_per_epoch - 1)
        assert batches[0][0].dtype == np.int32
        users, items = (np.concatenate([b[k] for b in batches]).tolist() for k in (0, 1))
        got = sorted(zip(users, items))
        assert got == want  # every example once, pairs kept together
    assert not np.array_equal(first[0][0], second[0][0])
    assert p.dataset.cardinality().numpy() == p.steps_per_epoch == -(-len(train) // 96)
    # Seeded: a new pipeline repeats the same epochs.
    q = ShardPipeline(streamed.files["train"], streamed.num_train, batch_size=96, seed=3, shuffle_buffer=200)
    np.testing.assert_array_equal(_epoch(q)[0][0], first[0][0])


def test_shard_pipeline_resumes_mid_epoch(tmp_path, monkeypatch):
    streamed = _shards(tmp_path, monkeypatch)
    def make():
        return ShardPipeline(streamed.files["train"], streamed.num_train, 100, seed=1, drop_remainder=True)

    p = make()
    _epoch(p)
    second = _epoch(p)
    q = make()
    q.resume_at(1, 3)
    resumed = _epoch(q, take=q.steps_per_epoch - 3)
    assert len(resumed) == len(second) - 3
    for (a, _), (b, _) in zip(resumed, second[3:]):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="step"):
        q.resume_at(0, q.steps_per_epoch)
    with pytest.raises(DataError, match="fewer than one batch"):
        ShardPipeline(streamed.files["train"], streamed.num_train, 10**6, drop_remainder=True)


def test_read_split_fills_in_place_and_checks_the_row_count(tmp_path, monkeypatch):
    streamed = _shards(tmp_path, monkeypatch)
    files = [os.path.basename(f) for f in streamed.files["train"]]
    whole = streamed_split = streaming.read_split(streamed.folder, files)  # rows counted from the shards
    assert len(whole) == streamed.num_train
    np.testing.assert_array_equal(streaming.read_split(streamed.folder, files, streamed.num_train).user, whole.user)
    assert streamed_split.user.dtype == np.int32 and streamed_split.timestamp.dtype == np.int64
    with pytest.raises(DataError, match="shards.json"):
        streaming.read_split(streamed.folder, files, streamed.num_train - 1)
    with pytest.raises(DataError, match="shards.json"):
        streaming.read_split(streamed.folder, files, streamed.num_train + 1)
