"""The tfrs-irns command line: the happy path and one clear line per mistake."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tfrs_irns.cli.main import main
from conftest import TINY_OVERRIDES as TINY


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    run_dir = str(root / "run")
    code = main(["train", "--config", "configs/quickstart.yaml", "--output", run_dir, "--set", *TINY,
                 "train.epochs=1", "export.enabled=true", f"export.base_dir={root / 'saved'}", "export.k=20"])
    assert code == 0
    return root, run_dir


def test_train_writes_the_run_and_exports(trained):
    root, run_dir = trained
    metrics = json.loads(open(os.path.join(run_dir, "metrics.json")).read())
    assert metrics["hit_rate@100"] >= 0
    assert sorted(os.listdir(root / "saved" / "quickstart")) == ["1", "1.embeddings"]


def test_evaluate_reproduces_the_training_metrics(trained, capsys):
    _, run_dir = trained
    before = json.loads(open(os.path.join(run_dir, "metrics.json")).read())
    code, out, _ = run_cli(capsys, "evaluate", "--run", run_dir)
    assert code == 0
    after = json.loads(open(os.path.join(run_dir, "metrics.json")).read())
    assert "test hit_rate@100" in out
    for key in ("hit_rate@10", "hit_rate@100", "recall@10", "ndcg@100"):
        assert after[key] == pytest.approx(before[key], abs=1e-9)
    assert after["train_seconds"] == before["train_seconds"]  # training-only facts kept


def test_evaluate_with_exclude_seen_changes_the_protocol(trained, capsys, tmp_path):
    _, run_dir = trained
    copy = str(tmp_path / "run")
    shutil.copytree(run_dir, copy)
    code, _, _ = run_cli(capsys, "evaluate", "--run", copy, "--set", "eval.exclude_seen=true")
    assert code == 0
    assert json.loads(open(os.path.join(copy, "metrics.json")).read())["protocol"]["exclude_seen"] is True


def test_export_and_recommend_from_a_run(trained, capsys):
    root, run_dir = trained
    code, out, _ = run_cli(capsys, "export", "--run", run_dir, "--set", f"export.base_dir={root / 'saved'}", "export.k=20")
    assert code == 0 and out.strip().endswith(os.path.join("quickstart", "2"))
    code, out, _ = run_cli(capsys, "recommend", "--model", str(root / "saved" / "quickstart"), "--user", "u1", "-k", "3")
    assert code == 0
    rows = [line.split() for line in out.splitlines() if re.match(r"\s+\d+\s+-?\d+\.\d+\s", line)]
    assert [r[0] for r in rows] == ["1", "2", "3"]
    assert "not in the model's training data" not in out  # u1 is a known user


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--config", "nope.yaml"], r"nope.yaml: config file not found"),
        (["train", "--config", "configs/quickstart.yaml", "--set", "train.batch_size=0"], r"train.batch_size: must be > 0, got 0"),
        (["train", "--config", "configs/quickstart.yaml", "--set", "train.epoch=2"], r"did you mean 'train.epochs'"),
        (["train", "--config", "configs/quickstart.yaml", "--set", "train.epochs"], r"expected section.key=value"),
        (["train", "--config", "configs/movielens-latest-small.yaml", "--set", "data.path=/no/such/folder"], r"/no/such/folder"),
        (["evaluate", "--run", "/no/such/run"], r"/no/such/run: run directory not found"),
        (["export", "--run", "/no/such/run"], r"/no/such/run: run directory not found"),
        (["recommend", "--model", "/no/such/model", "--user", "1"], r"/no/such/model"),
    ],
)
def test_mistakes_give_one_line_and_exit_2(capsys, argv, message, tmp_path):
    if argv[0] == "train":
        argv = argv + ["--output", str(tmp_path / "run")]
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"tfrs-irns {argv[0]}: error: ")
    assert re.search(message, lines[0]), lines[0]


def test_evaluate_refuses_a_folder_that_is_not_a_run(capsys, tmp_path):
    code, _, err = run_cli(capsys, "evaluate", "--run", str(tmp_path))
    assert code == 2 and "not a run directory (no config.yaml)" in err


def test_console_script_reports_without_traceback(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "tfrs-irns")
    if not os.path.exists(exe):
        pytest.skip("the tfrs-irns console script is not installed in this environment")
    proc = subprocess.run([exe, "train", "--config", str(tmp_path / "missing.yaml")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == f"tfrs-irns train: error: {tmp_path / 'missing.yaml'}: config file not found"


@pytest.mark.parametrize(
    "overrides, message",
    [
        # Caught when the config is loaded.
        (["model.temperature=0"], r"configs/quickstart.yaml \(with --set\): model.temperature: must be > 0, got 0"),
        (["data.validation_fraction=0"], r"train.early_stopping.enabled=true needs a validation split"),
        # Caught once the data is known (the catalogue size), still before any folder is made.
        (["negatives.replacement=false", "negatives.num_negatives=100000"], r"negatives.num_negatives=100000 exceeds"),
    ],
)
def test_a_wrong_config_leaves_no_run_folder(capsys, tmp_path, overrides, message):
    out = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "train", "--config", "configs/quickstart.yaml", "--output", str(out), "--set", *TINY, *overrides
    )
    assert code == 2
    assert re.search(message, err.strip().splitlines()[-1]), err
    assert not out.exists()


def test_repeated_set_flags_all_apply(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "train", "--config", "configs/quickstart.yaml", "--output", str(tmp_path / "run"),
        "--set", *TINY, "--set", "train.batch_size=0",
    )
    assert code == 2 and "train.batch_size: must be > 0, got 0" in err


@pytest.mark.parametrize("name", ["a/b", ".."])
def test_a_bad_export_name_stops_before_training(capsys, tmp_path, name):
    out = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "train", "--config", "configs/quickstart.yaml", "--output", str(out), "--set", *TINY,
        "export.enabled=true", f"export.name={name}",
    )
    assert code == 2 and f"export.name: {name!r} is not a valid model name" in err
    assert not out.exists()


def test_a_config_file_with_temperature_0_stops_at_load(capsys, tmp_path):
    config = tmp_path / "cold.yaml"
    config.write_text("model:\n  temperature: 0\n", encoding="utf-8")
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--config", str(config), "--output", str(out))
    assert code == 2
    assert err.strip() == f"tfrs-irns train: error: {config}: model.temperature: must be > 0, got 0"
    assert not out.exists()


def test_output_naming_a_file_is_one_line(capsys, tmp_path):
    target = tmp_path / "taken"
    target.write_text("not a run\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "train", "--config", "configs/quickstart.yaml", "--output", str(target), "--set", *TINY)
    assert code == 2
    assert err.strip() == f"tfrs-irns train: error: {target}: exists and is not a folder; name a folder for the run"
    assert target.read_text(encoding="utf-8") == "not a run\n"
