"""The run folder: one owner of its layout, its state and its small files."""

import json
import math
import os

import pytest

from tfrs_irns.errors import UserError
from tfrs_irns.runs.rundir import RunDir, default_run_dir, strict_json


def test_the_layout_is_the_documented_one(tmp_path):
    run = RunDir(str(tmp_path / "r"))
    root = str(tmp_path / "r")
    assert run.config == os.path.join(root, "config.yaml")
    assert run.metrics == os.path.join(root, "metrics.json")
    assert run.weights == os.path.join(root, "checkpoints", "weights")
    assert run.snapshot == os.path.join(root, "vocab")
    assert run.model == os.path.join(root, "saved_model")
    assert run.evaluations == os.path.join(root, "evaluations")
    assert run.logs == os.path.join(root, "logs")
    assert run.backup == os.path.join(root, "backup")
    assert run.backup_checkpoints == os.path.join(root, "backup", "chief")
    assert run.best == os.path.join(root, "backup", "best")
    # Shared by the runs of one folder: beside the run, not in it.
    assert run.streaming_cache_root() == str(tmp_path / ".tfrs-irns-cache")
    assert str(run) == root


def test_a_folder_holds_a_run_once_it_has_a_config_metrics_or_backup(tmp_path):
    run = RunDir(str(tmp_path))
    assert not run.holds_run() and not run.finished()
    os.makedirs(run.backup)
    assert run.holds_run() and not run.finished()  # an interrupted run
    with open(run.metrics, "w") as fh:
        fh.write("{}")
    assert run.finished()


def test_metrics_are_written_as_strict_json_and_read_back(tmp_path):
    run = RunDir(str(tmp_path))
    assert run.read_metrics() is None
    run.write_metrics({"loss": [1.0, math.nan], "best": math.inf, "n": 3})
    assert json.loads(open(run.metrics).read()) == {"loss": [1.0, None], "best": None, "n": 3}
    assert run.read_metrics() == {"loss": [1.0, None], "best": None, "n": 3}
    assert strict_json({"a": (1.5, -math.inf)}) == {"a": [1.5, None]}


def test_an_evaluation_record_never_replaces_an_earlier_one(tmp_path):
    run = RunDir(str(tmp_path))
    first = run.write_evaluation({"x": 1}, "20260101T000000.000000Z")
    second = run.write_evaluation({"x": 2}, "20260101T000000.000000Z")
    assert os.path.basename(first) == "20260101T000000.000000Z.json"
    assert os.path.basename(second) == "20260101T000000.000000Z-1.json"
    assert json.loads(open(first).read()) == {"x": 1} and json.loads(open(second).read()) == {"x": 2}


def test_what_is_missing_from_a_finished_run_is_one_clear_error(tmp_path):
    run = RunDir(str(tmp_path / "r"))
    with pytest.raises(UserError, match=r"r: run directory not found"):
        run.check_weights()
    os.makedirs(run.path)
    with pytest.raises(UserError, match=r"not a run directory \(no config.yaml\)"):
        run.check_weights()
    open(run.config, "w").close()
    with pytest.raises(UserError, match=r"no checkpoint at checkpoints/weights .*tfrs-irns train --resume"):
        run.check_weights()
    os.makedirs(os.path.dirname(run.weights))
    open(run.weights + ".index", "w").close()
    run.check_weights()
    with pytest.raises(UserError, match=r"no vocab/ snapshot of the run's vocabularies"):
        run.check_snapshot()


def test_a_worker_removes_only_the_empty_folders_it_left(tmp_path):
    run = RunDir(str(tmp_path / "r"))
    os.makedirs(run.backup)
    run.remove_empty_backup(remove_self=True)
    assert not os.path.exists(run.path)  # both were empty
    os.makedirs(run.backup)
    open(os.path.join(run.path, "config.yaml"), "w").close()
    run.remove_empty_backup(remove_self=True)
    assert not os.path.exists(run.backup) and os.path.isdir(run.path)  # the chief's file stays


def test_delete_backup_removes_the_backup_and_best_epoch(tmp_path):
    run = RunDir(str(tmp_path))
    os.makedirs(run.best)
    run.delete_backup()
    assert not os.path.exists(run.backup)
    run.delete_backup()  # nothing to delete: no error


def test_the_default_run_folder_is_named_by_the_config_and_the_time():
    path = default_run_dir("quickstart")
    assert os.path.dirname(path) == "runs"
    name = os.path.basename(path)
    assert name.startswith("quickstart-") and len(name) == len("quickstart-20260101-120000")
