"""docs/configuration.md is generated from the config fields and kept current."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from tfrs_irns import config as config_module
from tfrs_irns.config import iter_keys
from tfrs_irns.config_reference import REFERENCE_COMMAND, reference_markdown

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "configuration.md"
TOOL = ROOT / "tools" / "gen_config_reference.py"


def test_the_reference_is_current():
    assert DOC.is_file(), f"docs/configuration.md is missing: run `{REFERENCE_COMMAND}`"
    assert DOC.read_text(encoding="utf-8") == reference_markdown(), (
        f"docs/configuration.md is stale (a config field, default, rule or description changed): "
        f"run `{REFERENCE_COMMAND}` and commit the result"
    )


def test_every_key_is_described():
    missing = [key for key, _, f in iter_keys() if not f.metadata.get("help", "").strip()]
    assert not missing, f"config keys without a description: {missing}"
    # Sections are introduced by their class docstring (not dataclass's generated signature).
    for key, tp, _ in iter_keys():
        if dataclasses.is_dataclass(tp):
            assert tp.__doc__ and not tp.__doc__.startswith(tp.__name__ + "("), f"{key}: {tp.__name__} needs a docstring"


def test_every_key_has_a_row_with_its_type_default_and_rule():
    text = reference_markdown()
    rows = {line.split(" | ")[0].strip("|` "): line for line in text.splitlines() if line.startswith("| `")}
    leaves = [(key, f) for key, tp, f in iter_keys() if not dataclasses.is_dataclass(tp)]
    assert sorted(rows) == sorted(key for key, _ in leaves)
    assert rows["train.batch_size"] == (
        "| `train.batch_size` | an integer | `600` | must be > 0 | B, (user, positive item) pairs per step "
        "(the global batch) |"
    )
    assert rows["negatives.logq"].startswith("| `negatives.logq` | true or false or null | `null` |  | ")
    assert "| `[1, 5, 10, 50, 100]` |" in rows["eval.ks"]
    for key, f in leaves:
        if "check" in f.metadata:
            assert f" | {f.metadata['check'][1]} | " in rows[key], key
    for key, f in leaves:
        if f.metadata.get("path"):
            assert "made absolute in a run's saved config" in rows[key], key
    for section in ("data", "data.csv", "batching.gcbs", "train.early_stopping", "export"):
        assert f"\n## `{section}`\n" in text
    for _, summary, _ in config_module._CROSS_RULES:
        assert f"- {summary}." in text
    assert REFERENCE_COMMAND in text.splitlines()[2] and "do not edit by hand" in text.splitlines()[2]


@pytest.mark.subprocess
def test_the_tool_writes_and_checks(tmp_path):
    out = tmp_path / "configuration.md"
    check = [sys.executable, str(TOOL), "--check", "--output", str(out)]
    missing = subprocess.run(check, capture_output=True, text=True)
    assert missing.returncode == 1 and REFERENCE_COMMAND in missing.stderr
    subprocess.run([sys.executable, str(TOOL), "--output", str(out)], check=True, capture_output=True)
    assert out.read_text(encoding="utf-8") == reference_markdown()
    assert subprocess.run(check, capture_output=True).returncode == 0
    out.write_text(reference_markdown().replace("must be > 0", "must be > 1", 1), encoding="utf-8")
    stale = subprocess.run(check, capture_output=True, text=True)
    assert stale.returncode == 1 and "is stale" in stale.stderr
