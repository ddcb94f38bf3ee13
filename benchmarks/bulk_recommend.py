"""Users per second of ``tfrs-irns recommend --users FILE --output PATH`` (bulk recommendations).

Exports random embeddings at quickstart size (5,000 users, 20,000 items, d = 64,
export.k = 100) with each user's seen items (20 per user, stored in the
SavedModel and excluded, as a trained export does), then runs
:func:`tfrs_irns.export.recommend.recommend_many` over ``--users`` ids (the
known users repeated, plus 1 in 10 unknown ids) to ``.jsonl`` and ``.parquet``,
in this process, for each ``-k``. Reported: wall seconds (scoring, titles and
the file), users/s, the output's size.

    python benchmarks/bulk_recommend.py --json docs/results/bulk_recommend.json     # 100k users, k 10 and 100
    python benchmarks/bulk_recommend.py --users 10000 --ks 10
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np

import tfrs_irns  # noqa: F401  (Keras 2 before tensorflow)

from tfrs_irns.data.prepare import seen_csr
from tfrs_irns.export.recommend import recommend_many
from tfrs_irns.export.saved_model import export_embeddings

from _report import print_table, write_json  # benchmarks/_report.py


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000, help="user ids in the file (default 100,000)")
    parser.add_argument("--ks", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--formats", nargs="+", default=[".jsonl", ".parquet"])
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    num_users, num_items, dim = 5000, 20000, 64
    users = rng.normal(size=(num_users + 1, dim)).astype(np.float32)
    items = rng.normal(size=(num_items + 1, dim)).astype(np.float32)
    user_ids = np.array([f"u{i}" for i in range(num_users)])
    item_ids = np.array([f"m{i}" for i in range(num_items)])
    titles = np.array([""] + [f"Movie {i} (19{i % 100:02d})" for i in range(num_items)])
    seen_user = np.repeat(np.arange(1, num_users + 1), 20)
    seen = seen_csr(seen_user, rng.integers(1, num_items + 1, len(seen_user)), num_users)
    folder = tempfile.mkdtemp(prefix="bulk-bench-")
    rows = []
    try:
        export_embeddings(users, items, user_ids, item_ids, titles, base_dir=folder, name="m", k=100, seen=seen)
        ids = [f"u{i % num_users}" if i % 10 else f"new{i}" for i in range(args.users)]
        for k in args.ks:
            for fmt in args.formats:
                out = os.path.join(folder, f"recs{fmt}")
                start = time.perf_counter()
                done = recommend_many(os.path.join(folder, "m"), ids, out, k, progress_every=1e9)
                seconds = time.perf_counter() - start
                rows.append({"users": args.users, "k": k, "format": fmt, "seconds": round(seconds, 2),
                             "users_per_second": round(args.users / seconds, 1),
                             "output_mb": round(os.path.getsize(out) / 1e6, 1),
                             "unknown_users": done["unknown_users"]})
                print(rows[-1], file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print_table(
        f"bulk recommendations: {args.users:,} users, 20,000 items, d = 64, seen items excluded",
        "| k | format | seconds | users/s | output MB |", "|---:|---|---:|---:|---:|",
        [[str(r["k"]), r["format"], f"{r['seconds']:.1f}", f"{r['users_per_second']:,.0f}", f"{r['output_mb']:.1f}"]
         for r in rows],
    )
    write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
