"""What the package installs: the version defined once, plotting and progress bars outside the core install,
the linters and test tiers configured where CI reads them."""

import configparser
import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import pytest

import tfrs_irns

ROOT = Path(__file__).resolve().parents[1]
REPORT_ONLY = {"matplotlib", "tqdm"}


def setup_cfg() -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg", encoding="utf-8")
    return cfg


def requirement_names(block: str) -> set[str]:
    return {line.split(">")[0].split("<")[0].split("=")[0].strip().lower() for line in block.strip().splitlines()
            if line.strip() and not line.strip().startswith("#")}


def test_the_version_is_defined_once():
    from setuptools.config.setupcfg import read_configuration

    assert setup_cfg()["metadata"]["version"].strip() == "attr: tfrs_irns._version.__version__"
    assert read_configuration(str(ROOT / "setup.cfg"))["metadata"]["version"] == tfrs_irns.__version__


def test_matplotlib_and_tqdm_are_an_extra_the_package_never_imports():
    cfg = setup_cfg()
    assert not requirement_names(cfg["options"]["install_requires"]) & REPORT_ONLY
    assert requirement_names(cfg["options.extras_require"]["report"]) == REPORT_ONLY
    imports = re.compile(r"^(\s*)(?:import|from)\s+(matplotlib|tqdm)\b", flags=re.M)  # inside functions too
    for path in (ROOT / "tfrs_irns").rglob("*.py"):
        for found in imports.finditer(path.read_text(encoding="utf-8")):
            # One exception: `tfrs-irns report` draws its plots with matplotlib, imported lazily
            # inside a function that turns a missing one into one clear error.
            lazy = found.group(1) != "" and found.group(2) == "matplotlib"
            assert lazy and path == ROOT / "tfrs_irns" / "runs" / "report.py", path


def test_a_benchmark_without_the_report_extra_says_how_to_get_it(monkeypatch):
    spec = importlib.util.spec_from_file_location("_report", ROOT / "benchmarks" / "_report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # an import of it now raises ImportError
    monkeypatch.setattr(sys, "argv", ["benchmarks/quality.py"])
    with pytest.raises(SystemExit) as stop:
        report.require("matplotlib")
    assert str(stop.value) == (
        "quality.py: matplotlib is not installed; it comes with the report extra: pip install -e '.[report]'"
    )


def test_the_linters_and_the_test_tiers_are_configured_where_ci_reads_them():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pytest_cfg = pyproject["tool"]["pytest"]["ini_options"]
    assert "--strict-markers" in pytest_cfg["addopts"]
    assert {m.split(":")[0] for m in pytest_cfg["markers"]} >= {"slow", "subprocess", "integration"}
    assert {"E", "F", "W", "I", "B", "UP"} <= set(pyproject["tool"]["ruff"]["lint"]["select"])
    assert pyproject["tool"]["mypy"]["files"] == ["tfrs_irns"]
    assert {"ruff", "mypy", "pytest"} <= requirement_names(setup_cfg()["options.extras_require"]["test"])
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.index("ruff check .") < ci.index("mypy") < ci.index("\npython -m pytest")
