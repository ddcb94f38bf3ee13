"""The snippets of the README and its guides run as written (finding: the README's first snippet raised
NameError). Each test names the file its snippet lives in."""

import os
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from tfrs_irns.cli.main import main

from helpers import TINY_OVERRIDES

ROOT = Path(__file__).resolve().parents[1]


def blocks(language, doc="README.md"):
    """The ``language`` code blocks of ``doc`` (a path from the repository root)."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


@pytest.mark.slow
def test_the_task_snippet_trains_a_tfrs_model_as_written(capsys):
    (snippet,) = [b for b in blocks("python", "docs/irns.md") if "class Model(tfrs.Model)" in b]
    namespace: dict = {}
    exec(compile(snippet, "docs/irns.md", "exec"), namespace)
    losses = namespace["model"].history.history["loss"]
    assert len(losses) == 2 and np.isfinite(losses).all()


@pytest.mark.slow
def test_the_pipeline_snippet_runs(tmp_path, monkeypatch):
    (snippet,) = [b for b in blocks("python") if "tfrs_irns.train(" in b]
    assert '["train.epochs=5"]' in snippet
    # The same calls on the tiny data, so the test takes seconds, not minutes.
    fast = snippet.replace('["train.epochs=5"]', repr(TINY_OVERRIDES + ["train.epochs=1"]))
    fast = fast.replace('"configs/quickstart.yaml"', repr(str(ROOT / "configs" / "quickstart.yaml")))
    monkeypatch.chdir(tmp_path)
    exec(compile(fast, "README.md", "exec"), {})
    assert os.listdir(tmp_path / "saved_models" / "mine") == ["1"]


@pytest.mark.slow
def test_your_own_csv_example(tmp_path, monkeypatch, capsys):
    (sample,) = [b for b in blocks("text", "docs/data.md") if b.startswith("user,movie")]
    (config,) = [b for b in blocks("yaml", "docs/data.md") if "path: my_log.csv" in b]
    mapping = yaml.safe_load(config)["data"]["csv"]
    header = sample.splitlines()[0].split(",")
    assert {mapping["user_column"], mapping["item_column"], mapping["timestamp_column"], mapping["rating_column"]} <= set(header)
    rng = np.random.default_rng(0)
    rows = [sample.splitlines()[0]] + [
        f"user{u},m{(u % 7) * 30 + rng.integers(0, 30)},{rng.integers(1, 6)}.0,{1700000000 + t}"
        for t, u in enumerate(rng.integers(0, 150, 6000))
    ]
    monkeypatch.chdir(tmp_path)
    Path("my_log.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    Path("my_log.yaml").write_text(config, encoding="utf-8")
    tiny = [p for p in TINY_OVERRIDES if p.startswith(("train.batch_size", "negatives.", "export."))]
    code = main(["train", "--config", "my_log.yaml", "--output", "run", "--set", *tiny, "train.epochs=1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "ratings >= 4" in out and "temporal split" in out


def test_the_readme_is_a_front_door():
    # Issue 22: what it does, the two commands, a snippet, the CLI table and links; the rest lives in docs/.
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    train, test = blocks("bash")[:2]
    install = "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[test]'"
    assert train.strip() == install + " && tfrs-irns train --config configs/quickstart.yaml"
    assert test.strip() == install + " && python -m pytest"
    # .ci/run runs the test command's install and then its pytest (with the linters between them).
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert install in ci and "\npython -m pytest" in ci


def test_the_top_level_the_readme_describes_is_there():
    # saved_models/ is where exports land and TF Serving looks; git keeps it through its .gitkeep.
    for name in ("setup.cfg", "pyproject.toml", "README.md", "tfrs_irns", "tests", "configs", "saved_models/.gitkeep"):
        assert (ROOT / name).exists(), name
