"""What the benchmark scripts share: a Markdown table of their rows and the ``--json`` file."""

from __future__ import annotations

import importlib
import json
import sys
from types import ModuleType
from typing import Any, Optional, Sequence


def require(module: str) -> ModuleType:
    """``module`` from the ``[report]`` extra (matplotlib, tqdm), or exit with one line saying how to get it.

    The package never imports them; only the benchmarks' plots and progress bars do."""
    try:
        return importlib.import_module(module)
    except ImportError:
        script = sys.argv[0].rsplit("/", 1)[-1] or "benchmark"
        hint = "pip install -e '.[report]'"
        raise SystemExit(f"{script}: {module} is not installed; it comes with the report extra: {hint}") from None


def print_table(title: str, header: str, align: str, cells: Sequence[Sequence[str]]) -> None:
    """``title``, then a Markdown table: ``header`` and ``align`` are its first two lines."""
    print(f"\n{title}\n")
    print(header)
    print(align)
    for row in cells:
        print("| " + " | ".join(row) + " |")


def write_json(path: Optional[str], rows: list[dict[str, Any]]) -> None:
    """The rows as a JSON list at ``path`` (``--json``), when one is given."""
    if path:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=2)
