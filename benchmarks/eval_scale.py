"""Full-corpus ranking at scale: the package's ranking against the bare matmul floor.

Each test user is scored against every item (d = 64), its seen items excluded,
the top 100 kept and every test item's exact rank found
(``tfrs_irns.evaluation.ranking.rank_and_top_k``, i.e. ``tfrs_irns.topk``).
The floor is the bare matrix product of the same query chunks against the same
item table, nothing else: what no exact ranking can beat. Everything runs in
one process, interleaved, ``--repeats`` times; the medians are compared.

Rows (one per catalogue size and path):

* ``path``: ``numpy`` (BLAS per chunk, then one cache-resident row at a time),
  ``tf`` (the ``tf.function`` per fixed-size chunk that a GPU runs), ``auto``
  (what the package picks here: numpy without a GPU);
* ``users_per_second`` of that path, ``floor_users_per_second`` (the faster of
  ``numpy``'s and ``tf.matmul``'s bare products, both also given),
  ``ratio = users_per_second / floor_users_per_second``.

Both paths' answers are compared (ranks and top-k lists): ``max_rank_diff``
is the largest rank difference (float sums in different orders may swap
near-ties; 0 when exact). Examples::

    python benchmarks/eval_scale.py --json eval_scale.json
    python benchmarks/eval_scale.py --items 100000 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tfrs_irns  # noqa: E402,F401  (pins Keras 2 before TensorFlow is touched)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from _report import print_table, write_json  # noqa: E402
from tfrs_irns import topk  # noqa: E402
from tfrs_irns.evaluation import evaluate as E  # noqa: E402
from tfrs_irns.evaluation import ranking as R  # noqa: E402


def make_case(num_items: int, args: argparse.Namespace) -> dict:
    """Random embeddings; ``--interactions`` test pairs over ``--users`` users, ``--train-per-user`` seen items each."""
    rng = np.random.default_rng(args.seed)
    n, users = args.interactions, args.users
    test_users = np.concatenate([np.arange(1, users + 1), rng.integers(1, users + 1, n - users)])
    train_users = np.repeat(np.arange(1, users + 1), args.train_per_user)
    train_items = rng.integers(1, num_items + 1, train_users.shape[0])
    queries = np.arange(1, users + 1)
    user_emb = rng.standard_normal((users + 1, args.dim), dtype=np.float32)
    item_emb = rng.standard_normal((num_items + 1, args.dim), dtype=np.float32)
    test_items = rng.integers(1, num_items + 1, n)
    _, rows = np.unique(test_users, return_inverse=True)
    return dict(
        queries=user_emb[queries],
        item_emb=item_emb,
        targets=test_items,
        rows=rows,
        exclude=E._seen_matrix(queries, train_users, train_items, num_items),
    )


def floor_numpy(case: dict, chunk: int) -> float:
    queries, items = case["queries"], case["item_emb"][1:]
    per = topk.chunk_rows(chunk, items.shape[0], queries.shape[0])
    start = time.perf_counter()
    for s in range(0, queries.shape[0], per):
        np.matmul(queries[s : s + per], items.T)
    return time.perf_counter() - start


@tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32), tf.TensorSpec([None, None], tf.float32)])
def _bare_matmul(queries: tf.Tensor, items: tf.Tensor) -> tf.Tensor:
    # Return one number: the product is computed, nothing is copied out.
    return tf.matmul(queries, items, transpose_b=True)[0, 0]


def floor_tf(case: dict, chunk: int, items_t: tf.Tensor) -> float:
    queries = case["queries"]
    per = topk.chunk_rows(chunk, int(items_t.shape[0]), queries.shape[0])
    padded = np.zeros((per, queries.shape[1]), np.float32)
    start = time.perf_counter()
    for s in range(0, queries.shape[0], per):
        n = min(per, queries.shape[0] - s)
        padded[:n] = queries[s : s + n]  # the same fixed-size chunks as the tf path
        _bare_matmul(tf.constant(padded), items_t).numpy()
    return time.perf_counter() - start


def ranking(case: dict, chunk: int, device: str) -> tuple[float, tuple]:
    start = time.perf_counter()
    out = R.rank_and_top_k(
        case["queries"], case["item_emb"], case["targets"], case["rows"], k=100,
        exclude=case["exclude"], chunk_size=chunk, device=device,
    )
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--interactions", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=2_000, help="distinct test users (queries)")
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--train-per-user", type=int, default=20, help="seen items excluded per user")
    parser.add_argument("--chunk-size", type=int, default=R.CHUNK_SIZE)
    parser.add_argument("--paths", nargs="+", default=["numpy", "tf", "auto"], choices=["numpy", "tf", "auto"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    if args.users > args.interactions:
        raise SystemExit("--users must be <= --interactions")

    print(
        f"{args.interactions} test interactions, {args.users} users, d={args.dim}, k=100, "
        f"{args.train_per_user} seen items excluded per user, {os.cpu_count()} CPUs, "
        f"GPU visible: {topk.gpu_visible()} (auto = {topk.resolve_device('auto')})",
        flush=True,
    )
    rows = []
    for num_items in args.items:
        case = make_case(num_items, args)
        items_t = tf.convert_to_tensor(case["item_emb"][1:])
        times: dict[str, list[float]] = {"floor_numpy": [], "floor_tf": [], **{p: [] for p in args.paths}}
        answers = {}
        warm = dict(case, queries=case["queries"][:2], rows=np.zeros(2, np.int64), targets=case["targets"][:2],
                    exclude=case["exclude"][:2])
        ranking(warm, args.chunk_size, "tf")  # trace the tf.function once, outside the timings
        for _ in range(args.repeats):  # interleaved: machine noise hits every variant
            times["floor_numpy"].append(floor_numpy(case, args.chunk_size))
            times["floor_tf"].append(floor_tf(case, args.chunk_size, items_t))
            for path in args.paths:
                seconds, answers[path] = ranking(case, args.chunk_size, path)
                times[path].append(seconds)
        users = case["queries"].shape[0]
        ups = {name: users / statistics.median(t) for name, t in times.items()}
        floor = max(ups["floor_numpy"], ups["floor_tf"])
        diff = 0
        if "numpy" in answers and "tf" in answers:
            a, b = answers["numpy"], answers["tf"]
            known = a[0] != R.UNRANKABLE
            diff = int(np.abs(a[0][known] - b[0][known]).max(initial=0))
        for path in args.paths:
            rows.append(
                dict(
                    num_items=num_items,
                    num_users=users,
                    num_targets=int(case["targets"].shape[0]),
                    dim=args.dim,
                    path=path,
                    users_per_second=round(ups[path], 1),
                    floor_users_per_second=round(floor, 1),
                    floor_numpy_users_per_second=round(ups["floor_numpy"], 1),
                    floor_tf_users_per_second=round(ups["floor_tf"], 1),
                    ratio=round(ups[path] / floor, 3),
                    seconds=[round(t, 2) for t in times[path]],
                    max_rank_diff_numpy_vs_tf=diff,
                    repeats=args.repeats,
                )
            )
            print(rows[-1], flush=True)
    print_table(
        "Ranking vs the bare matmul floor (medians; users/s)",
        "| items | users | path | users/s | floor users/s | ratio |",
        "|---:|---:|---|---:|---:|---:|",
        [
            [f"{r['num_items']:,}", str(r["num_users"]), r["path"], f"{r['users_per_second']:.0f}",
             f"{r['floor_users_per_second']:.0f}", f"{r['ratio']:.2f}"]
            for r in rows
        ],
    )
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
