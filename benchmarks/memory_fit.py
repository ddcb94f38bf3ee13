"""What fits where: peak RSS of ``tfrs-irns train`` against rows, users and items, fitted per path.

A small grid of synthetic Parquet folders (``streaming.write_folder``: Zipf items,
every user and item present, integer ids), varying one thing at a time around a
centre point: rows (``--rows``, at the centre's users and items), users
(``--users``) and items (``--items``). Each point is trained by its own
``tfrs-irns train`` subprocess, once with ``data.streaming: false`` (in memory)
and once with ``true`` (a fresh shard cache per run), for each ``--dims``
embedding size: one epoch, random split, ``data.test_fraction`` small
(``--test-fraction``, so evaluation does not dominate the time), no
validation, ``eval.ks: [10]``, no export. The peak is ``os.wait4``'s
``ru_maxrss`` of the whole process: load (or the shard pass), training and the
test evaluation, whichever is highest.

Per path and embedding size, least squares fits

    peak_rss ≈ base + a·rows + b·users + c·items + S

where S, not fitted, is the test evaluation's score matrix: ``eval.chunk_size``
(1024) users × all items × 4 bytes, capped at 256 MiB (``tfrs_irns.topk``'s
``chunk_rows``), so it grows with the items up to 65,536 items and then stops.
It prints the residuals, the rows, users and items per GiB (1 / a, 1 / b,
1 / c) and what a ``--budget-gb`` machine takes: the most rows at the centre's
users and items, and likewise the most users and the most items.
``--validate ROWS,USERS,ITEMS`` points are measured too but kept out of the
fit: the report sets the fit's prediction beside the measured peak (how far the
line extrapolates). ``/proc/loadavg`` is recorded around every run (RSS does
not depend on the load; time does, and is only recorded, not fitted).
``--reuse`` takes runs from earlier ``--json`` files instead of measuring them
again (same label: path, embedding size and point), so a grid can grow in steps.

    python benchmarks/memory_fit.py --json docs/results/memory-fit.json
    python benchmarks/memory_fit.py --rows 20000 40000 --users 2000 --items 1000 --dims 32  # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _report import print_table, write_json  # noqa: E402  (benchmarks/_report.py)
from streaming import config_text, write_folder  # noqa: E402  (benchmarks/streaming.py)

MIB_PER_GIB = 1024
FEATURES = ("rows", "users", "items")
PATHS = {"in_memory": False, "streamed": True}


def grid(rows: Sequence[int], users: Sequence[int], items: Sequence[int]) -> list[dict[str, int]]:
    """The points: the centre (each list's middle value) and one list varied at a time, no repeats."""
    centre = {"rows": rows[len(rows) // 2], "users": users[len(users) // 2], "items": items[len(items) // 2]}
    points = [centre]
    for name, values in zip(FEATURES, (rows, users, items)):
        for value in values:
            point = dict(centre, **{name: value})
            if point not in points:
                points.append(point)
    return points


def score_chunk_mb(items: int, test_users: int, chunk_size: int = 1024) -> float:
    """S: the evaluation's score matrix of one chunk of test users, MiB (the ranking's own rule)."""
    from tfrs_irns.topk import chunk_rows  # lazily: it imports TensorFlow

    return chunk_rows(chunk_size, items, test_users) * items * 4 / 2**20


def fit(points: Sequence[dict[str, float]]) -> dict[str, Any]:
    """Least squares ``peak_rss_mb − eval_scores_mb ≈ base + a·rows + b·users + c·items`` over ``points``.

    ``eval_scores_mb`` (S, default 0) is known, not fitted. Returns the coefficients in MiB
    (base) and bytes per row, user and item, and each point's residual (measured − fitted, MiB)."""
    x = np.array([[1.0] + [float(p[name]) for name in FEATURES] for p in points])
    y = np.array([float(p["peak_rss_mb"]) - float(p.get("eval_scores_mb", 0.0)) for p in points])
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise ValueError("the points must vary rows, users and items independently (at least 4 distinct points)")
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    residuals = y - x @ coef
    return {
        "base_mb": float(coef[0]),
        **{f"bytes_per_{name[:-1]}": float(c) * 2**20 for name, c in zip(FEATURES, coef[1:])},
        "residuals_mb": [float(r) for r in residuals],
        "max_abs_residual_mb": float(np.abs(residuals).max()),
    }


def per_gib(model: dict[str, Any], centre: dict[str, int], budget_gb: float, scores_mb: float) -> dict[str, Any]:
    """Rows, users and items per GiB from ``fit``'s model, and the most of each a ``budget_gb`` GiB machine takes
    with the other two at ``centre``'s values and S = ``scores_mb`` (None where the fitted cost is not positive:
    no measurable limit)."""
    out: dict[str, Any] = {}
    for name in FEATURES:
        cost = model[f"bytes_per_{name[:-1]}"]
        out[f"{name}_per_gb"] = None if cost <= 0 else 2**30 / cost
        others_mb = model["base_mb"] + scores_mb + sum(
            model[f"bytes_per_{other[:-1]}"] * centre[other] / 2**20 for other in FEATURES if other != name
        )
        out[f"max_{name}_in_{budget_gb:g}gb"] = None if cost <= 0 else (budget_gb * MIB_PER_GIB - others_mb) * 2**20 / cost
    return out


def loadavg() -> str:
    """The 1-, 5- and 15-minute load averages (``/proc/loadavg``), or empty where there is none."""
    try:
        with open("/proc/loadavg", encoding="utf-8") as fh:
            return " ".join(fh.read().split()[:3])
    except OSError:
        return ""


def folder_of(scratch: str, point: dict[str, Any]) -> str:
    """The synthetic Parquet folder of ``point``."""
    return os.path.join(scratch, "data", "rows{rows}-users{users}-items{items}".format(**point))


def label_of(point: dict[str, Any], path: str, dim: int) -> str:
    """A run's name: path, embedding size and point (also how ``--reuse`` finds it)."""
    return f"{path}-d{dim}-" + os.path.basename(folder_of("", point))


def measure(scratch: str, point: dict[str, int], path: str, dim: int, args: argparse.Namespace) -> dict[str, Any]:
    """One ``tfrs-irns train`` subprocess on ``point``'s folder: peak RSS (MiB), wall time, load around it."""
    folder = folder_of(scratch, point)
    label = label_of(point, path, dim)
    config = os.path.join(scratch, f"{label}.yaml")
    with open(config, "w", encoding="utf-8") as fh:
        fh.write(config_text(folder, PATHS[path], os.path.join(scratch, "cache", label), args.batch_size))
    overrides = [f"model.embedding_dim={dim}", "eval.ks=[10]", "train.early_stopping.monitor=loss",
                 f"data.test_fraction={args.test_fraction}"]
    command = [sys.executable, "-m", "tfrs_irns.cli.main", "train", "--config", config,
               "--output", os.path.join(scratch, "runs", label), "--set", *overrides]
    load_before, start = loadavg(), time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=scratch)
    log = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{label}: tfrs-irns train failed:\n{log[-3000:]}")
    with open(os.path.join(scratch, "runs", label, "metrics.json"), encoding="utf-8") as fh:
        metrics = json.load(fh)
    row = {"label": label, "path": path, "embedding_dim": dim, **point, "validate": point in args.validate,
           "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: kilobytes
           # Evaluation's peak (eval.chunk_size users x all items) needs that many test users who are not cold.
           "num_test_users": metrics["num_test_users"], "num_train": metrics["num_train"],
           "wall_seconds": round(time.perf_counter() - start, 1), "loadavg_before": load_before, "loadavg_after": loadavg()}
    print(json.dumps(row), flush=True)  # each figure as soon as it exists (long grid)
    return row


def predict(model: dict[str, Any], point: dict[str, Any]) -> float:
    """``fit``'s peak RSS (MiB) at ``point``, S included."""
    linear = sum(model[f"bytes_per_{name[:-1]}"] * point[name] for name in FEATURES) / 2**20
    return model["base_mb"] + linear + float(point.get("eval_scores_mb", 0.0))


def report(rows: list[dict[str, Any]], centre: dict[str, int], budget_gb: float) -> list[dict[str, Any]]:
    """Per path and embedding size: the fit on the grid, its residuals and per-GiB figures, the held-out
    (``validate``) runs beside its prediction, then the fit on all the points; printed and returned."""
    summaries = []
    for path in PATHS:
        for dim in sorted({r["embedding_dim"] for r in rows}):
            mine = [r for r in rows if r["path"] == path and r["embedding_dim"] == dim]
            points = [r for r in mine if not r.get("validate")]
            if not points:
                continue
            summary = _summary(f"fit {path} d={dim}", points, centre, budget_gb)
            summary["validation"] = [
                {**{k: r[k] for k in FEATURES}, "measured_mb": r["peak_rss_mb"], "predicted_mb": round(predict(summary, r), 1)}
                for r in mine if r.get("validate")
            ]
            for check in summary["validation"]:
                print(f"  held out: {check['rows']:,} rows, {check['users']:,} users, {check['items']:,} items: "
                      f"measured {check['measured_mb']:.0f} MiB, fit {check['predicted_mb']:.0f} MiB")
            summaries.append(summary)
            if len(mine) > len(points):  # the held-out runs widen the range: the fit on everything
                summaries.append(_summary(f"fit {path} d={dim}, all points", mine, centre, budget_gb))
    return summaries


def _summary(label: str, points: list[dict[str, Any]], centre: dict[str, int], budget_gb: float) -> dict[str, Any]:
    """``fit`` and ``per_gib`` on ``points`` (one path and embedding size), printed as a table."""
    model = fit(points)
    summary = {"label": label, "path": points[0]["path"], "embedding_dim": points[0]["embedding_dim"], **model,
               **per_gib(model, centre, budget_gb, score_chunk_mb(centre["items"], 1024))}
    print_table(
        f"{label}: peak RSS ≈ {model['base_mb']:.0f} MiB + {model['bytes_per_row']:.0f} B/row + "
        f"{model['bytes_per_user']:.0f} B/user + {model['bytes_per_item']:.0f} B/item + S",
        "| rows | users | items | peak RSS MiB | S MiB | residual MiB |", "|---:|---:|---:|---:|---:|---:|",
        [[f"{p['rows']:,}", f"{p['users']:,}", f"{p['items']:,}", f"{p['peak_rss_mb']:.0f}",
          f"{p['eval_scores_mb']:.0f}", f"{res:+.0f}"] for p, res in zip(points, model["residuals_mb"])],
    )
    print("  " + ", ".join(f"{key}: {_count(value)}" for key, value in summary.items() if key.endswith("gb")))
    return summary


def _count(value: float | None) -> str:
    """A count for the per-GiB line: millions with one decimal, or 'no measurable limit'."""
    return "no measurable limit" if value is None else f"{value / 1e6:,.2f}M"


def _point(text: str) -> dict[str, int]:
    """``ROWS,USERS,ITEMS`` as a point."""
    try:
        rows, users, items = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected ROWS,USERS,ITEMS (three integers)") from None
    return {"rows": rows, "users": users, "items": items}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[250_000, 500_000, 1_000_000])
    parser.add_argument("--users", type=int, nargs="+", default=[20_000, 100_000, 400_000])
    parser.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000, 400_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[32])
    parser.add_argument("--paths", nargs="+", choices=list(PATHS), default=list(PATHS))
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--test-fraction", type=float, default=0.02)
    parser.add_argument("--budget-gb", type=float, default=24.0)
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (each RSS is its own process's)")
    parser.add_argument("--validate", type=_point, nargs="+", default=[], metavar="ROWS,USERS,ITEMS",
                        help="points measured but kept out of the fit (the fit's prediction is printed beside)")
    parser.add_argument("--reuse", nargs="+", default=[], metavar="JSON",
                        help="take runs from these earlier --json files instead of measuring them again")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scratch", default=None, help="folder for the data, caches and runs (default: new in /tmp)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    points = grid(args.rows, args.users, args.items)
    every = points + [p for p in args.validate if p not in points]
    if any(max(p["users"], p["items"]) > p["rows"] for p in every):
        parser.error("every point needs rows >= users and rows >= items (write_folder puts every id in)")
    reused = {}
    for earlier in args.reuse:
        with open(earlier, encoding="utf-8") as fh:
            reused.update({r["label"]: dict(r, validate={k: r[k] for k in FEATURES} in args.validate) for r in json.load(fh)
                           if r.get("path") in PATHS and "rows" in r})
    jobs = [(p, path, dim) for dim in args.dims for p in every for path in args.paths
            if label_of(p, path, dim) not in reused]
    scratch = args.scratch or tempfile.mkdtemp(prefix="tfrs-irns-memory-fit-")
    for point in {os.path.basename(folder_of("", p)): p for p, _, _ in jobs}.values():
        if not os.path.isdir(folder_of(scratch, point)):
            write_folder(folder_of(scratch, point), point["rows"], point["users"], point["items"], args.seed)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        measured = {r["label"]: r for r in pool.map(lambda job: measure(scratch, job[0], job[1], job[2], args), jobs)}
    measured.update(reused)
    rows = [measured[label_of(p, path, dim)] for dim in args.dims for p in every for path in args.paths]
    for row in rows:
        row["eval_scores_mb"] = round(score_chunk_mb(row["items"], row["num_test_users"]), 1)
    started = rows[0]["loadavg_before"] if rows else ""
    summaries = report(rows, points[0], args.budget_gb)
    meta = {"label": "run", "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "scratch": scratch,
            "command": " ".join(["python", "benchmarks/memory_fit.py", *sys.argv[1:]]), "jobs": args.jobs,
            "batch_size": args.batch_size, "test_fraction": args.test_fraction, "loadavg_first": started,
            "loadavg_last": loadavg(), "centre": points[0]}
    write_json(args.json, rows + summaries + [meta])


if __name__ == "__main__":
    main()
