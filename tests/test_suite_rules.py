"""Rules of the test suite itself: shared helpers come from ``helpers.py``, never from ``conftest``
(which holds fixtures) or from another test file (a test file is not a library)."""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent

# Cross-test imports allowed by name (none: kept so an exception would be visible, not silent).
ALLOWED: set[tuple[str, str]] = set()


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports, inside functions too."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def bad_imports(directory: Path) -> list[str]:
    test_modules = {p.stem for p in directory.glob("test_*.py")}
    found = []
    for path in sorted(directory.glob("*.py")):
        for name in sorted(imported_modules(path)):
            if name == "conftest" or (name in test_modules and name != path.stem):
                if (path.name, name) not in ALLOWED:
                    found.append(f"{path.name} imports {name}: move what it needs to tests/helpers.py")
    return found


def test_no_test_imports_conftest_or_another_test_file():
    assert bad_imports(TESTS) == []


def test_the_rule_sees_both_kinds(tmp_path):
    (tmp_path / "test_a.py").write_text("from conftest import x\n")
    (tmp_path / "test_b.py").write_text("def f():\n    from test_a import y\n")
    (tmp_path / "test_c.py").write_text("from helpers import with_tiny\nimport numpy\n")
    assert bad_imports(tmp_path) == [
        "test_a.py imports conftest: move what it needs to tests/helpers.py",
        "test_b.py imports test_a: move what it needs to tests/helpers.py",
    ]
