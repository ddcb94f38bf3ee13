"""Peak memory and speed of ``tfrs-irns train`` with ``data.streaming: true``.

Writes two synthetic Parquet folders into a scratch folder (``--scratch``,
default a new folder under /tmp): ``--small`` rows (default 2M) and
``--large`` rows (default 16M), with the same ``--users`` and ``--items``
(every user and item appears in both; items Zipf-distributed, integer ids,
integer timestamps; files of 1M rows). Then, in one run, each as its own
``tfrs-irns train`` subprocess (one epoch, random split, no validation, no
export):

* ``streamed`` on the large and on the small folder: peak RSS of the process
  (``os.wait4``'s ``ru_maxrss``: the shard pass, training and evaluation), wall
  time, and ``train_examples_per_second`` from its ``metrics.json``;
* ``in_memory`` on the small folder (the default path, ``data.streaming: false``):
  the same figures.

Targets (issue 23): the large streamed run's peak RSS <= 1.3x the small
streamed run's; streamed examples/s >= 0.8x the in-memory path's on the small
folder. The two throughputs are measured in one run, back to back (a busy
machine slows both; the ratio is what to read). Each streamed run builds its
shard cache first (outside ``train_seconds``, inside the wall time and the RSS).

    python benchmarks/streaming.py --json docs/results/streaming.json
    python benchmarks/streaming.py --small 200000 --large 1600000   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _report import print_table, write_json  # noqa: E402  (benchmarks/_report.py)

FILE_ROWS = 1_000_000


def write_folder(folder: str, rows: int, users: int, items: int, seed: int) -> None:
    """``rows`` interactions as Parquet files of ``FILE_ROWS``; every user and item appears."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, items + 1) ** 0.8
    weights /= weights.sum()
    written = 0
    part = 0
    while written < rows:
        n = min(FILE_ROWS, rows - written)
        user = rng.integers(0, users, n)
        item = rng.choice(items, n, p=weights)
        if part == 0:  # every id present in both folders: the vocabularies match
            k = min(n, max(users, items))
            user[:k] = np.arange(k) % users
            item[:k] = np.arange(k) % items
        table = pa.table({
            "user_id": user.astype(np.int64) + 1,
            "item_id": item.astype(np.int64) + 1,
            "timestamp": np.arange(written, written + n, dtype=np.int64),
        })
        pq.write_table(table, os.path.join(folder, f"part-{part:04d}.parquet"))
        written += n
        part += 1


def config_text(path: str, streaming: bool, cache: str, batch_size: int, export: str = "") -> str:
    """The run's YAML; ``export``: the folder to export into (empty: no export)."""
    export_section = (
        f"export:\n  enabled: true\n  base_dir: {export}\n  embeddings: false\n" if export else "export:\n  enabled: false\n"
    )
    return f"""name: streaming-bench
data:
  source: parquet
  path: {path}
  split: random
  validation_fraction: 0.0
  duplicates: keep_all
  streaming: {str(streaming).lower()}
  cache_dir: {cache}
  csv: {{user_column: user_id, item_column: item_id, timestamp_column: timestamp}}
model:
  embedding_dim: 32
train:
  epochs: 1
  batch_size: {batch_size}
  early_stopping: {{enabled: false}}
eval:
  ks: [10, 100]
""" + export_section


def run_train(scratch: str, label: str, path: str, streaming: bool, batch_size: int, export: bool = False) -> dict[str, Any]:
    """One ``tfrs-irns train`` subprocess: its peak RSS, wall time and metrics."""
    config = os.path.join(scratch, f"{label}.yaml")
    saved = os.path.join(scratch, "saved_models", label) if export else ""
    with open(config, "w", encoding="utf-8") as fh:
        fh.write(config_text(path, streaming, os.path.join(scratch, "cache"), batch_size, saved))
    out = os.path.join(scratch, "runs", label)
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tfrs_irns.cli.main", "train", "--config", config, "--output", out],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=scratch,
    )
    output = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{label}: tfrs-irns train failed ({proc.returncode}):\n{output[-3000:]}")
    with open(os.path.join(out, "metrics.json"), encoding="utf-8") as fh:
        metrics = json.load(fh)
    return {
        "label": label,
        "streaming": streaming,
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux: kilobytes
        "wall_seconds": round(wall, 1),
        "train_seconds": metrics["train_seconds"],
        "train_examples_per_second": metrics["train_examples_per_second"],
        "num_train": metrics["num_train"],
        "num_users": metrics["num_users"],
        "num_items": metrics["num_items"],
        "hit_rate@100": metrics["hit_rate@100"],
        "exported": sorted(os.listdir(saved)) if export and os.path.isdir(saved) else None,
        "last_lines": [line for line in output.splitlines() if not line.startswith(("I0000", "W0000", "E0000"))][-3:],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2_000_000)
    parser.add_argument("--large", type=int, default=16_000_000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scratch", default=None, help="folder for the data, caches and runs (default: new in /tmp)")
    parser.add_argument("--skip-large", action="store_true", help="only the small folder (throughput ratio)")
    parser.add_argument("--export", action="store_true", help="each run also evaluates and exports (export.enabled)")
    parser.add_argument("--only", nargs="+", choices=["in_memory_small", "streamed_small", "streamed_large"],
                        help="only these runs (the ratios need all three)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    scratch = args.scratch or tempfile.mkdtemp(prefix="tfrs-irns-streaming-")
    os.makedirs(scratch, exist_ok=True)
    small = os.path.join(scratch, f"rows-{args.small}")
    large = os.path.join(scratch, f"rows-{args.large}")
    for folder, rows in ((small, args.small), (large, 0 if args.skip_large else args.large)):
        if rows and not os.path.isdir(folder):
            write_folder(folder, rows, args.users, args.items, args.seed)
    runs = [("in_memory_small", small, False), ("streamed_small", small, True)]
    if not args.skip_large:
        runs.append(("streamed_large", large, True))
    runs = [run for run in runs if not args.only or run[0] in args.only]
    results = []
    for label, folder, streaming in runs:
        results.append(run_train(scratch, label, folder, streaming, args.batch_size, args.export))
        print(json.dumps(results[-1]), flush=True)  # each figure as soon as it exists (long runs)
    by = {r["label"]: r for r in results}
    if len(by) < 3:
        write_json(args.json, results)
        return
    summary: dict[str, Any] = {
        "label": "ratios",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rows_small": args.small,
        "rows_large": None if args.skip_large else args.large,
        "users": args.users,
        "items": args.items,
        "streamed_vs_in_memory_examples_per_second": round(
            by["streamed_small"]["train_examples_per_second"] / by["in_memory_small"]["train_examples_per_second"], 3
        ),
        "in_memory_vs_streamed_peak_rss_small": round(
            by["in_memory_small"]["peak_rss_mb"] / by["streamed_small"]["peak_rss_mb"], 3
        ),
    }
    if not args.skip_large:
        summary["streamed_large_vs_small_peak_rss"] = round(
            by["streamed_large"]["peak_rss_mb"] / by["streamed_small"]["peak_rss_mb"], 3
        )
    print_table(
        f"tfrs-irns train, one epoch ({scratch})",
        "| run | peak RSS MB | wall s | train s | examples/s | train rows | hit_rate@100 |",
        "|---|---:|---:|---:|---:|---:|---:|",
        [[r["label"], f"{r['peak_rss_mb']:.0f}", f"{r['wall_seconds']:.0f}", f"{r['train_seconds']:.0f}",
          f"{r['train_examples_per_second']:.0f}", f"{r['num_train']:,}", f"{r['hit_rate@100']:.4f}"] for r in results],
    )
    print("\n" + json.dumps(summary, indent=2))
    write_json(args.json, results + [summary])


if __name__ == "__main__":
    main()
