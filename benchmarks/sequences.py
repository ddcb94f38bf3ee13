"""The sequential user tower on ml-latest-small: quality under leave-last-out, and what sequence training saves.

One split for every row: ``configs/movielens-latest-small-sequential.yaml``
(``data.split: leave_last_out``, the last interaction tested, the one before
it validated and part of the history at test time, seen items excluded, data
seed 42, train seed 0), each row early-stopped on ``val_ndcg@10``.

* ``--quality`` rows (full ``train`` runs; test HR@10, NDCG@10, epochs, wall time):

  - ``transformer-seq``: the config as is — a causal transformer user tower
    (2 blocks, 1 head, dropout 0.2, L = 50) trained on whole sequences with
    IRNS negatives (in-batch positions + 3000 uniform, mixture logQ), Adam 1e-3;
  - ``history-mean``: the ``[history]`` mean tower, example-level training with
    the package's ml-latest-small settings (B = 600, Adagrad 0.1, embedding L2 0.1);
  - ``id``: the ``[id]`` towers, the same example-level settings.

* ``--steps N`` (default 5): sequence training's epoch time against
  example-level training with the same transformer tower: the compiled train
  step of each, timed round-robin (one step each in turn, so a busy machine
  slows both alike), median × steps per epoch.

    python benchmarks/sequences.py --steps 5 --quality --json sequences.json

``--rows`` picks quality rows (comma-separated); ``--epochs`` / ``--patience``
override the config's cap and patience (say so when quoting figures).
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

CONFIG = str(ROOT / "configs" / "movielens-latest-small-sequential.yaml")
# The package's example-level settings for ml-latest-small (configs/movielens-latest-small.yaml).
EXAMPLE_LEVEL = (
    "train.sequence_training=false", "train.batch_size=600", "train.optimizer=adagrad", "train.learning_rate=0.1",
    "model.embedding_l2=0.1",
)
ROWS = {
    "transformer-seq": (),
    "history-mean": ("model.user_features=[history]", "model.history.pooling=mean", *EXAMPLE_LEVEL),
    "id": ("model.user_features=[id]", *EXAMPLE_LEVEL),
}


def _config(data_path: str, *overrides: str):
    from tfrs_irns.config import load_config

    return load_config(CONFIG, [f"data.path={data_path}", "export.enabled=false", *overrides])


def epoch_times(data_path: str, steps: int) -> list[dict[str, Any]]:
    """Sequence vs example-level training of the transformer tower: round-robin step medians × steps/epoch."""
    import numpy as np
    import tensorflow as tf

    from tfrs_irns.batching.pipeline import TrainPipeline
    from tfrs_irns.data.prepare import prepare_data
    from tfrs_irns.runs.build import (
        build_model, make_optimizer, pipeline_extras, sequence_train_pipeline, user_history,
    )

    variants = {"sequence": (), "example": EXAMPLE_LEVEL[:2]}  # same tower and optimizer, B = 600 examples
    data, fns = None, []
    for name, overrides in variants.items():
        config = _config(data_path, *overrides)
        data = data or prepare_data(config.data)
        tf.keras.utils.set_random_seed(0)
        history = user_history(config, data)
        if config.train.sequence_training:
            pipeline = sequence_train_pipeline(config, data, history)
        else:
            pipeline = TrainPipeline(data.train.user, data.train.item, config.train.batch_size, seed=0,
                                     extras=pipeline_extras(history))
        model = build_model(config, data, history=history)
        model.compile(optimizer=make_optimizer(config))
        iterator = iter(pipeline.dataset.repeat())
        step = model.make_train_function()
        for _ in range(2):  # trace + warm up
            step(iterator)["loss"].numpy()
        fns.append((name, config, pipeline, step, iterator))
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(steps):
        for i, (_, _, _, step, iterator) in enumerate(fns):
            start = time.perf_counter()
            step(iterator)["loss"].numpy()
            times[i].append(time.perf_counter() - start)
    rows = []
    for (name, config, pipeline, _, _), t in zip(fns, times):
        median = float(np.median(t))
        rows.append({
            "kind": "epoch_time", "training": name, "batch_size": config.train.batch_size,
            "batch_unit": "sequences" if name == "sequence" else "examples",
            "steps_per_epoch": pipeline.steps_per_epoch, "step_ms": round(median * 1000, 1),
            "epoch_seconds": round(median * pipeline.steps_per_epoch, 1), "steps_timed": steps,
        })
    base = rows[1]["epoch_seconds"]
    for row in rows:
        row["ratio_to_example_level"] = round(row["epoch_seconds"] / base, 3)
    return rows


def quality(data_path: str, out_dir: str, names: list[str], extra: list[str]) -> list[dict[str, Any]]:
    from tfrs_irns.runs.training import train

    rows = []
    for name in names:
        config = _config(data_path, *ROWS[name], *extra)
        start = time.perf_counter()
        run = train(config, run_dir=os.path.join(out_dir, name), verbose=2)
        wall = time.perf_counter() - start
        m = run.metrics
        rows.append({
            "kind": "quality", "row": name, "overrides": list(ROWS[name]) + extra,
            "hit_rate@10": round(m["hit_rate@10"], 4), "ndcg@10": round(m["ndcg@10"], 4),
            "hit_rate@100": round(m["hit_rate@100"], 4),
            "popular_ndcg@10": round(m["popular_baseline"]["ndcg@10"], 4),
            "epochs_run": m["epochs_run"], "best_epoch": m["best_epoch"],
            "train_seconds": round(m["train_seconds"], 1), "wall_seconds": round(wall, 1),
            "val_ndcg@10": (m.get("validation") or {}).get("value"),
        })
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "ml-latest-small"))
    parser.add_argument("--steps", type=int, default=5, help="timed steps per training kind (0: skip)")
    parser.add_argument("--quality", action="store_true", help="train the quality rows")
    parser.add_argument("--rows", default=",".join(ROWS), help="quality rows: " + ", ".join(ROWS))
    parser.add_argument("--epochs", type=int, help="override train.epochs (the cap) of every quality row")
    parser.add_argument("--patience", type=int, help="override train.early_stopping.patience")
    parser.add_argument("--runs", default="/tmp/tfrs_irns-sequences-bench", help="folder of the quality runs")
    parser.add_argument("--json", help="write the rows to this file")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tfrs_irns  # noqa: F401  (Keras 2 before tensorflow)

    rows: list[dict[str, Any]] = []
    if args.steps:
        found = epoch_times(args.data, args.steps)
        rows += found
        print_table(
            "Transformer tower, one epoch of ml-latest-small (leave-last-out train split), round-robin step medians",
            "| training | batch | steps/epoch | step ms | epoch s | × example-level |", "|---|---|---:|---:|---:|---:|",
            [[r["training"], f"{r['batch_size']} {r['batch_unit']}", str(r["steps_per_epoch"]), f"{r['step_ms']:.0f}",
              f"{r['epoch_seconds']:.1f}", f"{r['ratio_to_example_level']:.3f}"] for r in found],
        )
    if args.quality:
        extra = ([f"train.epochs={args.epochs}"] if args.epochs else []) + (
            [f"train.early_stopping.patience={args.patience}"] if args.patience is not None else [])
        found = quality(args.data, args.runs, args.rows.split(","), extra)
        rows += found
        print_table(
            "Test metrics, ml-latest-small leave-last-out, seen items excluded (early stopping on val_ndcg@10)",
            "| row | HR@10 | NDCG@10 | most-popular NDCG@10 | best/run epochs | train s |",
            "|---|---:|---:|---:|---:|---:|",
            [[r["row"], f"{r['hit_rate@10']:.4f}", f"{r['ndcg@10']:.4f}", f"{r['popular_ndcg@10']:.4f}",
              f"{r['best_epoch']}/{r['epochs_run']}", f"{r['train_seconds']:.0f}"] for r in found],
        )
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
