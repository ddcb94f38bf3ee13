"""data.streaming under several workers: the shard files are cut so each worker reads its own,
and each worker's pipeline yields per-replica batches, the same number on every worker.

The workers are simulated in one process (a ``WorkerFiles`` per worker); the real two-worker run
is in tests/test_distribution.py.
"""

import os

import numpy as np
import pytest

import tfrs_irns  # noqa: F401
from tfrs_irns.batching.shards import ShardPipeline, WorkerFiles
from tfrs_irns.config import CsvConfig, DataConfig
from tfrs_irns.data import streaming
from tfrs_irns.data.streaming import file_layout, prepare_streamed
from tfrs_irns.errors import DataError


def test_each_split_is_cut_into_at_least_32_equal_files():
    assert streaming.FILES_PER_SPLIT == 32
    assert file_layout(4299) == (135, 135)  # ceil(4299 / 32) rows per file, one record each
    assert file_layout(10) == (1, 1)  # fewer rows than 32 files: one row per file
    assert file_layout(1_000_000) == (31250, 4096)  # 7 records of 4096 rows and one of 2578 per file
    assert file_layout(10**9) == (1 << 20, 4096)  # capped at SHARD_ROWS: more files then


@pytest.fixture
def streamed(tmp_path, monkeypatch):
    monkeypatch.setattr(streaming, "CHUNK", 16)  # records smaller than the files: several per file
    rng = np.random.default_rng(7)
    pairs = rng.choice(80 * 90, 1500, replace=False)  # no repeated (user, item) pair
    path = tmp_path / "log.csv"
    with open(path, "w") as fh:
        fh.write("u,i,t\n")
        for p, t in zip(pairs, rng.integers(0, 50, len(pairs))):
            fh.write(f"u{p // 90},{p % 90},{t}\n")
    cfg = DataConfig(
        source="csv", path=str(path), split="random", duplicates="keep_all", streaming=True,
        validation_fraction=0.0, csv=CsvConfig(user_column="u", item_column="i", timestamp_column="t"),
    )
    return prepare_streamed(cfg, str(tmp_path / "cache"), load_train=True)


def _pairs_of(streamed, files):
    split = streaming.read_split(streamed.folder, [os.path.basename(f) for f in files])
    return list(zip(split.user.tolist(), split.item.tolist()))


def _epoch(pipeline):
    batches = [(b["user"].numpy(), b["item"].numpy()) for b in pipeline.dataset]
    return batches, list(zip(*(np.concatenate([b[k] for b in batches]).tolist() for k in (0, 1))))


def test_the_writer_records_each_files_rows(streamed):
    files, rows = streamed.files["train"], streamed.file_rows["train"]
    per_file, _ = file_layout(streamed.num_train)
    assert len(files) == len(rows) >= 32 and sum(rows) == streamed.num_train
    assert rows[:-1] == [per_file] * (len(rows) - 1) and 0 < rows[-1] <= per_file
    assert [len(_pairs_of(streamed, [f])) for f in files] == rows


def test_two_workers_read_disjoint_halves_and_yield_half_batches(streamed):
    files, rows = streamed.files["train"], streamed.file_rows["train"]
    seen = []
    for index in range(2):
        workers = WorkerFiles(2, index, 2, rows)
        p = ShardPipeline(files, streamed.num_train, batch_size=64, seed=1, workers=workers)
        batches, pairs = _epoch(p)
        own = _pairs_of(streamed, files[index::2])
        # Half of each global batch of 64, as many batches as the one-process epoch has steps.
        assert [len(b[0]) for b in batches] == [32] * p.steps_per_epoch == [32] * -(-streamed.num_train // 64)
        assert set(pairs) == set(own)  # only its own files, every row of them (its share fits in an epoch)
        assert p.rows_read_per_epoch == len(own) == workers.rows
        assert 0.4 <= len(own) / streamed.num_train <= 0.6
        seen.append(set(own))
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == set(_pairs_of(streamed, files))


def test_three_workers_yield_the_same_steps_whatever_their_rows(streamed):
    files, rows = streamed.files["train"], streamed.file_rows["train"]
    counts = []
    for index in range(3):
        workers = WorkerFiles(3, index, 3, rows)
        p = ShardPipeline(files, streamed.num_train, batch_size=48, seed=2, drop_remainder=True, workers=workers)
        batches, pairs = _epoch(p)
        assert [len(b[0]) for b in batches] == [16] * p.steps_per_epoch == [16] * (streamed.num_train // 48)
        # An epoch's share (steps x 16) is below its files' rows: it reads that many, never another's rows.
        assert set(pairs) <= set(_pairs_of(streamed, files[index::3]))
        assert len(set(pairs)) == p.rows_read_per_epoch == min(workers.rows, 16 * p.steps_per_epoch)
        counts.append(len(batches))
    assert len(set(counts)) == 1


def test_a_worker_resumes_mid_epoch_on_its_own_batches(streamed):
    files, rows = streamed.files["train"], streamed.file_rows["train"]

    def make():
        return ShardPipeline(files, streamed.num_train, 64, seed=1, workers=WorkerFiles(2, 1, 2, rows))

    p = make()
    _epoch(p)
    second, _ = _epoch(p)
    q = make()
    q.resume_at(1, 3)
    resumed = [b["user"].numpy() for b in q.dataset.take(q.steps_per_epoch - 3)]
    for a, (b, _) in zip(resumed, second[3:]):
        np.testing.assert_array_equal(a, b)


def test_worker_settings_that_cannot_work_are_refused(streamed):
    files, rows = streamed.files["train"], streamed.file_rows["train"]
    with pytest.raises(ValueError, match="batch_size=65 does not split evenly over 2 replicas"):
        ShardPipeline(files, streamed.num_train, 65, workers=WorkerFiles(2, 0, 2, rows))
    with pytest.raises(DataError, match=r"has 2 shard files, fewer than the 3 workers"):
        ShardPipeline(files[:2], streamed.num_train, 48, workers=WorkerFiles(3, 0, 3, rows[:2]))
    with pytest.raises(ValueError, match="3 file row counts for 2 files"):
        ShardPipeline(files[:2], streamed.num_train, 48, workers=WorkerFiles(3, 0, 3, rows[:3]))
