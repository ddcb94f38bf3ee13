"""Content towers: what they cost per training step, and what they buy in quality.

Two measurements over a grid of item towers (``model.item_features``) and,
once user-side towers exist, user towers (``--user-features``):

* ``--steps``: the median time of one compiled train step (the function
  ``model.fit`` runs) at B = 600, M = 3000 (the config's ``mixed`` IRNS) on
  the data, every tower built and timed in this one process, side by side,
  rounds interleaved so a noisy neighbour slows every tower alike; the ratio
  to the ``[id]`` step is the figure to quote.
* ``--quality``: a full training run per cell (early stopping on
  ``val_hit_rate@100``, at most ``--epochs``) on each ``--splits`` split, and
  its test metrics: ``hit_rate@100``, ``recall@10``, ``ndcg@10``; on
  ``cold_items`` also ``cold_only.hit_rate@10`` against a random ranking
  (``10 / number of cold items``) and the most-popular list.

    python benchmarks/towers.py --steps --json benchmarks/out/towers_steps.json
    python benchmarks/towers.py --quality --splits random cold_items --json benchmarks/out/towers_quality.json

``--user-features`` takes values of ``model.user_features`` (``id`` is today's
tower, left at its default so the script runs before that key exists).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._report import print_table, write_json  # noqa: E402

CONFIG = ROOT / "configs" / "movielens-latest-small.yaml"
SHARED = ROOT.parent / "shared" / "data" / "ml-latest-small"
ITEM_FEATURES = ["[id]", "[id,title,genres]", "[title,genres]"]


def overrides(item: str, user: str, split: str, extra: list[str]) -> list[str]:
    pairs = [f"data.path={SHARED}", f"model.item_features={item}", f"data.split={split}"]
    if user != "id":  # today's user tower is the default; the key arrives with the user-side towers
        pairs.append(f"model.user_features=[{user}]")
    return pairs + extra


def step_times(args: argparse.Namespace) -> list[dict[str, Any]]:
    from tfrs_irns.batching.pipeline import TrainPipeline
    from tfrs_irns.config import load_config
    from tfrs_irns.data.prepare import prepare_data
    from tfrs_irns.runs.build import build_model, make_optimizer

    cells = [(i, u) for u in args.user_features for i in args.item_features]
    base = load_config(str(CONFIG), overrides("[id]", "id", "random", args.set))
    data = prepare_data(base.data)
    steps = {}
    for item, user in cells:
        config = load_config(str(CONFIG), overrides(item, user, "random", args.set))
        pipeline = TrainPipeline(data.train.user, data.train.item, config.train.batch_size, seed=0)
        model = build_model(config, data)
        model.compile(optimizer=make_optimizer(config))
        function = model.make_train_function()
        batches = iter(pipeline.dataset.repeat())
        for _ in range(args.warmup):
            function(batches)
        steps[(item, user)] = (function, batches, config)
    times: dict[tuple[str, str], list[float]] = {cell: [] for cell in cells}
    for _ in range(args.rounds):  # interleaved: each round times every tower once
        for cell in cells:
            function, batches, _ = steps[cell]
            for _ in range(args.timed_steps):
                start = time.perf_counter()
                logs = function(batches)
                float(logs["loss"])  # wait for the step
                times[cell].append(time.perf_counter() - start)
    reference = statistics.median(times[cells[0]])
    rows = []
    for item, user in cells:
        config = steps[(item, user)][2]
        median = statistics.median(times[(item, user)])
        rows.append({
            "item_features": item, "user_features": user, "batch_size": config.train.batch_size,
            "num_negatives": config.negatives.num_negatives, "mode": config.negatives.mode,
            "precision": config.train.precision, "step_ms": 1000 * median,
            "ratio_to_first": median / reference, "timed_steps": len(times[(item, user)]),
        })
    return rows


def quality(args: argparse.Namespace) -> list[dict[str, Any]]:
    from tfrs_irns.config import load_config
    from tfrs_irns.errors import ConfigError
    from tfrs_irns.runs.training import train

    rows = []
    for split in args.splits:
        for user in args.user_features:
            for item in args.item_features:
                pairs = overrides(item, user, split, [f"train.epochs={args.epochs}", "export.enabled=false", *args.set])
                try:
                    config = load_config(str(CONFIG), pairs)
                except ConfigError as exc:  # e.g. an id-only tower on cold_items
                    print(f"skipped {item} {user} {split}: {exc}")
                    continue
                with tempfile.TemporaryDirectory() as run_dir:
                    start = time.perf_counter()
                    m = train(config, run_dir=run_dir, verbose=0).metrics
                row = {
                    "split": split, "item_features": item, "user_features": user, "epochs_run": m["epochs_run"],
                    "best_epoch": m["best_epoch"], "seconds": time.perf_counter() - start,
                    "hit_rate@100": m["hit_rate@100"], "recall@10": m["recall@10"], "ndcg@10": m["ndcg@10"],
                    "popular_hit_rate@100": m["popular_baseline"]["hit_rate@100"],
                }
                if "cold_only" in m:
                    cold, popular = m["cold_only"], m["popular_baseline"]["cold_only"]
                    row.update({
                        "cold_items": cold["protocol"]["num_items"],
                        "cold_only.hit_rate@10": cold["hit_rate@10"],
                        "cold_only.random_hit_rate@10": cold["protocol"]["random_hit_rate"]["@10"],
                        "cold_only.popular_hit_rate@10": popular["hit_rate@10"],
                    })
                print(row)
                rows.append(row)
    return rows


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", action="store_true", help="time one train step per tower")
    parser.add_argument("--quality", action="store_true", help="train and evaluate each tower")
    parser.add_argument("--item-features", nargs="+", default=ITEM_FEATURES)
    parser.add_argument("--user-features", nargs="+", default=["id"], help="model.user_features values")
    parser.add_argument("--splits", nargs="+", default=["random", "cold_items"])
    parser.add_argument("--epochs", type=int, default=10, help="at most (early stopping)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--timed-steps", type=int, default=5, help="per tower and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--set", nargs="*", default=[], help="further config overrides")
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    if not SHARED.is_dir():
        print(f"ml-latest-small not found at {SHARED}")
        return 1
    rows: list[dict[str, Any]] = []
    if args.steps:
        step_rows = step_times(args)
        print_table(
            "Train step, B = 600, M = 3000 (mixed), ml-latest-small", "| item | user | step ms | × first |",
            "|---|---|---:|---:|",
            [[r["item_features"], r["user_features"], f"{r['step_ms']:.0f}", f"{r['ratio_to_first']:.2f}"] for r in step_rows],
        )
        rows += step_rows
    if args.quality:
        q = quality(args)
        print_table(
            "Quality, ml-latest-small", "| split | item | user | hit_rate@100 | recall@10 | ndcg@10 | cold_only hr@10 | random | popular |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|",
            [[r["split"], r["item_features"], r["user_features"], f"{r['hit_rate@100']:.4f}", f"{r['recall@10']:.4f}",
              f"{r['ndcg@10']:.4f}", *(f"{r[k]:.4f}" if k in r else "" for k in (
                  "cold_only.hit_rate@10", "cold_only.random_hit_rate@10", "cold_only.popular_hit_rate@10"))]
             for r in q],
        )
        rows += q
    write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
