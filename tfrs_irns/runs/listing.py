"""``tfrs-irns runs``: every run under a folder, its key metrics side by side.

Experiments are compared across runs, and the numbers that decide are few:
the test hit rate and recall at the largest K, NDCG, the most-popular
baseline the model must beat, the validation metric that picked the epoch,
and what it cost. This module reads them from each run folder's
``metrics.json`` (no data, no TensorFlow) and says which runs have not
finished and how to continue them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Optional

from tfrs_irns.errors import UserError
from tfrs_irns.runs.rundir import RunDir



@dataclass
class RunRow:
    """One run folder and its metrics (None while unfinished)."""

    path: str
    metrics: Optional[dict[str, Any]]
    status: str  # "finished", "interrupted" or "unreadable"


def find_runs(folder: str) -> list[RunRow]:
    """Run folders (those with a ``config.yaml``) directly under ``folder``, or ``folder`` itself, by name."""
    if not os.path.isdir(folder):
        raise UserError(f"{folder}: no such folder (runs are written to runs/ by default)")
    candidates = [folder] if RunDir(folder).has_config() else [
        os.path.join(folder, entry) for entry in sorted(os.listdir(folder))
    ]
    rows = []
    for path in candidates:
        run = RunDir(path)
        if not run.has_config():
            continue
        if not run.finished():
            rows.append(RunRow(path, None, "interrupted"))
            continue
        try:
            metrics = run.read_metrics()
            rows.append(RunRow(path, metrics if isinstance(metrics, dict) else None, "finished"))
        except (OSError, ValueError):
            rows.append(RunRow(path, None, "unreadable"))
    return rows


def _k(rows: list[RunRow]) -> Optional[int]:
    ks = {int(key.split("@")[1]) for r in rows if r.metrics for key in r.metrics if key.startswith("hit_rate@")}
    return max(ks) if ks else None


def _num(value: Any) -> str:
    return "-" if value is None else f"{float(value):.4f}"


def format_runs(rows: list[RunRow], folder: str) -> str:
    """A table of the runs, one per line; unfinished runs name the command that continues them."""
    if not rows:
        return f"no runs under {folder} (a run folder holds config.yaml; tfrs-irns train writes runs/<name>-<time>)"
    k = _k(rows)
    header = ["run", "status", "kept/epochs", f"hit@{k}", f"popular@{k}", f"recall@{k}", f"ndcg@{k}", "mrr",
              "validation", "train s"]
    table = [header]
    notes = []
    for r in rows:
        name = os.path.basename(os.path.normpath(r.path))
        m = r.metrics
        if m is None:
            table.append([name, r.status] + ["-"] * (len(header) - 2))
            if r.status == "interrupted":
                notes.append(f"{name}: continue with tfrs-irns train --resume {r.path}")
            continue
        popular = m.get("popular_baseline") or {}
        val = m.get("validation") or {}
        table.append([
            name, r.status, f"{m.get('best_epoch', '?')}/{m.get('epochs_run', '?')}",
            _num(m.get(f"hit_rate@{k}")), _num(popular.get(f"hit_rate@{k}")), _num(m.get(f"recall@{k}")),
            _num(m.get(f"ndcg@{k}")), _num(m.get("mrr")),
            f"{val['monitor']}={_num(val.get('value'))}" if val.get("monitor") else "-",
            str(m.get("train_seconds", "-")),
        ])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    return "\n".join(lines + notes)
