"""Full-corpus evaluation at scale: seconds and peak RSS, variants side by side.

Default case (the target: under a minute on 2 cores, bounded memory): 20k test
interactions from 2,000 users ranked against a 1M-item catalogue, d = 64,
every K in eval.ks. Variants, each run in a fresh process so its peak RSS is
its own:

* ``numpy`` — what ``tfrs_irns.evaluation`` does: BLAS matmul per chunk of
  users, sampled-threshold top-k and one comparison pass per target;
* ``tf`` — the textbook version: ``tf.matmul`` + ``tf.math.top_k`` per chunk
  and ranks by TensorFlow comparisons, same chunk bound, same metric code.

Both give the same metrics up to float rounding (the largest difference is printed). Examples::

    python benchmarks/eval_scale.py                      # the target case, numpy variant
    python benchmarks/eval_scale.py --users 20000        # worst case: one test item per user
    python benchmarks/eval_scale.py --items 100000 --variants numpy tf --repeats 3

The ``tf`` variant takes minutes at 1M items (744 s vs 34 s for ``numpy`` in
one run on a loaded 2-core machine); compare at 100k items for a quick look.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import tfrs_irns  # noqa: F401  (pins Keras 2 before TensorFlow is touched)

import numpy as np
import tensorflow as tf

from tfrs_irns.evaluation import evaluate as E
from tfrs_irns.evaluation import ranking as R


def make_data(args: argparse.Namespace) -> dict:
    rng = np.random.default_rng(args.seed)
    n, users, items = args.interactions, args.users, args.items
    if users > n:
        raise SystemExit("--users must be <= --interactions")
    test_users = np.concatenate([np.arange(1, users + 1), rng.integers(1, users + 1, n - users)])
    test_items = rng.integers(1, items + 1, n)
    train_users = np.repeat(np.arange(1, users + 1), args.train_per_user)
    train_items = rng.integers(1, items + 1, train_users.shape[0])
    return dict(
        user_emb=rng.standard_normal((users + 1, args.dim), dtype=np.float32),
        item_emb=rng.standard_normal((items + 1, args.dim), dtype=np.float32),
        test_users=test_users,
        test_items=test_items,
        train_users=train_users,
        train_items=train_items,
    )


def tf_rank_and_top_k(query_emb, candidate_emb, targets, target_rows, k, exclude, chunk_size):
    """The same contract as ``ranking.rank_and_top_k``, in TensorFlow ops."""
    cands = tf.constant(candidate_emb[1:])
    rows = target_rows
    num_items = int(cands.shape[0])
    per = max(1, min(chunk_size, R.MAX_CHUNK_BYTES // (4 * num_items)))
    order = np.argsort(rows, kind="stable")
    ptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=query_emb.shape[0]))])
    ranks = np.full(targets.shape[0], R.UNRANKABLE, np.int64)
    tops = []
    cols = tf.range(num_items, dtype=tf.int64)
    for start in range(0, query_emb.shape[0], per):
        stop = min(start + per, query_emb.shape[0])
        scores = tf.matmul(tf.constant(query_emb[start:stop]), cands, transpose_b=True)
        mine = order[ptr[start] : ptr[stop]]
        mine = mine[targets[mine] > 0]
        local = rows[mine] - start
        tcol = targets[mine] - 1
        own = tf.gather_nd(scores, np.stack([local, tcol], 1))
        if exclude is not None:
            sub = exclude[start:stop].tocoo()
            keep = sub.col > 0
            if keep.any():
                where = np.stack([sub.row[keep], sub.col[keep] - 1], 1)
                scores = tf.tensor_scatter_nd_update(
                    scores, where, tf.fill([where.shape[0]], tf.constant(-np.inf, tf.float32))
                )
        vals, idx = tf.math.top_k(scores, k=min(k, num_items))
        tops.append(np.where(vals.numpy() == -np.inf, 0, idx.numpy() + 1))
        for s in range(0, len(mine), per):  # bound the gathered [targets, N] block
            g = tf.gather(scores, local[s : s + per])
            sc = own[s : s + per, None]
            better = (g > sc) | ((g == sc) & (cols[None, :] < tcol[s : s + per, None]))
            ranks[mine[s : s + per]] = tf.reduce_sum(tf.cast(better, tf.int64), axis=1).numpy()
    return ranks, np.concatenate(tops).astype(np.int32), None


def worker(args: argparse.Namespace) -> None:
    data = make_data(args)
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.variant == "tf":
        E.rank_and_top_k = tf_rank_and_top_k  # same evaluate_embeddings around it
    start = time.perf_counter()
    result = E.evaluate_embeddings(
        data["user_emb"],
        data["item_emb"],
        data["test_users"],
        data["test_items"],
        ks=args.ks,
        train_users=data["train_users"],
        train_items=data["train_items"],
        exclude_seen=args.exclude_seen,
        chunk_size=args.chunk_size,
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    metrics = {k: v for k, v in result.items() if isinstance(v, float)}
    report = {"seconds": seconds, "peak_rss_mb": peak, "rss_after_data_mb": rss_data, "metrics": metrics}
    print(json.dumps(report))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interactions", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=2_000, help="distinct test users (queries)")
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--train-per-user", type=int, default=20, help="history items per user")
    parser.add_argument("--exclude-seen", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 5, 10, 50, 100])
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--variants", nargs="+", default=["numpy"], choices=["numpy", "tf"])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", help=argparse.SUPPRESS)  # worker mode
    args = parser.parse_args()
    if args.variant:
        worker(args)
        return

    print(
        f"{args.interactions} test interactions, {args.users} users, {args.items} items, d={args.dim}, "
        f"ks={args.ks}, exclude_seen={args.exclude_seen}, {os.cpu_count()} CPUs"
    )
    runs: dict[str, list[dict]] = {v: [] for v in args.variants}
    for _ in range(args.repeats):
        for variant in args.variants:  # interleaved so machine noise hits both
            cmd = [sys.executable, __file__, *sys.argv[1:], "--variant", variant]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            runs[variant].append(json.loads(out.strip().splitlines()[-1]))
    first = None
    header = f"{'variant':8} {'median s':>9} {'runs s':>24} {'peak RSS MB':>12} {'RSS after data MB':>18}"
    print(header + f" {'ratio':>6}")
    for variant, rs in runs.items():
        med = float(np.median([r["seconds"] for r in rs]))
        first = first or med
        secs = " ".join(f"{r['seconds']:.1f}" for r in rs)
        peak = max(r["peak_rss_mb"] for r in rs)
        base = max(r["rss_after_data_mb"] for r in rs)
        print(f"{variant:8} {med:9.1f} {secs:>24} {peak:12.0f} {base:18.0f} {med / first:6.2f}")
    metrics = [rs[0]["metrics"] for rs in runs.values()]
    # BLAS and TF sum the 64 products in different orders: near-ties may move by a rank.
    diff = max(abs(m[key] - metrics[0][key]) for m in metrics for key in metrics[0])
    print(f"largest metric difference between variants: {diff:.2e}")
    print("hit_rate@100 =", metrics[0].get("hit_rate@100"), " mrr =", metrics[0].get("mrr"))


if __name__ == "__main__":
    main()
