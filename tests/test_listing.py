"""``tfrs-irns runs [DIR]``: runs side by side, unfinished ones with the command that continues them."""

import os

from tfrs_irns.cli.main import main

from helpers import make_run, metrics


def test_runs_side_by_side(tmp_path, capsys):
    make_run(tmp_path / "a-good", metrics())
    make_run(tmp_path / "b-worse", metrics(**{"hit_rate@100": 0.4, "train_seconds": 9.25}))
    make_run(tmp_path / "c-stopped")  # interrupted: no metrics.json
    (tmp_path / "not-a-run").mkdir()
    code = main(["runs", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 0, err
    header, a, b, c, note = out.strip().splitlines()
    assert header.split() == ["run", "status", "kept/epochs", "hit@100", "popular@100", "recall@100", "ndcg@100",
                              "mrr", "validation", "train", "s"]
    assert a.split() == ["a-good", "finished", "2/3", "0.9000", "0.3000", "0.8000", "0.3500", "0.2000",
                         "val_hit_rate@100=0.9000", "1.5"]
    assert b.split()[:4] == ["b-worse", "finished", "2/3", "0.4000"] and b.split()[-1] == "9.25"
    assert c.split()[:2] == ["c-stopped", "interrupted"]
    assert note == f"c-stopped: continue with tfrs-irns train --resume {tmp_path / 'c-stopped'}"


def test_one_run_folder_empty_folder_and_no_folder(tmp_path, capsys):
    run = make_run(tmp_path / "only", metrics())
    assert main(["runs", run]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("only ")
    os.makedirs(tmp_path / "empty")
    assert main(["runs", str(tmp_path / "empty")]) == 0
    assert capsys.readouterr().out.startswith(f"no runs under {tmp_path / 'empty'}")
    assert main(["runs", str(tmp_path / "missing")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"tfrs-irns runs: error: {tmp_path / 'missing'}: no such folder (runs are written to runs/ by default)"
