"""Atomic writes: a failure (or a kill) mid-write leaves the old file, never half a new one."""

import json
import os

import numpy as np
import pytest

from tfrs_irns._files import atomic_open
from tfrs_irns.config import Config, load_config, save_config
from tfrs_irns.data.vocab import Vocabulary


def test_a_clean_write_replaces_the_file(tmp_path):
    path = tmp_path / "f.json"
    path.write_text("old")
    with atomic_open(str(path)) as fh:
        fh.write("new")
        assert path.read_text() == "old"  # nothing visible until the rename
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == ["f.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "f.json"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_open(str(path)) as fh:
            fh.write("half a new fi")
            raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.json"]


def test_binary_mode(tmp_path):
    with atomic_open(str(tmp_path / "b.bin"), "wb") as fh:
        fh.write(b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"


def test_run_files_are_written_through_it(tmp_path, monkeypatch):
    # config.yaml and the vocabularies: a failing dump leaves the previous file.
    config_path, vocab_path = tmp_path / "config.yaml", tmp_path / "items.json"
    save_config(Config(), str(config_path))
    Vocabulary(np.array(["a", "b"])).save(str(vocab_path))
    before = config_path.read_text(), vocab_path.read_text()

    def broken(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr("yaml.safe_dump", broken)
    monkeypatch.setattr(json, "dump", broken)
    with pytest.raises(OSError):
        save_config(Config(), str(config_path))
    with pytest.raises(OSError):
        Vocabulary(np.array(["c"])).save(str(vocab_path))
    assert (config_path.read_text(), vocab_path.read_text()) == before
    assert sorted(os.listdir(tmp_path)) == ["config.yaml", "items.json"]
    assert load_config(str(config_path)).train.batch_size == 600
