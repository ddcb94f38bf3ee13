"""The tfrs-irns command line: the happy path and one clear line per mistake."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tfrs_irns.cli.main import main
from helpers import TINY_OVERRIDES as TINY, with_tiny


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    run_dir = str(root / "run")
    code = main(["train", "--config", "configs/quickstart.yaml", "--output", run_dir, "--set",
                 *with_tiny("train.epochs=1", "export.enabled=true", f"export.base_dir={root / 'saved'}", "export.k=20")])
    assert code == 0
    return root, run_dir


def _tree(folder):
    """Relative path → bytes of every file under ``folder``."""
    out = {}
    for base, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(base, name)
            out[os.path.relpath(path, folder)] = open(path, "rb").read()
    return out


@pytest.mark.slow
def test_train_writes_the_run_and_exports(trained):
    root, run_dir = trained
    metrics = json.loads(open(os.path.join(run_dir, "metrics.json")).read())
    assert metrics["hit_rate@100"] >= 0
    assert sorted(os.listdir(root / "saved" / "quickstart")) == ["1", "1.embeddings"]
    # The published version is the run's own SavedModel, byte for byte.
    assert _tree(root / "saved" / "quickstart" / "1") == _tree(os.path.join(run_dir, "saved_model", "1"))
    meta = json.loads(open(root / "saved" / "quickstart" / "1" / "assets.extra" / "metadata.json").read())
    assert meta["data_fingerprint"] == metrics["data_fingerprint"] and len(metrics["data_fingerprint"]) == 32
    assert meta["validation"]["monitor"] == "val_hit_rate@100"
    assert meta["validation"]["value"] == metrics["history"]["val_hit_rate@100"][metrics["best_epoch"] - 1]


@pytest.mark.slow
def test_evaluate_reproduces_the_training_metrics_in_its_own_record(trained, capsys, tmp_path):
    _, run_dir = trained
    copy = str(tmp_path / "run")
    shutil.copytree(run_dir, copy)
    before = open(os.path.join(copy, "metrics.json"), "rb").read()
    code, out, _ = run_cli(capsys, "evaluate", "--run", copy)
    assert code == 0
    assert "test hit_rate@100" in out
    assert open(os.path.join(copy, "metrics.json"), "rb").read() == before  # training's record untouched
    (name,) = os.listdir(os.path.join(copy, "evaluations"))
    assert out.strip().endswith(os.path.join(copy, "evaluations", name))
    record = json.loads(open(os.path.join(copy, "evaluations", name)).read())
    trained_metrics = json.loads(before)
    for key in ("hit_rate@10", "hit_rate@100", "recall@10", "ndcg@100"):
        assert record["metrics"][key] == pytest.approx(trained_metrics[key], abs=1e-9)
    assert record["overrides"] == [] and record["data_changed"] is False
    assert record["data_fingerprint"] == trained_metrics["data_fingerprint"]


@pytest.mark.slow
def test_evaluate_with_exclude_seen_records_its_protocol_and_rewrites_nothing(trained, capsys, tmp_path):
    _, run_dir = trained
    copy = str(tmp_path / "run")
    shutil.copytree(run_dir, copy)
    files = {name: open(os.path.join(copy, name), "rb").read() for name in ("metrics.json", "config.yaml")}
    for _ in range(2):  # two evaluations, two records
        code, _, _ = run_cli(capsys, "evaluate", "--run", copy, "--set", "eval.exclude_seen=true", "eval.ks=[20]")
        assert code == 0
    for name, data in files.items():
        assert open(os.path.join(copy, name), "rb").read() == data
    records = sorted(os.listdir(os.path.join(copy, "evaluations")))
    assert len(records) == 2
    record = json.loads(open(os.path.join(copy, "evaluations", records[-1])).read())
    assert record["protocol"] == {"split": "test", "ks": [20], "exclude_seen": True, "chunk_size": 1024}
    assert record["metrics"]["protocol"]["exclude_seen"] is True
    assert "hit_rate@20" in record["metrics"] and "hit_rate@100" not in record["metrics"]  # no merged old keys
    assert record["overrides"] == ["eval.exclude_seen=true", "eval.ks=[20]"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "command, pair",
    [("evaluate", "model.embedding_dim=32"), ("evaluate", "export.k=5"), ("export", "train.epochs=99"),
     ("export", "eval.ks=[5]")],
)
def test_evaluate_and_export_override_only_their_section(trained, capsys, command, pair):
    root, run_dir = trained
    section = {"evaluate": "eval", "export": "export"}[command]
    versions = sorted(os.listdir(root / "saved" / "quickstart"))
    code, _, err = run_cli(capsys, command, "--run", run_dir, "--set", pair)
    assert code == 2
    (line,) = err.strip().splitlines()
    key = pair.split("=")[0]
    assert line == (
        f"tfrs-irns {command}: error: --set {key}: only {section}.* keys may be overridden here; "
        "the rest is the run's saved config"
    )
    assert sorted(os.listdir(root / "saved" / "quickstart")) == versions


@pytest.mark.slow
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


@pytest.mark.subprocess
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
        capsys, "train", "--config", "configs/quickstart.yaml", "--output", str(out), "--set", *with_tiny(*overrides)
    )
    assert code == 2
    assert re.search(message, err.strip().splitlines()[-1]), err
    assert not out.exists()


def test_repeated_set_flags_all_apply(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "train", "--config", "configs/quickstart.yaml", "--output", str(tmp_path / "run"),
        "--set", *with_tiny("train.batch_size=0"), "--set", "train.epochs=1",
    )
    assert code == 2 and "train.batch_size: must be > 0, got 0" in err


@pytest.mark.parametrize(
    "pairs, key", [(["train.epochs=1", "train.epochs=2"], "train.epochs"),
                   (["train.early_stopping.patience=1", "train.early_stopping={}"], "train.early_stopping")],
)
def test_a_key_set_twice_is_an_error_naming_it(capsys, tmp_path, pairs, key):
    code, _, err = run_cli(
        capsys, "train", "--config", "configs/quickstart.yaml", "--output", str(tmp_path / "run"),
        "--set", pairs[0], "--set", pairs[1],
    )
    assert code == 2 and f"--set {key}: " in err.strip().splitlines()[0]
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["a/b", ".."])
def test_a_bad_export_name_stops_before_training(capsys, tmp_path, name):
    out = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "train", "--config", "configs/quickstart.yaml", "--output", str(out), "--set",
        *with_tiny("export.enabled=true", f"export.name={name}"),
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


def test_version_flag(capsys):
    from tfrs_irns._version import __version__

    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0 and capsys.readouterr().out.strip() == f"tfrs-irns {__version__}"


@pytest.mark.parametrize(
    "argv", [[], ["train"], ["evaluate"], ["export"], ["data"], ["recommend"], ["models"], ["models", "list"],
             ["models", "rollback"], ["report"], ["runs"]],
)
def test_every_help_shows_examples(capsys, argv):
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    out = capsys.readouterr().out
    assert "example" in out and "\n  tfrs-irns " in out, out


def test_an_interrupted_training_names_the_resume_command(capsys, tmp_path, monkeypatch):
    """Finding 9 of issue 25: "interrupted" said nothing about --resume."""
    import tfrs_irns.runs

    def interrupted(config, run_dir, resume=False):
        os.makedirs(os.path.join(run_dir, "backup"))  # the run had started: a backup exists
        raise KeyboardInterrupt

    monkeypatch.setattr(tfrs_irns.runs, "train", interrupted)
    code, out, err = run_cli(capsys, "train", "--config", "configs/quickstart.yaml", "--output",
                             str(tmp_path / "run"), "--set", *TINY)
    assert code == 130
    assert err.strip() == f"tfrs-irns train: interrupted; continue the run with: tfrs-irns train --resume {tmp_path / 'run'}"


def test_a_run_without_checkpoint_points_to_resume(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy("configs/quickstart.yaml", run / "config.yaml")
    code, _, err = run_cli(capsys, "export", "--run", str(run))
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "did training finish?" in line and f"tfrs-irns train --resume {run}" in line
