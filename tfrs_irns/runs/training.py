"""A training run: data → pipeline → model → ``model.fit`` → evaluation → files.

A run directory holds everything needed to evaluate or export the model
later without the original process:

```
<run>/config.yaml      the resolved config (data paths made absolute)
<run>/metrics.json     test metrics, the most-popular baseline, timings, sizes
<run>/checkpoints/     the trained weights (TF checkpoint)
<run>/vocab/           the data snapshot: vocabularies, item side table, fingerprint
                       (tfrs_irns.data.snapshot; evaluate and export trust it, not the data)
<run>/saved_model/1/   the run's own SavedModel (when export.enabled), published or not
<run>/evaluations/     one JSON record per `tfrs-irns evaluate`
<run>/logs/            TensorBoard
<run>/backup/          the last backup while training runs (train --resume continues from it)
```

Under ``MultiWorkerMirroredStrategy`` every worker runs the same command;
only the chief writes the run folder. The others write what they must (the
final checkpoint, TensorBoard) to a temporary folder they delete.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from types import SimpleNamespace
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfrs_irns.batching.pipeline import TrainPipeline
from tfrs_irns.batching.shards import ShardPipeline, per_worker, worker_files, worker_input
from tfrs_irns._files import atomic_open
from tfrs_irns.config import Config, absolute_paths, content_features, load_config, save_config, validate
from tfrs_irns.data.history import build_history, load_history, save_history
from tfrs_irns.layers.history import HistoryQueryTower
from tfrs_irns.data.prepare import PreparedData, prepare_data
from tfrs_irns.data.streaming import prepare_streamed
from tfrs_irns.data.snapshot import has_snapshot, load_snapshot, save_snapshot, saved_fingerprint, saved_vocabularies
from tfrs_irns.errors import ConfigError, UserError
from tfrs_irns.evaluation import evaluate_model, popular_baseline
from tfrs_irns.evaluation.shares import WorkerShare, worker_share
from tfrs_irns.models.two_tower import TwoTowerModel
from tfrs_irns.runs.backup import BACKUP_DIR, RunBackup, RunState, restore
from tfrs_irns.runs.build import (
    build_callbacks, build_model, compile_options, distribution_info, make_optimizer, make_strategy, pipeline_extras,
    sequence_train_pipeline, user_history,
)
from tfrs_irns.runs.console import EpochLine

CHECKPOINT = "checkpoints/weights"
VOCAB = "vocab"


@dataclass
class Run:
    """A trained (or restored) model with its data and config."""

    config: Config
    data: PreparedData
    model: TwoTowerModel
    directory: str
    metrics: Optional[dict[str, Any]] = None
    # False on the non-chief workers of a multi-worker run: they wrote no run folder.
    is_chief: bool = True


def holds_run(run_dir: str) -> bool:
    """Whether ``run_dir`` already holds a run (finished or interrupted)."""
    return any(os.path.exists(os.path.join(run_dir, name)) for name in ("config.yaml", "metrics.json", BACKUP_DIR))


def resume_config(run_dir: str) -> Config:
    """The config of the interrupted run in ``run_dir``, for ``train --resume``."""
    if not os.path.isdir(run_dir):
        raise UserError(f"{run_dir}: run directory not found")
    if not os.path.isfile(os.path.join(run_dir, "config.yaml")):
        raise UserError(f"{run_dir}: not a run directory (no config.yaml); nothing to resume")
    if os.path.isfile(os.path.join(run_dir, "metrics.json")):
        raise UserError(f"{run_dir}: the run already finished (it has metrics.json); nothing to resume")
    return load_config(os.path.join(run_dir, "config.yaml"))


def train(
    config: Config,
    run_dir: Optional[str] = None,
    verbose: Optional[int] = None,
    extra_callbacks: Sequence[tf.keras.callbacks.Callback] = (),
    resume: bool = False,
) -> Run:
    """Train the model ``config`` describes and write the run directory.

    ``verbose``: 0 silent, 1 progress bar, 2 one line per epoch; by default a
    bar on a terminal and one line per epoch in logs (CI, files).
    ``resume``: continue the interrupted run in ``run_dir`` from its last
    backup (``config`` is the one saved there, see :func:`resume_config`);
    the run then ends as the uninterrupted run would have.
    """
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    config = absolute_paths(validate(config))
    if run_dir is not None and os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise UserError(f"{run_dir}: exists and is not a folder; name a folder for the run")
    if resume and run_dir is None:
        raise ValueError("resume=True needs the run_dir of the run to continue")
    # First: logical CPUs and collectives must be set up before TF initialises devices.
    strategy = make_strategy(config.train.distribution)
    chief = bool(strategy.extended.should_checkpoint)
    if not resume and chief and run_dir is not None and holds_run(run_dir):
        raise UserError(
            f"{run_dir}: already holds a run; continue it with `tfrs-irns train --resume {run_dir}` "
            "or name another --output"
        )
    tf.keras.utils.set_random_seed(config.train.seed)
    streamed = None
    if config.data.streaming:  # the rows stay in shards on disk; the held-out splits are loaded
        streamed = prepare_streamed(
            config.data, streaming_cache_root(run_dir or default_run_dir(config)), load_train=config.eval.exclude_seen
        )
        data = streamed.data
    else:
        # A content item tower serves the whole item table (items without interactions embed from content).
        data = prepare_data(config.data, catalogue="item_table" if content_features(config.model) else "interactions")
    num_train = streamed.num_train if streamed is not None else len(data.train)
    if verbose:
        print(
            f"data: {data.description} | train {num_train:,}, validation {len(data.validation):,}, "
            f"test {len(data.test):,} | {data.num_users:,} users, {data.num_items:,} items"
        )
    if config.batching.drop_remainder and num_train < config.train.batch_size:
        raise ConfigError(
            f"train.batch_size={config.train.batch_size} with batching.drop_remainder=true drops all "
            f"{num_train} training interactions; lower train.batch_size or set batching.drop_remainder=false"
        )
    history = user_history(config, data)
    pipeline: Any
    if streamed is not None:
        workers = worker_files(strategy, (streamed.file_rows or {}).get("train", []))  # each reads its own files
        if workers is not None and config.train.batch_size % workers.num_replicas:
            raise ConfigError(
                f"train.batch_size={config.train.batch_size} with data.streaming under multi_worker must split "
                f"evenly over the {workers.num_replicas} replicas"
            )
        pipeline = ShardPipeline(
            streamed.files["train"], streamed.num_train, config.train.batch_size,
            seed=config.train.seed, drop_remainder=config.batching.drop_remainder, workers=workers,
        )
    elif config.train.sequence_training and history is not None:  # windows of whole timelines
        pipeline = sequence_train_pipeline(config, data, history)
    else:
        pipeline = TrainPipeline(
            data.train.user,
            data.train.item,
            config.train.batch_size,
            seed=config.train.seed,
            drop_remainder=config.batching.drop_remainder,
            extras=pipeline_extras(history),
        )
    with strategy.scope():  # mirrored variables, optimizer slots included
        model = build_model(config, data, history=history)
        model.compile(optimizer=make_optimizer(config), **compile_options(config))
        # Slots now, in scope: a backup restores into them, and BackupAndRestore wants a built model.
        model.optimizer.build(model.trainable_variables)
    model.built = True  # every weight exists (build_model); Keras never calls the model itself
    # The folder is made only once the config, the data and the model are known good.
    run_dir = run_dir or default_run_dir(config)
    # Non-chief workers write nothing in the run folder (TF's convention: a temporary one).
    out_dir = run_dir if chief else tempfile.mkdtemp(prefix="tfrs-irns-worker-")
    folder_existed = os.path.isdir(run_dir)
    every = config.train.backup_every_steps
    state = RunState(pipeline)
    if resume:
        # The run's indices mean the ids of the data it started on: resuming on other data would mix them.
        started_on = saved_fingerprint(os.path.join(run_dir, VOCAB))
        if started_on is not None and started_on != data.fingerprint:
            raise UserError(
                f"{run_dir}: the data at {config.data.path or config.data.source} changed since the run started "
                "(its fingerprint differs); start a new run with --output"
            )
    restored = restore(run_dir, model, state, pipeline.steps_per_epoch, every) if resume else None
    if restored is not None:
        pipeline.resume_at(restored.initial_epoch, restored.initial_step)
        if verbose:
            print(f"resuming {run_dir} at epoch {restored.initial_epoch + 1}, step {restored.initial_step}")
    callbacks = build_callbacks(
        config, out_dir, pipeline, model, data,
        initial_epoch=restored.initial_epoch if restored else 0,
        resume_mid_epoch=bool(restored and restored.initial_step > 0),
    ) + list(extra_callbacks)
    if verbose:
        k = max(config.eval.ks)
        # After the callbacks that add to the logs (validation, GCBS), so it sees their values.
        callbacks.append(EpochLine(config.train.early_stopping.monitor, (f"val_hit_rate@{k}", "val_mrr"), verbose == 1))
    backup = RunBackup(run_dir, state, callbacks, every, restored)
    callbacks.append(backup)  # last: each backup sees the epoch's logs and callback state
    if chief:
        os.makedirs(run_dir, exist_ok=True)
        if not resume:
            save_config(config, os.path.join(run_dir, "config.yaml"))
            save_snapshot(data, os.path.join(run_dir, VOCAB))  # now, so a resume can check the data
            if history is not None:  # an export rebuilds the history tower from it, without the data
                save_history(history, os.path.join(run_dir, VOCAB))

    # An early-stopped backup trains no more epochs; fit still runs the callbacks' ends.
    epochs = restored.initial_epoch if restored is not None and restored.stopped else config.train.epochs
    fit_input = worker_input(pipeline, strategy) or {"x": _sharded(pipeline.dataset)}
    model.fit(**fit_input, epochs=epochs, callbacks=callbacks, verbose=0)
    train_seconds = backup.train_seconds
    epochs_run = len(backup.history.get("loss", []))
    best_epoch = _best_epoch(callbacks, epochs_run)
    model.set_oov_user_to_mean()

    os.makedirs(os.path.join(out_dir, "checkpoints"), exist_ok=True)
    model.save_weights(os.path.join(out_dir, CHECKPOINT))

    metrics = evaluate_run(config, data, model, share=worker_share(strategy))  # each worker ranks its share
    if streamed is not None:
        metrics.update(num_train=num_train, data_streaming={"cache": streamed.folder, "reused": streamed.reused})
        # Rows each worker read in its first epoch (from its own files when several), gathered on every worker.
        metrics["data"] = {"rows_read_by_worker": per_worker(strategy, pipeline.rows_read_per_epoch)}
    metrics.update(
        train_seconds=round(train_seconds, 3),
        train_examples_per_second=round(num_train * epochs_run / max(train_seconds, 1e-9), 1),
        epochs_run=epochs_run,
        # 1-based epoch whose weights were kept (early stopping restores the best one).
        best_epoch=best_epoch,
        history=backup.history,
        distribution=distribution_info(config, strategy),
        data_fingerprint=data.fingerprint,
        duplicate_rows=data.duplicate_rows,
        validation=validation_result(config, backup.history, best_epoch),
    )
    if chief:
        write_metrics(run_dir, metrics)
        backup.delete()  # after metrics.json: a kill before it leaves a run --resume can finish
    else:
        shutil.rmtree(out_dir, ignore_errors=True)
        # BackupAndRestore left the (emptied) folders of its temporary backups.
        for folder in [os.path.join(run_dir, BACKUP_DIR)] + ([] if folder_existed else [run_dir]):
            if os.path.isdir(folder) and not os.listdir(folder):
                os.rmdir(folder)
    if verbose:
        print(summary_line(metrics, config))
    return Run(config, data, model, run_dir, metrics, is_chief=chief)


def streaming_cache_root(run_dir: str) -> str:
    """``data.streaming``'s default cache: ``.tfrs-irns-cache`` beside the run folder (shared by its siblings)."""
    return os.path.join(os.path.dirname(os.path.abspath(run_dir)), ".tfrs-irns-cache")


def _sharded(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Multi-worker sharding by data: every worker builds the same seeded
    pipeline (the same random and GCBS orders: GCBS runs on every worker from
    the same mirrored weights) and keeps its replicas' slices of each global
    batch, so the steps are those of one machine with as many replicas. The
    pipeline is in-memory index gathers, cheap to repeat per worker; there are
    no files to shard by."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def validation_result(config: Config, history: dict[str, list[float]], best_epoch: int) -> Optional[dict[str, Any]]:
    """The monitored metric (``train.early_stopping.monitor``) at the kept epoch,
    ``{monitor, value, epoch, higher_is_better}``; None when it was not logged
    (no validation split). Publishing compares runs on it."""
    monitor = config.train.early_stopping.monitor
    values = history.get(monitor)
    if not values or not 1 <= best_epoch <= len(values) or not np.isfinite(values[best_epoch - 1]):
        return None
    return {
        "monitor": monitor,
        "value": float(values[best_epoch - 1]),
        "epoch": best_epoch,
        "higher_is_better": not monitor.endswith("loss"),
    }


def default_run_dir(config: Config) -> str:
    return os.path.join("runs", f"{config.name}-{time.strftime('%Y%m%d-%H%M%S')}")


def _best_epoch(callbacks: list, epochs_run: int) -> int:
    for callback in callbacks:
        if isinstance(callback, tf.keras.callbacks.EarlyStopping) and (
            callback.best_weights is not None or getattr(callback, "best_checkpoint", None) is not None
        ):
            return int(callback.best_epoch) + 1
    return epochs_run


def evaluate_run(
    config: Config, data: PreparedData, model: TwoTowerModel, share: Optional[WorkerShare] = None
) -> dict[str, Any]:
    """Test-split metrics of ``model`` and of the most-popular baseline
    (``share``: this worker's users under multi-worker training)."""
    e = config.eval
    metrics = evaluate_model(
        test_time_model(config, data, model), data, split="test", ks=e.ks, exclude_seen=e.exclude_seen,
        chunk_size=e.chunk_size, share=share,
    )
    metrics["popular_baseline"] = popular_baseline(data, split="test", ks=e.ks, exclude_seen=e.exclude_seen)
    metrics.update(
        num_users=data.num_users,
        num_items=data.num_items,
        num_train=len(data.train),
        num_validation=len(data.validation),
        num_test=len(data.test),
    )
    return metrics


def test_time_model(config: Config, data: PreparedData, model: TwoTowerModel) -> Any:
    """What the test split is ranked with: ``model``, or — a history tower on a split
    where validation comes before test in time (``leave_last_out``, ``temporal``) —
    its towers with each user's validation interactions added to their timelines:
    the item before the test item is part of the history at test time (the standard
    leave-one-out protocol). Training and validation never see those tables."""
    tower = model.query_tower
    if (
        not isinstance(tower, HistoryQueryTower) or config.data.split not in ("leave_last_out", "temporal")
        or len(data.validation) == 0 or len(data.cold_history)
    ):
        return model
    timelines = build_history(data.train, data.num_query_users + 1, data.validation)
    return SimpleNamespace(
        query_tower=tower.with_history(timelines.offsets, timelines.items), candidate_tower=model.candidate_tower
    )


def strict_json(value: Any) -> Any:
    """NaN/inf (e.g. GCBS diagnostics on epochs it skipped) become null: strict JSON."""
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def run_metrics(run: Run) -> Optional[dict[str, Any]]:
    """What training measured: ``run.metrics``, else the run folder's ``metrics.json``
    (never recomputed from overrides); None if there is neither."""
    if run.metrics is not None:
        return run.metrics
    path = os.path.join(run.directory, "metrics.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def write_metrics(run_dir: str, metrics: dict[str, Any]) -> None:
    """``<run_dir>/metrics.json``, strict JSON, written atomically."""
    with atomic_open(os.path.join(run_dir, "metrics.json")) as fh:
        json.dump(strict_json(metrics), fh, indent=2, allow_nan=False)


def summary_line(metrics: dict[str, Any], config: Config) -> str:
    k = max(config.eval.ks)
    return (
        f"test hit_rate@{k} = {metrics[f'hit_rate@{k}']:.4f} "
        f"(most-popular baseline {metrics['popular_baseline'][f'hit_rate@{k}']:.4f}), "
        f"recall@{k} = {metrics[f'recall@{k}']:.4f}, ndcg@{k} = {metrics[f'ndcg@{k}']:.4f}"
    )


def load_run(
    run_dir: str,
    overrides: Sequence[str] = (),
    sections: Optional[Sequence[str]] = None,
    with_data: bool = True,
    allow_changed_data: bool = False,
) -> Run:
    """Restore a finished run: its config, its vocabularies and its weights.

    The run's saved vocabularies are the truth: the model's row ``i`` is the
    id they name at ``i``, whatever the data says now. ``with_data=False``
    (export) needs no data at all. With data (evaluate), the splits are
    rebuilt and encoded with the saved vocabularies; if the data under the
    config changed since training (its fingerprint differs), that is an error
    unless ``allow_changed_data``. ``overrides`` are ``--set`` pairs, limited
    to the top-level ``sections`` when given.
    """
    config_path = os.path.join(run_dir, "config.yaml")
    if not os.path.isdir(run_dir):
        raise UserError(f"{run_dir}: run directory not found")
    if not os.path.isfile(config_path):
        raise UserError(f"{run_dir}: not a run directory (no config.yaml)")
    if not os.path.isfile(os.path.join(run_dir, CHECKPOINT + ".index")):
        raise UserError(
            f"{run_dir}: no checkpoint at {CHECKPOINT} (did training finish? an interrupted run continues with: "
            f"tfrs-irns train --resume {run_dir})"
        )
    config = load_config(config_path, overrides, sections)
    vocab_dir = os.path.join(run_dir, VOCAB)
    if not has_snapshot(vocab_dir):
        raise UserError(
            f"{run_dir}: no {VOCAB}/ snapshot of the run's vocabularies (written by an older tfrs-irns); train it again"
        )
    if with_data and config.data.streaming:
        # The shard cache is keyed by the data: the same files give the same shards and vocabularies.
        streamed = prepare_streamed(config.data, streaming_cache_root(run_dir), load_train=config.eval.exclude_seen)
        data = streamed.data
        if data.fingerprint != saved_fingerprint(vocab_dir):
            raise UserError(
                f"{run_dir}: the data at {config.data.path} changed since the run was trained (data.streaming: "
                "its shards' fingerprint differs); streamed evaluation needs the data the run was trained on"
            )
    elif with_data:
        data = prepare_data(config.data, vocabularies=saved_vocabularies(vocab_dir))
        trained_on = saved_fingerprint(vocab_dir)
        if data.fingerprint != trained_on and not allow_changed_data:
            raise UserError(
                f"{run_dir}: the data at {config.data.path or config.data.source} changed since the run was "
                "trained (its fingerprint differs); pass --allow-changed-data to evaluate on it anyway "
                "(ids the run never saw count as unknown)"
            )
    else:
        data = load_snapshot(vocab_dir)
    # A history tower's timelines as trained (the checkpoint restores them; this gives their shapes).
    model = build_model(config, data, history=load_history(vocab_dir))
    try:
        model.load_weights(os.path.join(run_dir, CHECKPOINT)).expect_partial()
    except (ValueError, tf.errors.OpError) as exc:
        raise UserError(f"{run_dir}: the checkpoint does not fit the run's config.yaml ({str(exc).splitlines()[0]})") from None
    return Run(config, data, model, run_dir)
