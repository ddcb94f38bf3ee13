"""Latency of an exported model's ``serving_default`` (top-k over the whole catalogue).

Builds a two-tower model with random weights (d = 64) for each catalogue size,
exports it with :func:`tfrs_irns.export.export_model`, loads it back with
``tf.saved_model.load`` in this process (as a Python server would) and times
single calls of ``serving_default`` for each batch size.

    python benchmarks/serving.py                      # 10k / 100k / 1M items, batch 1 and 256
    python benchmarks/serving.py --items 100000 --batches 1 --json serving.json

Target (2 CPU cores): batch-1 p50 <= 10 ms at 100k items.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

import tfrs_irns  # noqa: F401  (Keras 2 before tensorflow)
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrs_irns.data.vocab import Vocabulary
from tfrs_irns.export.saved_model import DEFAULT_CHUNK_SIZE, export_model
from tfrs_irns.layers.towers import CandidateTower, QueryTower
from tfrs_irns.models.two_tower import TwoTowerModel


def _export(num_users: int, num_items: int, dim: int, k: int, base_dir: str, chunk_size: int) -> tuple[str, float]:
    query = QueryTower(num_users + 1, dim, name="query_tower")
    candidate = CandidateTower(num_items + 1, dim, name="candidate_tower")
    model = TwoTowerModel(query, candidate, task=tfrs.tasks.Retrieval())
    users = Vocabulary(ids=np.array([f"u{i}" for i in range(num_users)]))
    items = Vocabulary(ids=np.array([f"i{i}" for i in range(num_items)]))
    start = time.perf_counter()
    path = export_model(model, users, items, None, base_dir, f"bench{num_items}", k=k, chunk_size=chunk_size)
    return path, time.perf_counter() - start


def _time_calls(serve, inputs: list[tf.Tensor], min_calls: int, max_calls: int, seconds: float) -> np.ndarray:
    for x in inputs[:3]:  # warm-up: first calls build kernels and caches
        serve(user_id=x)
    times = []
    budget_end = time.perf_counter() + seconds
    for i in range(max_calls):
        x = inputs[i % len(inputs)]
        start = time.perf_counter()
        out = serve(user_id=x)
        out["item_ids"].numpy()  # make sure the result is materialised
        times.append(time.perf_counter() - start)
        if i + 1 >= min_calls and time.perf_counter() > budget_end:
            break
    return np.asarray(times) * 1000.0


def _size_mb(path: str) -> float:
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)
    return total / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 256])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("-k", type=int, default=100)
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument("--min-calls", type=int, default=20, help="timed calls per cell at least")
    parser.add_argument("--max-calls", type=int, default=500, help="timed calls per cell at most")
    parser.add_argument("--seconds", type=float, default=8.0, help="time budget per cell (after min-calls)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    tf.keras.utils.set_random_seed(0)
    rows = []
    base_dir = tempfile.mkdtemp(prefix="tfrs_irns-serving-bench-")
    try:
        for num_items in args.items:
            path, export_seconds = _export(args.users, num_items, args.dim, args.k, base_dir, args.chunk_size)
            gc.collect()
            start = time.perf_counter()
            loaded = tf.saved_model.load(path)
            load_seconds = time.perf_counter() - start
            serve = loaded.signatures["serving_default"]
            for batch in args.batches:
                inputs = [
                    tf.constant([f"u{u}" for u in rng.integers(0, args.users, batch)]) for _ in range(16)
                ]
                ms = _time_calls(serve, inputs, args.min_calls, args.max_calls, args.seconds)
                rows.append(
                    dict(
                        items=num_items,
                        batch=batch,
                        k=min(args.k, num_items),
                        calls=len(ms),
                        p50_ms=round(float(np.percentile(ms, 50)), 3),
                        p99_ms=round(float(np.percentile(ms, 99)), 3),
                        queries_per_s=round(batch * 1000.0 / float(np.median(ms)), 1),
                        export_s=round(export_seconds, 2),
                        load_s=round(load_seconds, 2),
                        size_mb=round(_size_mb(path), 1),
                    )
                )
                print(rows[-1], file=sys.stderr, flush=True)
            del loaded, serve
            shutil.rmtree(path, ignore_errors=True)
            gc.collect()
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)

    print(
        f"\nserving_default, top-{args.k}, d={args.dim}, {args.users:,} users, chunk_size={args.chunk_size}, "
        f"TF {tf.__version__}, {os.cpu_count()} CPUs, intra/inter-op threads default\n"
    )
    print("| items | batch | p50 ms | p99 ms | queries/s | calls | export s | load s | SavedModel MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['items']:,} | {r['batch']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['queries_per_s']:,.0f} "
            f"| {r['calls']} | {r['export_s']:.1f} | {r['load_s']:.1f} | {r['size_mb']:.1f} |"
        )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"args": vars(args), "results": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
