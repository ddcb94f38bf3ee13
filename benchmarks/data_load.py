"""Wall time of ``tfrs-irns data`` on a large CSV and its Parquet twin.

Writes a synthetic interaction log (``--rows``, default 5M: user ids ``u<n>``,
item ids ``i<n>`` Zipf-distributed, integer timestamps) as CSV and as Parquet,
then times, in the same run:

* ``tfrs_irns_seconds``: ``tfrs-irns data --config C`` as a subprocess (load,
  random split, vocabularies, encoding and the summary; Python start-up included);
* ``pyarrow_seconds``: a bare ``pyarrow.csv.read_csv`` (``pyarrow.parquet.read_table``
  for Parquet) of the same file, in this process;
* ``line_reader_seconds``: the line-locating reader that was the only CSV path
  before pyarrow (``load_csv(..., engine="python")``, median of
  ``--line-reader-repeats``, taken in the same rounds); for the
  Parquet row, the same figure of its CSV twin (there is no line reader for Parquet).

The first two are medians of ``--repeats`` runs, taken in turn (bare, CLI,
bare, CLI, ...) so that a busy machine slows both alike; ``stage_seconds`` are
the stage times the median CLI run printed (``tfrs-irns data --json``),
``startup_seconds`` the median wall time of ``tfrs-irns data --help``-level
start-up (Python, numpy, pyarrow and the config imports) in the same run, and
``id_codes_seconds`` the median of the least any vocabulary needs, in this
process: the bare read plus pyarrow's ``dictionary_encode`` of the user and the
item column (one hash pass each, the two in parallel threads). What a run does
beyond that (Python start-up, trimming and sorting the distinct ids, collapsing
repeated pairs, the split, the encoding, the fingerprint and the summary) is
``tfrs_irns_seconds - id_codes_seconds``.

    python benchmarks/data_load.py --json docs/results/data_load.json
    python benchmarks/data_load.py --rows 200000 --no-line-reader   # a quick look
    python benchmarks/data_load.py --keep /tmp/dl5m                 # keep the files (e.g. to train on them)
    git worktree add /tmp/before HEAD~3 && python benchmarks/data_load.py --baseline /tmp/before   # before/after

Targets: ``tfrs_irns_seconds`` <= 3x ``pyarrow_seconds``; >= 5x faster than the line reader.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from _report import print_table, write_json  # benchmarks/_report.py


def _write(folder: str, rows: int, users: int, items: int, seed: int) -> tuple[str, str]:
    rng = np.random.default_rng(seed)
    user = rng.integers(0, users, rows)
    item = (rng.zipf(1.2, rows) - 1) % items
    table = pa.table({
        "user_id": pa.array(np.char.add("u", user.astype(str))),
        "item_id": pa.array(np.char.add("i", item.astype(str))),
        "timestamp": pa.array(1_500_000_000 + rng.integers(0, 10**8, rows)),
    })
    csv_path, parquet_path = os.path.join(folder, "events.csv"), os.path.join(folder, "events.parquet")
    pacsv.write_csv(table, csv_path, pacsv.WriteOptions(quoting_style="none"))
    pq.write_table(table, parquet_path)
    return csv_path, parquet_path


def _config(folder: str, source: str, path: str) -> str:
    config = os.path.join(folder, f"{source}.yaml")
    with open(config, "w", encoding="utf-8") as fh:
        fh.write(f"data:\n  source: {source}\n  path: {path}\n")
    return config


# ``tfrs-irns data`` from the package at sys.argv[1] (checked: a checkout's own folder would shadow it).
_FROM_CHECKOUT = (
    "import sys, os; root = os.path.realpath(sys.argv.pop(1)); import tfrs_irns; "
    "assert os.path.realpath(tfrs_irns.__file__).startswith(root), tfrs_irns.__file__; "
    "from tfrs_irns.cli.main import main; sys.exit(main(sys.argv[1:]))"
)


def _cli_seconds(config: str, folder: str, checkout: Optional[str] = None) -> tuple[float, dict]:
    """Wall time of ``tfrs-irns data --config config`` and the stage times it reports;
    with ``checkout``, that checkout's package (e.g. an earlier commit) instead of this one's."""
    report = os.path.join(folder, "report.json")
    args = ["data", "--config", config, "--json", report]
    if checkout is None:
        command, env, cwd = [sys.executable, "-m", "tfrs_irns.cli.main", *args], None, None
    else:
        command = [sys.executable, "-c", _FROM_CHECKOUT, checkout, *args]
        env, cwd = dict(os.environ, PYTHONPATH=checkout), folder
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env, cwd=cwd)
    seconds = time.perf_counter() - start
    with open(report, encoding="utf-8") as fh:
        return seconds, json.load(fh)["seconds"]


def _startup_seconds() -> float:
    """Python start-up plus what ``tfrs-irns data`` imports before it reads anything."""
    code = "import tfrs_irns.cli.main, tfrs_irns.config, tfrs_irns.data.summary, pyarrow.csv, pyarrow.parquet"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - start


def _id_codes(read) -> None:
    """``read()`` and one dictionary encoding of each id column, in two threads."""
    table = read()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda name: table[name].combine_chunks().dictionary_encode(), ("user_id", "item_id")))


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--items", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="runs of the bare read and the CLI (medians)")
    parser.add_argument("--no-line-reader", action="store_true", help="skip the slow line reader")
    parser.add_argument("--line-reader-repeats", type=int, default=3, help="runs of the line reader (median)")
    parser.add_argument("--baseline", metavar="CHECKOUT",
                        help="also time `tfrs-irns data` of this checkout (e.g. a worktree of an earlier commit) "
                             "in the same rounds: baseline_seconds")
    parser.add_argument("--keep", metavar="DIR", help="write the files to DIR and keep them (default: a temporary folder)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)

    import tfrs_irns  # noqa: F401
    from tfrs_irns.config import CsvConfig
    from tfrs_irns.data.csv_source import load_csv

    folder = args.keep or tempfile.mkdtemp(prefix="tfrs_irns-data-bench-")
    os.makedirs(folder, exist_ok=True)
    try:
        csv_path, parquet_path = _write(folder, args.rows, args.users, args.items, args.seed)
        sizes = {p: os.path.getsize(p) / 1e6 for p in (csv_path, parquet_path)}
        line_reader = None
        line_readers: list[float] = []
        startup = statistics.median(_startup_seconds() for _ in range(args.repeats))
        rows = []
        for fmt, path, bare in (
            ("csv", csv_path, lambda: pacsv.read_csv(csv_path)),
            ("parquet", parquet_path, lambda: pq.read_table(parquet_path)),
        ):
            config = _config(folder, fmt, path)
            bares, floors, clis, baselines = [], [], [], []
            for i in range(args.repeats):
                bares.append(_timed(bare))
                floors.append(_timed(lambda: _id_codes(bare)))
                clis.append(_cli_seconds(config, folder))
                if args.baseline:
                    baselines.append(_cli_seconds(config, folder, args.baseline)[0])
                if fmt == "csv" and not args.no_line_reader and i < args.line_reader_repeats:
                    line_readers.append(_timed(lambda: load_csv(csv_path, CsvConfig(), engine="python")))
            if line_readers:
                line_reader = statistics.median(line_readers)
            median_cli = sorted(clis, key=lambda c: c[0])[len(clis) // 2]
            rows.append({
                "format": fmt,
                "rows": args.rows,
                "tfrs_irns_seconds": round(median_cli[0], 3),
                "pyarrow_seconds": round(statistics.median(bares), 3),
                "id_codes_seconds": round(statistics.median(floors), 3),
                "line_reader_seconds": None if line_reader is None else round(line_reader, 3),
                "file_mb": round(sizes[path], 1),
                "repeats": args.repeats,
                "stage_seconds": {k: round(v, 3) for k, v in median_cli[1].items()},
                "startup_seconds": round(startup, 3),
            })
            if baselines:
                rows[-1].update(baseline_seconds=round(statistics.median(baselines), 3), baseline=args.baseline)
            print(rows[-1], file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)

    cells = []
    for r in rows:
        lr, ours = r["line_reader_seconds"], r["tfrs_irns_seconds"]
        stages = ", ".join(f"{k} {v:.2f}" for k, v in r["stage_seconds"].items() if k != "total")
        cells.append([r["format"], f"{r['file_mb']:.0f}", f"{ours:.2f}", f"{r['pyarrow_seconds']:.2f}",
                      f"{ours / r['pyarrow_seconds']:.1f}x", f"{r['id_codes_seconds']:.2f}",
                      f"{r['id_codes_seconds'] / r['pyarrow_seconds']:.1f}x", "-" if lr is None else f"{lr:.1f}",
                      "-" if lr is None else f"{lr / ours:.1f}x", f"{r['startup_seconds']:.2f}", stages])
    print_table(
        f"{args.rows:,} rows, {args.users:,} users, {args.items:,} items (Zipf 1.2), pyarrow {pa.__version__}, "
        f"{os.cpu_count()} CPUs, medians of {args.repeats}; load average {os.getloadavg()[0]:.1f} at the end",
        "| format | MB | tfrs-irns data s | bare pyarrow s | ratio | read + id codes s | ratio | line reader s "
        "| speed-up | start-up s | stages s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        cells,
    )
    for r in rows:
        if "baseline_seconds" in r:
            print(f"{r['format']}: {r['baseline']} took {r['baseline_seconds']:.2f} s, this checkout "
                  f"{r['tfrs_irns_seconds']:.2f} s ({r['baseline_seconds'] / r['tfrs_irns_seconds']:.2f}x)")
    write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
