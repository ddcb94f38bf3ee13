"""The layering rule of docs/ARCHITECTURE.md: a module imports only its own layer or lower ones.

Two checks: every import statement in the package (read from the source, so
imports inside functions count too), and what importing each layer actually
loads in a fresh process.
"""

import argparse
import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tfrs_irns"

# Bottom up. `config` is a leaf that only the layers reading config keys may import.
RANK = {
    "errors": 0, "_files": 0, "_keras": 0, "_version": 0, "_params": 0, "_lazy": 0, "_faiss": 0,
    "config": 0, "config_reference": 0,
    "topk": 1, "gpu_kernels": 1, "sampling": 1, "layers": 1, "tasks": 1,
    "models": 2,
    "data": 3, "batching": 3,
    "evaluation": 4,
    "export": 5,
    "runs": 6,
    "cli": 7,
}
CONFIG_READERS = {"config", "config_reference", "runs", "cli"}
# A package's `params` module (its frozen parameter dataclasses, the config's section types) is layer 0
# whatever its package's layer: the config imports it. It imports only these (no TensorFlow, no numpy).
PARAMS_IMPORTS = {"tfrs_irns._params", "tfrs_irns.errors"}


def _is_params(module: str) -> bool:
    """``tfrs_irns.batching.params`` and the like."""
    parts = module.split(".")
    return len(parts) == 3 and parts[2] == "params"


def _rank(module: str) -> int:
    return 0 if _is_params(module) else RANK[_unit(module)]


def _unit(module: str) -> str:
    """``tfrs_irns.tasks.irns`` → ``tasks``; the root package → ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "tfrs_irns":  # `from tfrs_irns import _keras` names a module
                found += [(node.lineno, f"tfrs_irns.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name == "tfrs_irns" or name.startswith("tfrs_irns.")]


def test_every_unit_has_a_layer():
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.suffix == ".py" or p.is_dir()}
    units -= {"__init__", "__pycache__"}
    assert units == set(RANK), "a new module or package needs a layer in RANK and in docs/ARCHITECTURE.md"


def test_no_module_imports_a_higher_layer_or_the_root():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        module = ".".join(relative.parts)
        unit = _unit(module)
        if not unit or unit == "__init__":
            continue  # the root re-exports every layer, lazily
        for line, name in _imports(path):
            target = _unit(name)
            where = f"{path.relative_to(PACKAGE.parent)}:{line}: imports {name}"
            if not target:
                problems.append(f"{where} (the root package; import the module itself)")
            elif _is_params(module) and name not in PARAMS_IMPORTS and not _is_params(name):
                problems.append(f"{where} (a params module imports only {sorted(PARAMS_IMPORTS)} and params modules)")
            elif target == "config" and unit not in CONFIG_READERS:
                problems.append(f"{where} (only {sorted(CONFIG_READERS)} read config keys)")
            elif _rank(name) > _rank(module):
                problems.append(f"{where} (layer {_rank(name)} above {module}'s {_rank(module)})")
    assert not problems, "\n".join(problems)


def _config_keys() -> set[str]:
    """Every dotted config key (``data.csv.user_column``, ``train.learning_rate``, sections too)."""
    from tfrs_irns.config import iter_keys

    return {key for key, _, _ in iter_keys() if "." in key}


def _cli_flags() -> set[str]:
    """Every option string the ``tfrs-irns`` parser defines, in every subcommand (``--set``, ``-k``)."""
    from tfrs_irns.cli.main import _parser

    def flags(parser: argparse.ArgumentParser) -> set[str]:
        found = set()
        for action in parser._actions:
            found.update(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    found |= flags(sub)
        return found

    return flags(_parser())


# A dotted name or a flag, standing alone (not inside a longer name, a path or "top-k").
_TOKEN = re.compile(r"(?<![\w./\\-])(--?[A-Za-z][\w-]*|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes of ``tree``."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                found.add(id(first.value))
    return found


def _library_modules() -> list[Path]:
    """The modules below ``runs`` (layers 0-5), without the config's own modules and the parameter
    objects that hold each key's help text."""
    below_runs = {unit for unit, rank in RANK.items() if rank < RANK["runs"]} - {"config", "config_reference"}
    return [
        path for path in sorted(PACKAGE.rglob("*.py"))
        if _unit(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)) in below_runs
        and path.name not in ("params.py", "_params.py")
    ]


def test_no_library_module_names_a_config_key_or_a_flag():
    """ARCHITECTURE.md: a library names its own arguments; ``runs`` words them as config keys
    and ``cli`` as flags. Every string a library module can say (messages, log lines, notes,
    f-string parts) is checked; docstrings are documentation and may point at the key that
    sets an argument."""
    words = _config_keys() | _cli_flags()
    assert {"data.csv.user_column", "train.learning_rate", "--history", "--set", "-k"} <= words
    modules = _library_modules()
    assert PACKAGE / "data" / "csv_source.py" in modules and PACKAGE / "errors.py" in modules
    assert not any(p.parent.name in ("runs", "cli") or p.name == "config.py" for p in modules)
    hits = []
    for path in modules:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = _docstrings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                for token in _TOKEN.findall(node.value):
                    if token in words:
                        hits.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {token}")
    assert not hits, f"{len(hits)} config keys or CLI flags in library strings:\n" + "\n".join(hits)


def test_the_key_scan_finds_keys_and_flags_standing_alone():
    found = _TOKEN.findall("data.split=cold_users; try -k 5 or --history-file F (top-k; /a/data.csv.x)")
    assert found == ["data.split", "-k", "--history-file"]


# What a fresh `import X` may not load, as the architecture issue states it.
FORBIDDEN = {
    "tfrs_irns.tasks": ["config", "data", "batching", "evaluation", "export", "runs", "cli"],
    "tfrs_irns.sampling": ["config", "data", "batching", "evaluation", "export", "runs", "cli"],
    "tfrs_irns.layers": ["config", "data", "batching", "evaluation", "export", "runs", "cli"],
    "tfrs_irns.data": ["tasks", "models", "evaluation", "export", "runs"],
    "tfrs_irns.export": ["runs", "cli", "batching"],
}

_PROBE = """
import json, sys
import {module}
for name in getattr(sys.modules["{module}"], "__all__", []) if {touch} else []:
    getattr(sys.modules["{module}"], name)  # a lazy package (PEP 562): load its public names
loaded = sorted({{name.split(".")[1] for name in sys.modules if name.startswith("tfrs_irns.")}})
keras = None
if "tensorflow" in sys.modules:
    import tensorflow as tf
    keras = tf.keras.__name__
print(json.dumps({{"loaded": loaded, "keras": keras, "tensorflow": "tensorflow" in sys.modules}}))
"""


# Packages whose public names the probe loads (their __init__ is lazy); not the root, not the config.
TOUCHED = set(FORBIDDEN) | {"tfrs_irns.models"}


def _probe_all(modules: list[str]) -> dict[str, dict]:
    """Import each module in its own fresh interpreter, all at once."""
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}  # the package must set it
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    procs = {
        m: subprocess.Popen(
            [sys.executable, "-c", _PROBE.format(module=m, touch=m in TOUCHED)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(PACKAGE.parent),
        )
        for m in modules
    }
    results = {}
    for module, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"importing {module} took over 240 s")
        assert proc.returncode == 0, f"import {module} failed:\n{err[-3000:]}"
        results[module] = json.loads(out.strip().splitlines()[-1])
    return results


@pytest.fixture(scope="module")
def probes():
    return _probe_all(list(FORBIDDEN) + ["tfrs_irns.config", "tfrs_irns", "tfrs_irns.models", "tfrs_irns.runs.wording"])


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("module", list(FORBIDDEN))
def test_a_layer_loads_nothing_above_it(probes, module):
    loaded = set(probes[module]["loaded"])
    assert not loaded & set(FORBIDDEN[module]), f"import {module} loaded {sorted(loaded & set(FORBIDDEN[module]))}"


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("module", ["tfrs_irns.tasks", "tfrs_irns.sampling", "tfrs_irns.layers", "tfrs_irns.models"])
def test_keras_2_policy_holds_whichever_module_comes_first(probes, module):
    assert probes[module]["keras"].startswith("tf_keras"), probes[module]


@pytest.mark.slow
@pytest.mark.subprocess
def test_config_and_root_load_no_tensorflow(probes):
    # The CLI reads and checks the config before paying for TensorFlow.
    assert probes["tfrs_irns.config"]["tensorflow"] is False
    assert probes["tfrs_irns"]["tensorflow"] is False
    assert probes["tfrs_irns"]["loaded"] == ["_version"]
    # `tfrs-irns data` words its errors as config keys without loading TensorFlow.
    assert probes["tfrs_irns.runs.wording"]["tensorflow"] is False


def test_root_names_resolve_lazily():
    import tfrs_irns

    for name in tfrs_irns.__all__:
        assert getattr(tfrs_irns, name) is not None
    assert tfrs_irns.IRNSRetrieval.__module__ == "tfrs_irns.tasks.irns"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        tfrs_irns.nope  # noqa: B018
