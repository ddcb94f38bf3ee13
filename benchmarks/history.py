"""Activity (history) user towers on ml-latest-small: what they cost a step and what they buy.

Two measurements, one process:

* ``--steps N`` (default 30): the compiled train step (what ``model.fit``
  runs) at B = 600, M = 3000, d = 64 for user ``[id]``, ``[history]`` and
  ``[id, history]`` (``model.history.length`` 50, mean pooling; ``--poolings``
  adds others), on the random split of ml-latest-small. The variants are
  timed round-robin, one step each in turn, so a busy machine slows them
  alike; the table gives each one's median and its ratio to ``[id]``.
* ``--quality``: full training runs (``configs/movielens-latest-small.yaml``:
  mixed IRNS + logQ, early stopping on val_hit_rate@100, one seed) —
  random split ``[id]`` / ``[history]`` / ``[id, history]``, and ``cold_users``
  ``[id]`` (the mean-user fallback: every cold user gets the OOV row) against
  ``[history]`` and ``[id, history]``; test hit_rate@100, recall@10, ndcg@10,
  and the most-popular baseline.

    python benchmarks/history.py --json history.json             # steps only, ~2 min
    python benchmarks/history.py --quality --json history.json   # + 6 training runs

``--json`` writes a list of rows with ``kind`` (``step`` or ``quality``),
``split``, ``user_features``, ``pooling`` and the measured values.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _report import print_table, write_json  # noqa: E402

CONFIG = str(ROOT / "configs" / "movielens-latest-small.yaml")
FEATURES = {"[id]": "[id]", "[history]": "[history]", "[id,history]": "[id,history]"}


def _config(data_path: str, *overrides: str):
    from tfrs_irns.config import load_config

    return load_config(CONFIG, [f"data.path={data_path}", "export.enabled=false", *overrides])


def step_times(data_path: str, steps: int, poolings: list[str]) -> list[dict[str, Any]]:
    """Round-robin medians of the compiled train step per user tower."""
    import numpy as np
    import tensorflow as tf

    from tfrs_irns.batching.pipeline import TrainPipeline
    from tfrs_irns.data.prepare import prepare_data
    from tfrs_irns.runs.build import build_model, make_optimizer, pipeline_extras, user_history

    variants = [("[id]", "mean")] + [(f, p) for f in ("[history]", "[id,history]") for p in poolings]
    data = None
    fns = []
    for features, pooling in variants:
        config = _config(data_path, f"model.user_features={features}", f"model.history.pooling={pooling}")
        data = data or prepare_data(config.data)
        tf.keras.utils.set_random_seed(0)
        history = user_history(config, data)
        pipeline = TrainPipeline(data.train.user, data.train.item, config.train.batch_size, seed=0,
                                 drop_remainder=True, extras=pipeline_extras(history))
        model = build_model(config, data, history=history)
        model.compile(optimizer=make_optimizer(config))
        iterator = iter(pipeline.dataset.repeat())
        step = model.make_train_function()
        for _ in range(3):  # trace + warm up
            step(iterator)["loss"].numpy()
        fns.append((step, iterator))
    times: list[list[float]] = [[] for _ in variants]
    for _ in range(steps):
        for i, (step, iterator) in enumerate(fns):
            start = time.perf_counter()
            step(iterator)["loss"].numpy()
            times[i].append(time.perf_counter() - start)
    base = float(np.median(times[0]))
    rows = []
    for (features, pooling), t in zip(variants, times):
        median = float(np.median(t))
        rows.append({
            "kind": "step", "split": "random", "user_features": features,
            "pooling": pooling if features != "[id]" else None, "batch_size": 600, "num_negatives": 3000,
            "step_ms": round(median * 1000, 1), "ratio_to_id": round(median / base, 2), "steps": steps,
        })
    return rows


QUALITY = [
    ("random", "[id]"), ("random", "[history]"), ("random", "[id,history]"),
    ("cold_users", "[id]"), ("cold_users", "[history]"), ("cold_users", "[id,history]"),
]


def quality(data_path: str, out_dir: str) -> list[dict[str, Any]]:
    from tfrs_irns.runs.training import train

    rows = []
    for split, features in QUALITY:
        config = _config(data_path, f"data.split={split}", f"model.user_features={features}")
        name = f"{split}-{features.strip('[]').replace(',', '-')}"
        run = train(config, run_dir=os.path.join(out_dir, name), verbose=0)
        m = run.metrics
        rows.append({
            "kind": "quality", "split": split, "user_features": features, "pooling": "mean",
            "hit_rate@100": round(m["hit_rate@100"], 4), "recall@10": round(m["recall@10"], 4),
            "ndcg@10": round(m["ndcg@10"], 4),
            "popular_hit_rate@100": round(m["popular_baseline"]["hit_rate@100"], 4),
            "epochs_run": m["epochs_run"], "best_epoch": m["best_epoch"], "num_test_users": m["num_test_users"],
        })
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "ml-latest-small"))
    parser.add_argument("--steps", type=int, default=30, help="timed steps per variant (0: skip)")
    parser.add_argument("--poolings", default="mean", help="comma-separated poolings to time (mean,attention,gru)")
    parser.add_argument("--quality", action="store_true", help="also train the quality comparison")
    parser.add_argument("--runs", default="/tmp/tfrs_irns-history-bench", help="folder of the quality runs")
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tfrs_irns  # noqa: F401  (Keras 2 before tensorflow)

    rows: list[dict[str, Any]] = []
    if args.steps:
        rows += step_times(args.data, args.steps, args.poolings.split(","))
        print_table(
            "Train step on ml-latest-small (B = 600, M = 3000, d = 64, L = 50), round-robin medians",
            "| user tower | pooling | step ms | × [id] |", "|---|---|---:|---:|",
            [[r["user_features"], r["pooling"] or "—", f"{r['step_ms']:.1f}", f"{r['ratio_to_id']:.2f}"]
             for r in rows if r["kind"] == "step"],
        )
    if args.quality:
        found = quality(args.data, args.runs)
        rows += found
        print_table(
            "Test metrics on ml-latest-small (mixed IRNS + logQ, early stopping, seed 0)",
            "| split | user tower | hit_rate@100 | recall@10 | ndcg@10 | most-popular hit_rate@100 | epochs |",
            "|---|---|---:|---:|---:|---:|---:|",
            [[r["split"], r["user_features"], f"{r['hit_rate@100']:.4f}", f"{r['recall@10']:.4f}",
              f"{r['ndcg@10']:.4f}", f"{r['popular_hit_rate@100']:.4f}", f"{r['best_epoch']}/{r['epochs_run']}"]
             for r in found],
        )
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
