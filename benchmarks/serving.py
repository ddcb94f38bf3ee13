"""Latency of an exported model's ``serving_default`` (top-k over the whole catalogue) against the matmul floor.

For each catalogue size, exports random embeddings (d = 64) with
:func:`tfrs_irns.export.export_embeddings` in each ``--precisions``, loads the
SavedModel back with ``tf.saved_model.load`` in this process (as a Python
server would) and times single calls of ``serving_default`` for each batch
size. ``floor_ms`` is the p50 of a bare float32 ``tf.matmul([batch, d], [d, N])``
(a ``tf.function``, same process, same run): scoring cannot be cheaper than
that. bfloat16 rows also give ``recall_vs_float32``: the share of the exact
float32 top-k the bfloat16 export returns (over 256 random users).

    python benchmarks/serving.py --json docs/results/serving.json     # 10k / 100k / 1M items, batch 1 and 256
    python benchmarks/serving.py --items 100000 --batches 1 --precisions float32

Targets (1M items, k = 100, float32): p50 <= 3x floor_ms at batch 256 and at batch 1.
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time

import numpy as np

import tfrs_irns  # noqa: F401  (Keras 2 before tensorflow)
import tensorflow as tf

from tfrs_irns.export.saved_model import DEFAULT_CHUNK_SIZE, PRECISIONS, export_embeddings

from _report import print_table, write_json  # benchmarks/_report.py


def _export(user_emb: np.ndarray, item_emb: np.ndarray, k: int, base_dir: str, chunk_size: int,
            precision: str) -> tuple[str, float]:
    users = [f"u{i}" for i in range(len(user_emb) - 1)]
    items = [f"i{i}" for i in range(len(item_emb) - 1)]
    start = time.perf_counter()
    path = export_embeddings(user_emb, item_emb, users, items, None, base_dir, f"bench{len(items)}{precision}",
                             k=k, chunk_size=chunk_size, precision=precision)
    return path, time.perf_counter() - start


def _floor_ms(item_emb: np.ndarray, batch: int, calls: int) -> float:
    """p50 of a bare float32 [batch, d] x [d, N] matmul."""
    table = tf.constant(item_emb[1:].T.copy())
    matmul = tf.function(lambda q: tf.matmul(q, table))
    q = tf.random.normal([batch, item_emb.shape[1]])
    matmul(q).numpy()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        matmul(q).numpy()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1000.0


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
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"], choices=PRECISIONS)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("-k", type=int, default=100)
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
    parser.add_argument("--min-calls", type=int, default=10, help="timed calls per cell at least")
    parser.add_argument("--max-calls", type=int, default=300, help="timed calls per cell at most")
    parser.add_argument("--seconds", type=float, default=6.0, help="time budget per cell (after min-calls)")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    rows = []
    base_dir = tempfile.mkdtemp(prefix="tfrs_irns-serving-bench-")
    try:
        for num_items in args.items:
            user_emb = (rng.standard_normal((args.users + 1, args.dim)) * 0.1).astype(np.float32)
            item_emb = (rng.standard_normal((num_items + 1, args.dim)) * 0.1).astype(np.float32)
            k = min(args.k, num_items)
            probe = rng.integers(0, args.users, 256)
            exact = np.argsort(-(user_emb[1 + probe] @ item_emb[1:].T), axis=1, kind="stable")[:, :k]
            floors = {}
            for precision in args.precisions:
                path, export_seconds = _export(user_emb, item_emb, args.k, base_dir, args.chunk_size, precision)
                gc.collect()
                start = time.perf_counter()
                loaded = tf.saved_model.load(path)
                load_seconds = time.perf_counter() - start
                serve = loaded.signatures["serving_default"]
                got = serve(user_id=tf.constant([f"u{u}" for u in probe]))["item_ids"].numpy().astype(str)
                got_rows = np.char.lstrip(got, "i").astype(np.int64)
                recall = float(np.mean([len(set(g) & set(e)) / k for g, e in zip(got_rows, exact)]))
                for batch in args.batches:
                    inputs = [
                        tf.constant([f"u{u}" for u in rng.integers(0, args.users, batch)]) for _ in range(16)
                    ]
                    ms = _time_calls(serve, inputs, args.min_calls, args.max_calls, args.seconds)
                    if batch not in floors:
                        floors[batch] = _floor_ms(item_emb, batch, max(len(ms), args.min_calls))
                    p50 = float(np.percentile(ms, 50))
                    rows.append(
                        dict(
                            num_items=num_items,
                            batch_size=batch,
                            k=k,
                            precision=precision,
                            p50_ms=round(p50, 3),
                            p99_ms=round(float(np.percentile(ms, 99)), 3),
                            floor_ms=round(floors[batch], 3),
                            ratio_to_floor=round(p50 / floors[batch], 2),
                            recall_vs_float32=round(recall, 4),
                            calls=len(ms),
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

    print_table(
        f"serving_default, top-{args.k}, d={args.dim}, {args.users:,} users, chunk_size={args.chunk_size}, "
        f"TF {tf.__version__}, {os.cpu_count()} CPUs, intra/inter-op threads default",
        "| items | batch | precision | p50 ms | p99 ms | floor ms | p50 / floor | recall vs f32 | calls | MB |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        [[f"{r['num_items']:,}", str(r["batch_size"]), r["precision"], f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
          f"{r['floor_ms']:.2f}", f"{r['ratio_to_floor']:.2f}", f"{r['recall_vs_float32']:.4f}", str(r["calls"]),
          f"{r['size_mb']:.1f}"] for r in rows],
    )
    write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
