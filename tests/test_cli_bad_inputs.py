"""Every mistake a user can make at the command line: one line, exit 2, nothing created.

Each row is (name, files to create, argv). The walk asserts for every row:
exit code 2, exactly one line on stderr, starting ``tfrs-irns <command>: error:``
and matching the row's pattern, no ``Traceback``, no run folder and no
published version.
"""

import os
import re

import pytest

from tfrs_irns.cli.main import main
from tfrs_irns.data import arrow_source, csv_source, tfds_source

from helpers import TINY_CSV_OVERRIDES, with_tiny

GOOD_CSV = "user_id,item_id,timestamp\n" + "".join(f"u{u},i{(u * 7 + k) % 30},{k}\n" for u in range(20) for k in range(6))


def csv_run(path_key="log.csv", *extra):
    return ["--set", *TINY_CSV_OVERRIDES, "data.path={tmp}/" + path_key, *extra]


CASES = [
    # (name, {file: bytes}, argv, pattern)
    ("config not UTF-8", {"bad.yaml": b"train:\n  epochs: 2 # caf\xe9\n"},
     ["train", "--config", "{tmp}/bad.yaml"], r"bad.yaml: line 2: not UTF-8 text"),
    ("config is a folder", {"folder.yaml/x": b""}, ["train", "--config", "{tmp}/folder.yaml"], r"is a folder"),
    ("config not found", {}, ["train", "--config", "{tmp}/nope.yaml"], r"nope.yaml: config file not found"),
    ("invalid YAML", {"c.yaml": b"train: [\n"}, ["train", "--config", "{tmp}/c.yaml"], r"c.yaml: line \d+ invalid YAML"),
    ("unknown key", {}, ["train", "--config", "configs/quickstart.yaml", "--set", "train.epoch=2"],
     r"did you mean 'train.epochs'"),
    ("a key set twice", {}, ["train", "--config", "configs/quickstart.yaml", "--set", "train.epochs=1", "--set",
                             "train.epochs=2"], r"--set train.epochs: given twice"),
    ("not a number", {}, ["train", "--config", "configs/quickstart.yaml", "--set", "train.learning_rate=fast"],
     r"train.learning_rate: expected a number, got 'fast'"),
    ("refined logQ without logQ", {}, ["train", "--config", "configs/quickstart.yaml", "--set",
     "experimental.logq_variant=refined", "--set", "negatives.logq=false"],
     r"experimental.logq_variant=refined refines the logQ correction, which is off here"),
    ("temperature 0", {}, ["train", "--config", "configs/quickstart.yaml", "--set", "model.temperature=0"],
     r"model.temperature: must be > 0, got 0"),
    ("--output is a file", {"taken": b"x"}, ["train", "--config", "configs/quickstart.yaml", "--output", "{tmp}/taken",
                                             "--set", *with_tiny()], r"exists and is not a folder"),
    ("data path missing", {}, ["train", "--config", "configs/quickstart.yaml", *csv_run("missing.csv")],
     r"missing.csv: no such file"),
    ("data path is a folder", {"dir.csv/x": b""}, ["train", "--config", "configs/quickstart.yaml", *csv_run("dir.csv")],
     r"dir.csv: is a folder, expected a CSV file"),
    ("gzip given as CSV", {"log.csv": b"\x1f\x8b\x08\x08\x00\x00binary"},
     ["train", "--config", "configs/quickstart.yaml", *csv_run()], r"log.csv: this is gzip-compressed, not a text CSV"),
    ("NUL in an id", {"log.csv": b"user_id,item_id,timestamp\nu1,i1,1\nu1\x00,i2,2\n"},
     ["train", "--config", "configs/quickstart.yaml", *csv_run()], r"log.csv, line 3: contains a NUL byte"),
    ("line break in an id", {"log.csv": GOOD_CSV.encode() + b'"u\nx",i1,99\n'},
     ["train", "--config", "configs/quickstart.yaml", *csv_run()], r"user id 'u\\nx' cannot be exported"),
    ("bad number in a row", {"log.csv": GOOD_CSV.encode() + b"u1,i1,soon\n"},
     ["train", "--config", "configs/quickstart.yaml", *csv_run()], r"log.csv, line 122: timestamp 'soon' is not a number"),
    ("positions need header false", {"log.csv": GOOD_CSV.encode()},
     ["train", "--config", "configs/quickstart.yaml", *csv_run("log.csv", "data.csv.user_column=0")],
     r"no column '0' \(data.csv.user_column\)"),
    ("evaluate overrides the model", {"run/config.yaml": b"name: r\n"},
     ["evaluate", "--run", "{tmp}/run", "--set", "model.embedding_dim=32"],
     r"--set model.embedding_dim: only eval.\* keys may be overridden here"),
    # Content item features and the cold_items split (issue 12, item side).
    ("unknown item feature", {}, ["train", "--config", "configs/quickstart.yaml", "--set",
                                  *with_tiny("model.item_features=[id,brand]")],
     r"model.item_features: unknown feature 'brand'"),
    ("title on a source without titles", {"log.csv": GOOD_CSV.encode()},
     ["train", "--config", "configs/quickstart.yaml", *csv_run("log.csv", "model.item_features=[id,title]")],
     r"model.item_features: 'title' needs item titles, and data.source csv has them only from data.csv.items_path"),
    ("genres on a source without genres", {"log.csv": GOOD_CSV.encode(), "items.csv": b"item_id,title\ni1,A\n"},
     ["train", "--config", "configs/quickstart.yaml",
      *csv_run("log.csv", "data.csv.items_path={tmp}/items.csv", "model.item_features=[genres]")],
     r"model.item_features: 'genres' needs item genres, and data.source csv has them only"),
    ("item column not declared", {"log.csv": GOOD_CSV.encode(), "items.csv": b"item_id,brand\ni1,A\n"},
     ["train", "--config", "configs/quickstart.yaml",
      *csv_run("log.csv", "data.csv.items_path={tmp}/items.csv", "model.item_features=[id,brand]")],
     r"model.item_features: unknown feature 'brand'.*declared in data.csv.item_columns"),
    ("id-only tower on cold_items", {}, ["train", "--config", "configs/quickstart.yaml", "--set",
                                         *with_tiny("data.split=cold_items")],
     r"data.split=cold_items with model.item_features=\['id'\]: an id-only item tower cannot embed an item it never saw"),
    ("cold_items with the full softmax", {}, ["train", "--config", "configs/quickstart.yaml", "--set",
                                              *with_tiny("data.split=cold_items", "model.item_features=[title]",
                                                         "negatives.mode=full")],
     r"cold_items with negatives.mode=full"),
    ("cold fraction out of range", {}, ["train", "--config", "configs/quickstart.yaml", "--set",
                                        *with_tiny("data.cold_item_fraction=1.5")],
     r"data.cold_item_fraction: must be in \(0, 1\), got 1.5"),
    ("item_columns kind unknown", {}, ["train", "--config", "configs/quickstart.yaml", "--set",
                                       *with_tiny("data.csv.item_columns={brand: words}")],
     r"data.csv.item_columns.brand: expected 'text' or 'categorical', got 'words'"),
    ("export overrides training", {"run/config.yaml": b"name: r\n"},
     ["export", "--run", "{tmp}/run", "--set", "train.epochs=99"],
     r"--set train.epochs: only export.\* keys may be overridden here"),
    ("evaluate a run that never finished", {"run/config.yaml": b"name: r\n"}, ["evaluate", "--run", "{tmp}/run"],
     r"no checkpoint at checkpoints/weights"),
    ("export a folder that is not a run", {"run/x": b""}, ["export", "--run", "{tmp}/run"],
     r"not a run directory \(no config.yaml\)"),
    ("--output holds a run", {"old/config.yaml": b"name: old\n"},
     ["train", "--config", "configs/quickstart.yaml", "--output", "{tmp}/old", "--set", *with_tiny()],
     r"old: already holds a run; continue it with `tfrs-irns train --resume .*old`"),
    ("resume a finished run", {"done/config.yaml": b"name: done\n", "done/metrics.json": b"{}"},
     ["train", "--resume", "{tmp}/done"], r"done: the run already finished \(it has metrics.json\); nothing to resume"),
    ("resume with --set", {"done/config.yaml": b"name: done\n"},
     ["train", "--resume", "{tmp}/done", "--set", "train.epochs=9"], r"--set cannot change a run being resumed"),
    ("recommend from nothing", {}, ["recommend", "--model", "{tmp}/nothing", "--user", "u1"], r"nothing"),
    ("unknown user feature", {}, ["train", "--config", "configs/quickstart.yaml", "--set",
                                  *with_tiny("model.user_features=[id,clicks]")],
     r"model.user_features: expected 'id' or 'history', got 'clicks'"),
    ("user feature twice", {}, ["train", "--config", "configs/quickstart.yaml", "--set",
                                *with_tiny("model.user_features=[history,history]")],
     r"model.user_features: must be a non-empty list without repeats"),
    ("history length 0", {}, ["train", "--config", "configs/quickstart.yaml", "--set",
                              *with_tiny("model.user_features=[history]", "model.history.length=0")],
     r"model.history.length: must be >= 1, got 0"),
    ("unknown pooling", {}, ["train", "--config", "configs/quickstart.yaml", "--set",
                             *with_tiny("model.history.pooling=max")],
     r"model.history.pooling: expected one of 'mean', 'attention', 'gru', 'transformer', got 'max'"),
    ("cold user fraction 1", {}, ["train", "--config", "configs/quickstart.yaml", "--set",
                                  *with_tiny("data.split=cold_users", "data.cold_user_fraction=1")],
     r"data.cold_user_fraction: must be in \(0, 1\), got 1"),
]


@pytest.mark.parametrize("name, files, argv, pattern", CASES, ids=[c[0] for c in CASES])
def test_each_bad_input_is_one_line_exit_2_and_creates_nothing(tmp_path, capsys, monkeypatch, name, files, argv, pattern):
    monkeypatch.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for rel, data in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not rel.endswith("/x"):
            path.write_bytes(data)
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[0] == "train" and "--resume" not in argv:
        if "--output" not in argv:
            argv += ["--output", str(tmp_path / "new-run")]
        argv += ["--set", f"export.base_dir={tmp_path / 'saved'}"]
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"tfrs-irns {argv[0]}: error: "), lines[0]
    assert re.search(pattern, lines[0]), lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no run folder, no saved_models


def test_an_unreadable_data_file_is_one_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "log.csv").write_text(GOOD_CSV, encoding="utf-8")

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    # Root reads files whatever their mode: deny every open() of the readers instead.
    for module in (csv_source, arrow_source):
        monkeypatch.setattr(module, "open", denied, raising=False)
    code = main(["train", "--config", "configs/quickstart.yaml", "--output", str(tmp_path / "run"), "--set",
                 *TINY_CSV_OVERRIDES, f"data.path={tmp_path / 'log.csv'}"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip() == f"tfrs-irns train: error: {tmp_path / 'log.csv'}: cannot read (Permission denied)"
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_tfds_offline_fails_fast_with_what_to_do(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(tfds_source, "_reachable", lambda host, **kw: False)
    code = main(["train", "--config", "configs/movielens-100k.yaml", "--output", str(tmp_path / "run"), "--set",
                 f"data.tfds_data_dir={tmp_path / 'tfds'}", f"export.base_dir={tmp_path / 'saved'}"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert "movielens/100k-ratings is not prepared in" in lines[0] and "files.grouplens.org cannot be reached" in lines[0]
    assert "pass that folder as data.tfds_data_dir, or use data.source=movielens with data.path a local" in lines[0]
    assert not (tmp_path / "run").exists()
