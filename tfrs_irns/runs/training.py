"""A training run: data → pipeline → model → ``model.fit`` → evaluation → files.

A run directory holds everything needed to evaluate or export the model
later without the original process:

```
<run>/config.yaml      the resolved config (data paths made absolute)
<run>/metrics.json     test metrics, the most-popular baseline, timings, sizes
<run>/checkpoints/     the trained weights (TF checkpoint)
<run>/vocab/           user and item vocabularies (raw id of each index)
<run>/logs/            TensorBoard
```
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfrs_irns.batching.pipeline import TrainPipeline
from tfrs_irns.config import Config, absolute_paths, load_config, save_config, validate
from tfrs_irns.data.prepare import PreparedData, prepare_data
from tfrs_irns.data.vocab import Vocabulary
from tfrs_irns.errors import ConfigError, UserError
from tfrs_irns.evaluation import evaluate_model, popular_baseline
from tfrs_irns.models.two_tower import TwoTowerModel
from tfrs_irns.runs.build import build_callbacks, build_model, make_optimizer

CHECKPOINT = "checkpoints/weights"


@dataclass
class Run:
    """A trained (or restored) model with its data and config."""

    config: Config
    data: PreparedData
    model: TwoTowerModel
    directory: str
    metrics: Optional[dict[str, Any]] = None


def train(
    config: Config,
    run_dir: Optional[str] = None,
    verbose: Optional[int] = None,
    extra_callbacks: Sequence[tf.keras.callbacks.Callback] = (),
) -> Run:
    """Train the model ``config`` describes and write the run directory.

    ``verbose``: 0 silent, 1 progress bar, 2 one line per epoch; by default a
    bar on a terminal and one line per epoch in logs (CI, files).
    """
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    config = absolute_paths(validate(config))
    if run_dir is not None and os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise UserError(f"{run_dir}: exists and is not a folder; name a folder for the run")
    tf.keras.utils.set_random_seed(config.train.seed)
    data = prepare_data(config.data)
    if verbose:
        print(
            f"data: {data.description} | train {len(data.train):,}, validation {len(data.validation):,}, "
            f"test {len(data.test):,} | {data.num_users:,} users, {data.num_items:,} items"
        )
    if config.batching.drop_remainder and len(data.train) < config.train.batch_size:
        raise ConfigError(
            f"train.batch_size={config.train.batch_size} with batching.drop_remainder=true drops all "
            f"{len(data.train)} training interactions; lower train.batch_size or set batching.drop_remainder=false"
        )
    pipeline = TrainPipeline(
        data.train.user,
        data.train.item,
        config.train.batch_size,
        seed=config.train.seed,
        drop_remainder=config.batching.drop_remainder,
    )
    model = build_model(config, data)
    model.compile(optimizer=make_optimizer(config))
    # The folder is made only once the config, the data and the model are known good.
    run_dir = run_dir or default_run_dir(config)
    callbacks = build_callbacks(config, run_dir, pipeline, model, data) + list(extra_callbacks)
    os.makedirs(run_dir, exist_ok=True)
    save_config(config, os.path.join(run_dir, "config.yaml"))

    start = time.perf_counter()
    history = model.fit(pipeline.dataset, epochs=config.train.epochs, callbacks=callbacks, verbose=verbose)
    train_seconds = time.perf_counter() - start
    epochs_run = len(history.epoch)
    best_epoch = _best_epoch(callbacks, epochs_run)
    model.set_oov_user_to_mean()

    os.makedirs(os.path.join(run_dir, "checkpoints"), exist_ok=True)
    model.save_weights(os.path.join(run_dir, CHECKPOINT))
    os.makedirs(os.path.join(run_dir, "vocab"), exist_ok=True)
    data.user_vocab.save(os.path.join(run_dir, "vocab", "users.json"))
    data.item_vocab.save(os.path.join(run_dir, "vocab", "items.json"))

    metrics = evaluate_run(config, data, model)
    metrics.update(
        train_seconds=round(train_seconds, 3),
        train_examples_per_second=round(len(data.train) * epochs_run / max(train_seconds, 1e-9), 1),
        epochs_run=epochs_run,
        # 1-based epoch whose weights were kept (early stopping restores the best one).
        best_epoch=best_epoch,
        history={k: [float(v) for v in vals] for k, vals in history.history.items()},
    )
    write_metrics(run_dir, metrics)
    if verbose:
        print(summary_line(metrics, config))
    return Run(config, data, model, run_dir, metrics)


def default_run_dir(config: Config) -> str:
    return os.path.join("runs", f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}")


def _best_epoch(callbacks: list, epochs_run: int) -> int:
    for callback in callbacks:
        if isinstance(callback, tf.keras.callbacks.EarlyStopping) and callback.best_weights is not None:
            return int(callback.best_epoch) + 1
    return epochs_run


def evaluate_run(config: Config, data: PreparedData, model: TwoTowerModel) -> dict[str, Any]:
    """Test-split metrics of ``model`` and of the most-popular baseline."""
    e = config.eval
    metrics = evaluate_model(model, data, split="test", ks=e.ks, exclude_seen=e.exclude_seen, chunk_size=e.chunk_size)
    metrics["popular_baseline"] = popular_baseline(data, split="test", ks=e.ks, exclude_seen=e.exclude_seen)
    metrics.update(
        num_users=data.num_users,
        num_items=data.num_items,
        num_train=len(data.train),
        num_validation=len(data.validation),
        num_test=len(data.test),
    )
    return metrics


def _strict_json(value: Any) -> Any:
    """NaN/inf (e.g. GCBS diagnostics on epochs it skipped) become null: strict JSON."""
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_metrics(run_dir: str, metrics: dict[str, Any]) -> None:
    with open(os.path.join(run_dir, "metrics.json"), "w", encoding="utf-8") as fh:
        json.dump(_strict_json(metrics), fh, indent=2, allow_nan=False)


def summary_line(metrics: dict[str, Any], config: Config) -> str:
    k = max(config.eval.ks)
    return (
        f"test hit_rate@{k} = {metrics[f'hit_rate@{k}']:.4f} "
        f"(most-popular baseline {metrics['popular_baseline'][f'hit_rate@{k}']:.4f}), "
        f"recall@{k} = {metrics[f'recall@{k}']:.4f}, ndcg@{k} = {metrics[f'ndcg@{k}']:.4f}"
    )


def load_run(run_dir: str, overrides: tuple[str, ...] = ()) -> Run:
    """Rebuild a finished run's data and model and restore its weights."""
    config_path = os.path.join(run_dir, "config.yaml")
    if not os.path.isdir(run_dir):
        raise UserError(f"{run_dir}: run directory not found")
    if not os.path.isfile(config_path):
        raise UserError(f"{run_dir}: not a run directory (no config.yaml)")
    if not os.path.isfile(os.path.join(run_dir, CHECKPOINT + ".index")):
        raise UserError(f"{run_dir}: no checkpoint at {CHECKPOINT} (did training finish?)")
    config = load_config(config_path, overrides)
    data = prepare_data(config.data)
    saved_items = os.path.join(run_dir, "vocab", "items.json")
    if os.path.isfile(saved_items):
        if not np.array_equal(Vocabulary.load(saved_items).ids, data.item_vocab.ids):
            raise UserError(
                f"{run_dir}: the data at {config.data.path or config.data.source} no longer matches the "
                "item vocabulary the run was trained on"
            )
    model = build_model(config, data)
    model.load_weights(os.path.join(run_dir, CHECKPOINT)).expect_partial()
    return Run(config, data, model, run_dir)
