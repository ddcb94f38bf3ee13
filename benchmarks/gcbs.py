"""GCBS cost: recompute time at 100k and 1M examples, share of a training run.

Three measurements, all in this process, one after another:

1. **Share of a default run.** ``tfrs_irns.runs.training.train`` on
   ``configs/movielens-latest-small.yaml`` (12 epochs — about the default
   run with early stopping — , batch 600, mixed
   negatives with 3000 sampled items) with ``batching.strategy=random`` and
   ``gcbs`` (default ``batching.gcbs``: epochs 2 to 12 reordered), after one
   warm-up run, alternating, ``--repeats`` times each. Reports medians of
   ``train_seconds`` (``model.fit`` wall time, validation included), of the
   whole ``train`` call (wall and CPU seconds of this process) and of the
   GCBS seconds the callback logged (order + diagnostics): ``added_share_*``
   is GCBS over random.
2. **Recompute at ~73k examples** (ml-latest-small training split) with the
   model of the last GCBS run above (trained weights, not random towers), for
   the default settings and a few variants: seconds (median of
   ``--repeats``) and the diagnostics (GCBS vs random batches).
3. **Recompute at 1M examples**: synthetic users/items with clustered
   embeddings (20k users, 50k items, 50 clusters, 80% of a user's
   interactions in its own cluster, Zipf-like popularity), default settings,
   through the same callback code path.

4. **Overhead, before/after** (``--overhead``): the same 12-epoch run with
   random batches, GCBS with diagnostics (the old default) and GCBS without
   (the default now), alternating, ``--repeats`` times each after a warm-up:
   medians of ``train_seconds`` and their ratios to random.
5. **Memory of a 1M-example graph** (``--memory``): peak ``tracemalloc``
   bytes (numpy reports its buffers) and the peak RSS growth while
   ``gcbs_order`` builds and reorders a 1M-example graph (synthetic, as in 3),
   against the stated budget :data:`MEMORY_BUDGET` — a dense N x N float32
   matrix would be 4 TB.
6. **A recompute at scale** (``--scale``): 5M synthetic examples (200k users,
   500k items, clustered as in 3) ordered with the default
   ``graph_builder: auto`` (the FAISS IVF pools there) and default bounds:
   wall and CPU seconds by phase, the peak RSS growth during the recompute
   (sampled every 20 ms: FAISS's buffers are not seen by tracemalloc), the
   search plan, the pools' recall against exact pools on a sample of users,
   and the exact pool's time extrapolated from a sample of users.
7. **Overhead to early stopping** (``--early-stopped``): ml-latest-small,
   ``leave_last_out``, ``negatives.mode: in_batch`` with logQ, early stopping
   on (patience 3, at most 50 epochs); random batches, GCBS (``auto``: exact
   pools at this size), GCBS with ``graph_builder: ann``, with 4 links per
   example and with ``every: 3``, alternating after a warm-up: ``model.fit``
   wall and process CPU seconds, epochs, per-epoch ratios to random and test
   ``hit_rate@100``.

    python benchmarks/gcbs.py                 # ~5 min on 2 cores
    python benchmarks/gcbs.py --skip-1m --repeats 1
    python benchmarks/gcbs.py --overhead --repeats 1 --json overhead.json
    python benchmarks/gcbs.py --memory --json memory.json
    python benchmarks/gcbs.py --scale --json scale.json                # 6
    python benchmarks/gcbs.py --early-stopped --repeats 1 --json es.json  # 7

Other engineers may share the CPU: compare numbers of one run, not across runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tfrs_irns  # noqa: E402,F401  (pins Keras 2 first)
import tensorflow as tf  # noqa: E402

from tfrs_irns.batching.gcbs import embed_examples, gcbs_order  # noqa: E402
from tfrs_irns.batching.gcbs_callback import GCBSCallback  # noqa: E402
from tfrs_irns.batching.pipeline import TrainPipeline  # noqa: E402
from tfrs_irns.batching.params import GcbsParams  # noqa: E402
from tfrs_irns.config import load_config  # noqa: E402

from _report import print_table  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "ml-latest-small"
STAT_KEYS = ("neg_sim", "neg_sim_random", "gap", "gap_random", "hit_share", "hit_share_random",
             "same_user_share", "same_user_share_random")


EPOCHS = 12
# Peak memory a 1M-example GCBS graph may take (--memory): O(N * links + users * neighbors).
MEMORY_BUDGET = 2 * 1024**3


def one_run(data_path: str, strategy: str, *extra: str) -> Any:
    """One 12-epoch ml-latest-small run, timed (``extra`` overrides may replace the defaults)."""
    from tfrs_irns.runs.training import train

    defaults = [f"data.path={data_path}", f"batching.strategy={strategy}", "export.enabled=false",
                f"train.epochs={EPOCHS}", "train.early_stopping.enabled=false"]
    given = {f.split("=")[0] for f in extra}

    config = load_config(
        str(ROOT / "configs" / "movielens-latest-small.yaml"),
        # The default run's length (early stopping keeps epoch ~10 of 13), fixed so both
        # strategies train the same number of epochs and their times compare.
        [*(f for f in defaults if f.split("=")[0] not in given), *extra],
    )
    with tempfile.TemporaryDirectory() as run_dir:
        start, cpu = time.perf_counter(), time.process_time()
        run = train(config, run_dir=run_dir, verbose=0)
        run.metrics["wall_seconds"] = time.perf_counter() - start
        run.metrics["cpu_seconds"] = time.process_time() - cpu
    return run


def overhead(data_path: str, repeats: int) -> list[dict[str, Any]]:
    """Random vs GCBS with and without diagnostics, alternating in this process."""
    variants = {
        "random": ("random",),
        "gcbs, diagnostics on (before)": ("gcbs", "batching.gcbs.diagnostics=true"),
        "gcbs, diagnostics off (default)": ("gcbs", "batching.gcbs.diagnostics=false"),
    }
    one_run(data_path, "random")  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, args in variants.items():
            run = one_run(data_path, *args)
            seconds[name].append(run.metrics["train_seconds"])
            cpu[name].append(run.metrics["cpu_seconds"])
    base = statistics.median(seconds["random"])
    base_cpu = statistics.median(cpu["random"])
    return [
        {"variant": name, "train_seconds": statistics.median(seconds[name]), "all_train_seconds": seconds[name],
         "ratio_to_random": statistics.median(seconds[name]) / base,
         "cpu_seconds": statistics.median(cpu[name]), "cpu_ratio_to_random": statistics.median(cpu[name]) / base_cpu}
        for name in variants
    ]


def memory(n: int) -> dict[str, Any]:
    """Peak memory of one GCBS order on ``n`` synthetic examples."""
    import resource
    import tracemalloc

    users, items, q, c = synthetic(n, 20_000, 50_000)
    emb = embed_examples(users, items, lambda u: q[u], lambda v: c[v])
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    tracemalloc.start()
    clock = time.perf_counter()
    result = gcbs_order(emb, 600, epoch=1)
    seconds = time.perf_counter() - clock
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"examples": n, "users": 20_000, "items": 50_000, "seconds": seconds,
            "tracemalloc_peak_bytes": peak, "rss_peak_growth_bytes": max(0, rss_after - rss_before),
            "budget_bytes": MEMORY_BUDGET, "within_budget": peak <= MEMORY_BUDGET,
            "dense_n_by_n_float32_bytes": 4 * n * n, "num_links": result.num_links}


EARLY_STOPPED = ("data.split=leave_last_out", "negatives.mode=in_batch", "negatives.logq=true",
                 "train.epochs=50", "train.early_stopping.enabled=true")


def early_stopped(data_path: str, repeats: int) -> list[dict[str, Any]]:
    """Random vs GCBS (exact and ann pools) to early stopping, alternating in this process."""
    variants = {
        "random": ("random", *EARLY_STOPPED),
        "gcbs (auto = exact here)": ("gcbs", *EARLY_STOPPED),
        "gcbs, graph_builder ann": ("gcbs", *EARLY_STOPPED, "batching.gcbs.graph_builder=ann"),
        # The two knobs that shorten the recompute here (graph and reordering
        # grow with the links) or skip some: what meets 1.25x, measured.
        "gcbs, links_per_example 4": ("gcbs", *EARLY_STOPPED, "batching.gcbs.links_per_example=4"),
        "gcbs, every 3": ("gcbs", *EARLY_STOPPED, "batching.gcbs.every=3"),
    }
    one_run(data_path, "random", *EARLY_STOPPED)  # warm-up
    runs: dict[str, list] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, args in variants.items():
            runs[name].append(one_run(data_path, *args))
    med = statistics.median

    def row(name: str) -> dict[str, Any]:
        found = [r.metrics for r in runs[name]]
        history = [m["history"].get("gcbs_seconds", []) for m in found]
        return {
            "variant": name,
            "train_seconds": med([m["train_seconds"] for m in found]),
            "cpu_seconds": med([m["cpu_seconds"] for m in found]),
            "epochs": med([m["epochs_run"] for m in found]),
            "gcbs_seconds": med([float(np.nansum([np.nan if v is None else v for v in h])) for h in history]),
            "hit_rate@100": med([m["hit_rate@100"] for m in found]),
        }

    rows = [row(name) for name in variants]
    base = rows[0]
    for r in rows:
        r["ratio_wall"] = r["train_seconds"] / base["train_seconds"]
        r["ratio_cpu"] = r["cpu_seconds"] / base["cpu_seconds"]
        r["ratio_wall_per_epoch"] = r["ratio_wall"] * base["epochs"] / r["epochs"]
        r["ratio_cpu_per_epoch"] = r["ratio_cpu"] * base["epochs"] / r["epochs"]
    return rows


class PeakRss:
    """Peak resident memory above the starting point, sampled from /proc in a thread."""

    def __init__(self, every: float = 0.02) -> None:
        import threading

        self.every, self.peak, self.base = every, 0, self.rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    @staticmethod
    def rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    def _watch(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.rss() - self.base)
            time.sleep(self.every)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.rss() - self.base)


def at_scale(n: int, num_users: int, num_items: int, sample_users: int = 200, **bounds: int) -> dict[str, Any]:
    """One recompute over ``n`` synthetic examples (default bounds unless ``bounds``
    gives ``nprobe`` / ``max_scored_pairs`` / ``max_links``), its memory, and the pools' recall."""
    from tfrs_irns.batching.gcbs import NEIGHBORS, _positive_keys
    from tfrs_irns.batching.gcbs_ann import PoolBuilder, ann_hard_items, plan_search
    from tfrs_irns.topk import Csr, rank_top_k

    users, items, q, c = synthetic(n, num_users, num_items)
    builder = PoolBuilder(**bounds)
    with PeakRss() as rss:
        clock, cpu = time.perf_counter(), time.process_time()
        emb = embed_examples(users, items, lambda u: q[u], lambda v: c[v])
        embed_s = time.perf_counter() - clock
        result = gcbs_order(emb, 600, epoch=1, builder=builder)
        seconds, cpu_s = time.perf_counter() - clock, time.process_time() - cpu
    n_users, n_items = len(emb.user_ids), len(emb.item_ids)
    plan = plan_search(n_users, n_items, builder.nlist, builder.nprobe, builder.max_scored_pairs)
    # Recall of the pools on a sample of users: the same search (same cells and
    # probes) against the exact pool, both over the user's non-positive items.
    rng = np.random.default_rng(7)
    who = np.sort(rng.choice(n_users, sample_users, replace=False))
    pool = min(NEIGHBORS, result.links_per_example * int(np.bincount(emb.user_row).max()))
    keys = _positive_keys(emb)
    mine = np.isin(keys // n_items, who)
    remap = np.full(n_users, -1, np.int64)
    remap[who] = np.arange(sample_users)
    sub_keys = np.sort(remap[keys[mine] // n_items] * n_items + keys[mine] % n_items)
    approx, _, _ = ann_hard_items(emb.user_vectors[who], emb.item_vectors, pool, sub_keys, seed=1,
                                  nlist=plan.nlist, nprobe=plan.nprobe, max_scored_pairs=1 << 62)
    ptr = np.searchsorted(sub_keys, np.arange(sample_users + 1, dtype=np.int64) * n_items)
    clock = time.perf_counter()
    _, exact, _ = rank_top_k(emb.user_vectors[who], emb.item_vectors, pool, exclude=Csr(ptr, sub_keys % n_items))
    exact_per_user = (time.perf_counter() - clock) / sample_users
    recall = [len(set(a) & set(e)) / pool for a, e in zip(approx.tolist(), exact.tolist())]
    return {
        "examples": n, "users": n_users, "items": n_items, "builder": "ann" if builder.uses_ann(n_users, n_items)
        else "exact", "seconds": seconds, "cpu_seconds": cpu_s, "phase_embed": embed_s,
        "phase_graph": result.seconds["graph"], "phase_reorder": result.seconds["reorder"],
        "peak_rss_growth_bytes": rss.peak, "budget_bytes": MEMORY_BUDGET, "within_budget": rss.peak <= MEMORY_BUDGET,
        "nlist": plan.nlist, "nprobe": plan.nprobe, "users_searched": plan.users, "scored_pairs": plan.scored_pairs,
        "pool": pool, "links_per_example": result.links_per_example, "num_links": result.num_links,
        "isolated": result.isolated, "bandwidth": result.bandwidth,
        "pool_recall_mean": float(np.mean(recall)), "pool_recall_p10": float(np.quantile(recall, 0.1)),
        "exact_pools_seconds_estimate": exact_per_user * n_users,
    }


def share_of_run(data_path: str, repeats: int) -> tuple[dict[str, Any], Any]:
    def one(strategy: str) -> Any:
        return one_run(data_path, strategy)

    one("random")  # warm-up: first fit in a process pays tracing and caches
    runs: dict[str, list] = {"random": [], "gcbs": []}
    for _ in range(repeats):
        for strategy in ("random", "gcbs"):
            runs[strategy].append(one(strategy))
    med = lambda xs: statistics.median(xs)  # noqa: E731
    rnd = med([r.metrics["train_seconds"] for r in runs["random"]])
    gcb = med([r.metrics["train_seconds"] for r in runs["gcbs"]])
    def logged(run: Any) -> float:
        history = run.metrics["history"]
        values = history["gcbs_seconds"] + history["gcbs_diagnostics_seconds"]
        return float(np.nansum([np.nan if v is None else v for v in values]))  # None: a skipped epoch

    gcbs_logged = med([logged(r) for r in runs["gcbs"]])
    epochs = runs["random"][0].metrics["epochs_run"]
    out = {
        "examples": runs["random"][0].metrics["num_train"],
        "epochs": epochs,
        "fit_seconds_random": rnd,
        "fit_seconds_gcbs": gcb,
        "epoch_seconds_random": rnd / epochs,
        "gcbs_seconds_in_run": gcbs_logged,
        "added_share_measured": gcb / rnd - 1.0,
        "added_share_logged": gcbs_logged / rnd,
        "wall_seconds_random": med([r.metrics["wall_seconds"] for r in runs["random"]]),
        "wall_seconds_gcbs": med([r.metrics["wall_seconds"] for r in runs["gcbs"]]),
        # CPU seconds of this process (all threads): less sensitive to other
        # processes sharing the cores than wall time.
        "cpu_seconds_random": med([r.metrics["cpu_seconds"] for r in runs["random"]]),
        "cpu_seconds_gcbs": med([r.metrics["cpu_seconds"] for r in runs["gcbs"]]),
    }
    out["added_share_cpu"] = out["cpu_seconds_gcbs"] / out["cpu_seconds_random"] - 1.0
    return out, runs["gcbs"][-1]


def recompute_variants(run: Any, repeats: int) -> list[dict[str, Any]]:
    data, model = run.data, run.model
    pipe = TrainPipeline(data.train.user, data.train.item, run.config.train.batch_size)
    variants = [
        ("default", {}),
        ("links=4", {"links_per_example": 4}),
        ("links=32", {"links_per_example": 32}),
        ("tries=8 (hardest of 8 holders)", {"holder_tries": 8}),
        ("neighbors=100", {"neighbors": 100}),
        ("threshold=quantile (0.999)", {"threshold": "quantile"}),
        ("similarity=cosine", {"similarity": "cosine"}),
        ("graph=item_item", {"graph": "item_item"}),
        ("exclude_above_positive", {"exclude_above_positive": True}),
    ]
    rows = []
    for name, kw in variants:
        settings = GcbsParams(diagnostics=True, **kw)
        callback = GCBSCallback(pipe, model, settings, temperature=run.config.model.temperature)
        seconds, cpu, stats = [], [], {}
        for r in range(repeats):
            clock = time.process_time()
            _, stats = callback.order_for(2 + r)
            cpu.append(time.process_time() - clock)
            seconds.append(stats["gcbs_seconds"])
        row = {"variant": name, "seconds": statistics.median(seconds), "cpu_seconds": statistics.median(cpu),
               "diagnostics_seconds": stats["gcbs_diagnostics_seconds"],
               "links_per_example": stats["gcbs_links_per_example"],
               "links_in_batch": stats["gcbs_links_in_batch"], "bandwidth": stats["gcbs_bandwidth"]}
        row.update({k: stats["gcbs_" + k] for k in STAT_KEYS})
        rows.append(row)
    return rows


def synthetic(n: int, num_users: int, num_items: int, clusters: int = 50, dim: int = 64, seed: int = 0):
    """Users and items in ``clusters`` clusters; 80% of a user's interactions
    fall in its own cluster; item popularity ~ rank^-0.8 within the pool."""
    rng = np.random.default_rng(seed)
    user_cluster = rng.integers(0, clusters, num_users)
    item_cluster = rng.integers(0, clusters, num_items)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    q = np.vstack([np.zeros((1, dim)), centres[user_cluster] + 0.5 * rng.normal(size=(num_users, dim))])
    c = np.vstack([np.zeros((1, dim)), centres[item_cluster] + 0.5 * rng.normal(size=(num_items, dim))])
    popularity = 1.0 / np.arange(1, num_items + 1) ** 0.8
    users = rng.integers(0, num_users, n)
    items = rng.choice(num_items, n, p=popularity / popularity.sum())
    own = rng.random(n) < 0.8
    for k in range(clusters):
        pool = np.flatnonzero(item_cluster == k)
        pick = own & (user_cluster[users] == k)
        w = popularity[pool]
        items[pick] = rng.choice(pool, pick.sum(), p=w / w.sum())
    return (users + 1).astype(np.int32), (items + 1).astype(np.int32), q.astype(np.float32), c.astype(np.float32)


def one_million(n: int, repeats: int) -> dict[str, Any]:
    users, items, q, c = synthetic(n, 20_000, 50_000)
    query = tf.keras.layers.Embedding(q.shape[0], q.shape[1])
    candidate = tf.keras.layers.Embedding(c.shape[0], c.shape[1])
    query.build((None,))
    candidate.build((None,))
    query.set_weights([q])
    candidate.set_weights([c])
    pipe = TrainPipeline(users, items, 600)
    callback = GCBSCallback(pipe, (query, candidate), GcbsParams(diagnostics=True))
    seconds, stats = [], {}
    for r in range(repeats):
        _, stats = callback.order_for(2 + r)
        seconds.append(stats["gcbs_seconds"])
    # Phase split of one more recompute, outside the callback.
    clock = time.perf_counter()
    emb = embed_examples(users, items, lambda u: q[u], lambda v: c[v])
    embed_s = time.perf_counter() - clock
    result = gcbs_order(emb, 600, epoch=99)
    out = {"examples": n, "users": 20_000, "items": 50_000, "seconds": statistics.median(seconds),
           "all_seconds": seconds, "diagnostics_seconds": stats["gcbs_diagnostics_seconds"],
           "phase_embed": embed_s, "phase_graph": result.seconds["graph"],
           "phase_reorder": result.seconds["reorder"], "links_per_example": result.links_per_example,
           "num_links": result.num_links, "bandwidth": result.bandwidth}
    out.update({k: stats["gcbs_" + k] for k in STAT_KEYS})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(SHARED), help="ml-latest-small folder")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--examples", type=int, default=1_000_000, help="size of the synthetic run")
    parser.add_argument("--skip-ml", action="store_true")
    parser.add_argument("--skip-1m", action="store_true")
    parser.add_argument("--out", "--json", dest="out", help="also write the results as JSON here")
    parser.add_argument("--overhead", action="store_true", help="only the before/after overhead runs (4)")
    parser.add_argument("--memory", action="store_true", help="only the 1M-example memory measurement (5)")
    parser.add_argument("--scale", action="store_true", help="only the recompute at scale (6)")
    parser.add_argument("--users", type=int, default=200_000, help="users of --scale")
    parser.add_argument("--items", type=int, default=500_000, help="items of --scale")
    parser.add_argument("--nprobe", type=int, help="--scale: batching.gcbs.ann_nprobe (default: the library's)")
    parser.add_argument("--max-scored-pairs", type=int, help="--scale: batching.gcbs.max_scored_pairs")
    parser.add_argument("--max-links", type=int, help="--scale: batching.gcbs.max_links")
    parser.add_argument("--early-stopped", action="store_true", help="only the runs to early stopping (7)")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    if args.scale or args.early_stopped:
        if args.scale:
            n = args.examples if args.examples != 1_000_000 else 5_000_000
            bounds = {key: value for key, value in (("nprobe", args.nprobe), ("max_scored_pairs", args.max_scored_pairs),
                                                     ("max_links", args.max_links)) if value is not None}
            results["scale"] = found = at_scale(n, args.users, args.items, **bounds)
            for key, value in found.items():
                print(f"  {key:28s} {value}")
        if args.early_stopped:
            results["early_stopped"] = rows = early_stopped(args.data, args.repeats)
            print_table(
                f"GCBS to early stopping on ml-latest-small, leave_last_out, in_batch + logQ "
                f"(median of {args.repeats})",
                "| variant | fit s | CPU s | epochs | GCBS s | × random wall | × random CPU | per epoch wall | "
                "per epoch CPU | hit_rate@100 |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
                [[r["variant"], f"{r['train_seconds']:.1f}", f"{r['cpu_seconds']:.1f}", f"{r['epochs']:.0f}",
                  f"{r['gcbs_seconds']:.1f}", f"{r['ratio_wall']:.2f}", f"{r['ratio_cpu']:.2f}",
                  f"{r['ratio_wall_per_epoch']:.2f}", f"{r['ratio_cpu_per_epoch']:.2f}",
                  f"{r['hit_rate@100']:.4f}"] for r in rows],
            )
        results["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
        print("  load average:", " ".join(results["loadavg"]))
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2, default=float))
        return
    if args.overhead or args.memory:
        if args.overhead:
            rows = overhead(args.data, args.repeats)
            results["overhead"] = rows
            print_table(
                f"GCBS overhead on ml-latest-small, {EPOCHS} epochs (median of {args.repeats})",
                "| variant | train s | × random | CPU s | CPU × random |", "|---|---:|---:|---:|---:|",
                [[r["variant"], f"{r['train_seconds']:.1f}", f"{r['ratio_to_random']:.2f}", f"{r['cpu_seconds']:.1f}",
                  f"{r['cpu_ratio_to_random']:.2f}"] for r in rows],
            )
        if args.memory:
            results["memory"] = found = memory(args.examples)
            for key, value in found.items():
                print(f"  {key:28s} {value}")
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2, default=float))
        return
    if not args.skip_ml:
        if not Path(args.data).is_dir():
            sys.exit(f"{args.data}: ml-latest-small not found (use --data or --skip-ml)")
        share, run = share_of_run(args.data, args.repeats)
        results["share_of_run"] = share
        print(f"\n== ml-latest-small default run ({EPOCHS} epochs, batch 600, 3000 sampled negatives) ==")
        for key, value in share.items():
            print(f"  {key:24s} {value:.3f}" if isinstance(value, float) else f"  {key:24s} {value}")
        rows = recompute_variants(run, args.repeats)
        results["recompute_ml"] = rows
        print(f"\n== recompute on {share['examples']:,} ml-latest-small examples (trained model) ==")
        print(f"  {'variant':26s} {'sec':>6s} {'cpu':>6s} {'links':>5s} {'in-batch':>8s} {'neg_sim':>16s} {'gap':>16s} "
              f"{'hits':>14s} {'same user':>14s}")
        for r in rows:
            print(f"  {r['variant']:26s} {r['seconds']:6.2f} {r['cpu_seconds']:6.2f} {r['links_per_example']:5.0f} "
                  f"{r['links_in_batch']:8.4f} "
                  f"{r['neg_sim']:7.3f}/{r['neg_sim_random']:7.3f} {r['gap']:7.4f}/{r['gap_random']:7.4f} "
                  f"{r['hit_share']:6.4f}/{r['hit_share_random']:6.4f} "
                  f"{r['same_user_share']:6.4f}/{r['same_user_share_random']:6.4f}")
        print("  (sec: order wall seconds; cpu: order + diagnostics CPU seconds; x/y = GCBS/random batches)")
    if not args.skip_1m:
        big = one_million(args.examples, args.repeats)
        results["recompute_1m"] = big
        print(f"\n== recompute on {big['examples']:,} synthetic examples (clustered embeddings) ==")
        for key, value in big.items():
            print(f"  {key:24s} {value:.3f}" if isinstance(value, float) else f"  {key:24s} {value}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
