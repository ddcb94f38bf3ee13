"""FAISS index against the brute-force SavedModel at catalogue scale.

Synthetic clustered item embeddings (``--items``, default 1M, d = 64: 1,000
cluster centres plus noise, as trained embeddings cluster) and queries drawn
the same way. For each ``--kinds`` index: build time, index file size and the
growth of the process's peak RSS while building, recall@100 against exact
brute force (numpy, ties to the lower row) over ``--queries`` queries, and the
p50 / p99 latency of a batch-1 search; beside it, the batch-1 p50 of the
brute-force ``serving_default`` of the same embeddings exported as a SavedModel,
timed in the same process.

    python benchmarks/ann.py --json docs/results/ann.json
    python benchmarks/ann.py --items 100000 --kinds hnsw     # a quick look
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import shutil
import sys
import tempfile
import time

import numpy as np

import tfrs_irns  # noqa: F401  (Keras 2 before tensorflow)
import tensorflow as tf

from tfrs_irns.export.ann import AnnIndex, AnnParams, exact_top_k, recall_at_k
from tfrs_irns.export.saved_model import export_embeddings

from _report import print_table, write_json  # benchmarks/_report.py


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _latencies(fn, calls: int) -> np.ndarray:
    fn(0)
    times = []
    for i in range(calls):
        start = time.perf_counter()
        fn(i)
        times.append(time.perf_counter() - start)
    return np.asarray(times) * 1000.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--kinds", nargs="+", default=["hnsw", "ivfpq"], choices=["flat", "hnsw", "ivfpq"])
    parser.add_argument("--hnsw-m", type=int, default=32)
    parser.add_argument("--ef-construction", type=int, default=40)
    parser.add_argument("--ef-search", type=int, default=128)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--nprobe", type=int, default=32)
    parser.add_argument("--pq-m", type=int, default=16)
    parser.add_argument("-k", type=int, default=100)
    parser.add_argument("--calls", type=int, default=200, help="timed batch-1 calls")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((1000, args.dim)).astype(np.float32)
    items = centres[rng.integers(0, 1000, args.items)] + 0.5 * rng.standard_normal((args.items, args.dim), np.float32)
    queries = centres[rng.integers(0, 1000, args.queries)] + 0.5 * rng.standard_normal((args.queries, args.dim), np.float32)
    start = time.perf_counter()
    exact = exact_top_k(queries, items, args.k, rows_per_block=32)
    print(f"exact top-{args.k} of {args.queries} queries: {time.perf_counter() - start:.1f} s", file=sys.stderr)

    rows = []
    folder = tempfile.mkdtemp(prefix="tfrs_irns-ann-bench-")
    try:
        # The brute-force SavedModel of the same embeddings: the queries are its users.
        users = np.concatenate([np.zeros((1, args.dim), np.float32), queries])
        table = np.concatenate([np.zeros((1, args.dim), np.float32), items])
        path = export_embeddings(users, table, [f"u{i}" for i in range(args.queries)],
                                 [f"i{i}" for i in range(args.items)], None, folder, "brute", k=args.k)
        serve = tf.saved_model.load(path).signatures["serving_default"]
        inputs = [tf.constant([f"u{i}"]) for i in range(args.queries)]
        brute = _latencies(lambda i: serve(user_id=inputs[i % len(inputs)])["item_ids"].numpy(), min(args.calls, 50))
        brute_p50 = float(np.median(brute))
        print(f"brute-force SavedModel batch-1 p50 {brute_p50:.2f} ms", file=sys.stderr, flush=True)
        del serve
        gc.collect()

        for kind in args.kinds:
            params = AnnParams(kind=kind, hnsw_m=args.hnsw_m, ef_construction=args.ef_construction,
                               ef_search=args.ef_search, nlist=args.nlist, nprobe=args.nprobe, pq_m=args.pq_m)
            rss_before = _rss_mb()
            index = AnnIndex.build(items, params)
            rss_growth = _rss_mb() - rss_before
            index_dir = os.path.join(folder, kind)
            os.makedirs(index_dir)
            index.save(index_dir)
            _, found = index.search(queries, args.k)
            ms = _latencies(lambda i: index.search(queries[i % args.queries : i % args.queries + 1], args.k), args.calls)
            rows.append(dict(
                kind=kind,
                num_items=args.items,
                dim=args.dim,
                k=args.k,
                params={k: v for k, v in index.info["params"].items()},
                build_seconds=index.info["build_seconds"],
                index_mb=round(os.path.getsize(os.path.join(index_dir, "faiss.index")) / 1e6, 1),
                table_mb=round(items.nbytes / 1e6, 1),
                peak_rss_growth_mb=round(rss_growth, 1),
                recall_at_100=round(recall_at_k(found, exact), 4),
                p50_ms=round(float(np.median(ms)), 3),
                p99_ms=round(float(np.percentile(ms, 99)), 3),
                brute_force_savedmodel_p50_ms=round(brute_p50, 3),
            ))
            print(rows[-1], file=sys.stderr, flush=True)
            del index
            gc.collect()
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    print_table(
        f"{args.items:,} clustered items, d={args.dim}, top-{args.k}, {args.queries} queries, {os.cpu_count()} CPUs",
        "| index | build s | index MB | peak RSS +MB | recall@100 | batch-1 p50 ms | p99 ms | brute-force SavedModel p50 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        [[r["kind"], f"{r['build_seconds']:.1f}", f"{r['index_mb']:.0f}", f"{r['peak_rss_growth_mb']:.0f}",
          f"{r['recall_at_100']:.4f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
          f"{r['brute_force_savedmodel_p50_ms']:.1f}"] for r in rows],
    )
    write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
