"""``tfrs-irns report RUN``: report.md and its plots, from a finished run's files alone."""

import os
import sys

import pytest

from tfrs_irns.cli.main import main
from tfrs_irns.runs.report import head_tail, model_vs_popular, write_report

from helpers import make_run, metrics

PNG = b"\x89PNG\r\n\x1a\n"


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_tables_put_the_model_beside_the_most_popular_list():
    assert model_vs_popular(metrics()) == [
        ["10", "0.5000", "0.2500", "2.00×", "0.4000", "0.3000"],
        ["100", "0.9000", "0.3000", "3.00×", "0.8000", "0.3500"],
    ]
    assert head_tail(metrics(), 100) == {"model": {"head": 0.95, "tail": 0.6},
                                         "most popular": {"head": 0.99, "tail": 0.0}}
    # A baseline that never hits gives no ratio (not a division by zero).
    no_hits = metrics(popular_baseline={"hit_rate@10": 0.0, "hit_rate@100": 0.0})
    assert model_vs_popular(no_hits)[0][3] == "–"


def test_report_writes_markdown_and_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    run = make_run(tmp_path / "run", metrics())
    code, out, err = cli(capsys, "report", run)
    assert code == 0, err
    assert out.strip() == f"report written to {os.path.join(run, 'report.md')}"
    text = (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
    assert "| 100 | 0.9000 | 0.3000 | 3.00× | 0.8000 | 0.3500 |" in text
    assert "| model | 0.9500 | 0.6000 |" in text and "| most popular | 0.9900 | 0.0000 |" in text
    assert "kept epoch 2 (val_hit_rate@100 = 0.9000)" in text
    for png in ("loss.png", "validation.png", "baseline.png", "head_tail.png"):
        assert f"](report/{png})" in text
        assert (tmp_path / "run" / "report" / png).read_bytes()[:8] == PNG


def test_no_plots_and_a_missing_matplotlib(tmp_path, capsys, monkeypatch):
    run = make_run(tmp_path / "run", metrics())
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if not installed: import raises ImportError
    code, out, err = cli(capsys, "report", run)
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert "need matplotlib" in line and "pip install 'tfrs-irns[report]'" in line and "--no-plots" in line
    assert not os.path.exists(os.path.join(run, "report.md"))  # nothing half-written
    code, out, err = cli(capsys, "report", run, "--no-plots", "--output", str(tmp_path / "r.md"))
    assert code == 0, err
    text = (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "| 10 | 0.5000 | 0.2500 | 2.00× |" in text and ".png" not in text


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: None, "{run}: run directory not found"),
        (lambda d: os.makedirs(d), "{run}: not a run directory (no config.yaml)"),
        (lambda d: make_run(d), "{run}: the run has not finished (no metrics.json); an interrupted run continues "
                                "with: tfrs-irns train --resume {run}"),
        (lambda d: make_run(d, {"loss": 1}), "{run}/metrics.json: reports no hit_rate@K; was it written by tfrs-irns train?"),
    ],
)
def test_a_run_that_cannot_be_reported_is_one_line(tmp_path, capsys, setup, message):
    run = str(tmp_path / "run")
    setup(run)
    code, _, err = cli(capsys, "report", run, "--no-plots")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line == "tfrs-irns report: error: " + message.format(run=run)


def test_output_naming_a_folder_is_refused(tmp_path):
    from tfrs_irns.errors import UserError

    run = make_run(tmp_path / "run", metrics())
    with pytest.raises(UserError, match="is a folder, expected a file name"):
        write_report(run, str(tmp_path), plots=False)
