"""A training run in four steps: prepare → build → fit → finish.

:func:`train` is the whole run, exactly what ``tfrs-irns train`` does:

1. :func:`prepare`: the config validated, the strategy made, the data loaded,
   split and checked (and, resuming, checked against the data the run started
   on). Nothing is written yet.
2. :func:`build`: the input pipeline, the model, the callbacks, a backup to
   resume from; then the run folder is started (config, data snapshot): only
   now are the config, the data and the model known good.
3. :func:`fit`: ``model.fit`` with backups and early stopping; the kept weights saved.
4. :func:`finish`: test metrics into ``metrics.json``, the backup deleted,
   and the run's SavedModel written and published by ``export.enabled`` /
   ``export.publish``.

The run folder's layout is :class:`~tfrs_irns.runs.rundir.RunDir`'s. Under
``MultiWorkerMirroredStrategy`` every worker runs the same command; only the
chief writes the run folder and exports. The others write what they must (the
final checkpoint, TensorBoard) to a temporary folder they delete.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Optional, Sequence

import numpy as np
import tensorflow as tf

from tfrs_irns.batching.pipeline import TrainPipeline
from tfrs_irns.batching.shards import ShardPipeline, per_worker, worker_files, worker_input
from tfrs_irns.config import Config, absolute_paths, content_features, validate
from tfrs_irns.data.history import UserHistory, build_history, load_history
from tfrs_irns.data.prepare import Catalogue, PreparedData, prepare_data
from tfrs_irns.data.snapshot import load_snapshot, saved_fingerprint, saved_vocabularies
from tfrs_irns.data.streaming import StreamedData, prepare_streamed
from tfrs_irns.errors import ConfigError, UserError
from tfrs_irns.evaluation import evaluate_model, popular_baseline
from tfrs_irns.layers.history import HistoryQueryTower
from tfrs_irns.evaluation.params import monitor_mode
from tfrs_irns.evaluation.shares import WorkerShare, worker_share
from tfrs_irns.models.two_tower import TwoTowerModel
from tfrs_irns.runs.backup import Restored, RunBackup, RunState, restore
from tfrs_irns.runs.build import (
    build_callbacks, build_model, check_export_extras, compile_options, distribution_info, export_name,
    make_optimizer, make_strategy, pipeline_extras, sequence_train_pipeline, user_history,
)
from tfrs_irns.runs.console import EpochLine
from tfrs_irns.runs.parameter_server import is_parameter_server, placement, worker_dataset, worker_tables
from tfrs_irns.runs.rundir import RunDir, default_run_dir, strict_json
from tfrs_irns.runs.wording import config_words


@dataclass(frozen=True)
class Exported:
    """What the end of a run did with its model: the run's own SavedModel, the version
    it was published as (None: not published) and why, and what the export measured
    for ``metrics.json`` (``catalogue``, ``ann``)."""

    local: str
    published: Optional[str]
    reason: str
    recorded: dict[str, Any]


@dataclass
class Run:
    """A trained (or restored) model with its catalogue, its data and config."""

    config: Config
    catalogue: Catalogue
    model: TwoTowerModel
    directory: str
    # The splits, when loaded (None for a run restored without its data: export).
    data: Optional[PreparedData] = None
    metrics: Optional[dict[str, Any]] = None
    # False on the non-chief workers of a multi-worker run: they wrote no run folder.
    is_chief: bool = True
    exported: Optional[Exported] = None  # set by train() when export.enabled


def holds_run(run_dir: str) -> bool:
    """Whether ``run_dir`` already holds a run (finished or interrupted)."""
    return RunDir(run_dir).holds_run()


def resume_config(run_dir: str) -> Config:
    """The config of the interrupted run in ``run_dir``, for ``train --resume``."""
    folder = RunDir(run_dir)
    folder.check_is_run("; nothing to resume")
    if folder.finished():
        raise UserError(f"{run_dir}: the run already finished (it has {RunDir.METRICS}); nothing to resume")
    return folder.read_config()


@config_words()  # the libraries name their arguments; the user reads config keys
def train(
    config: Config,
    run_dir: Optional[str] = None,
    verbose: Optional[int] = None,
    extra_callbacks: Sequence[tf.keras.callbacks.Callback] = (),
    resume: bool = False,
) -> Run:
    """Train the model ``config`` describes, write the run directory and, by
    ``export.enabled`` / ``export.publish``, export and publish it (``run.exported``).

    ``run_dir``: the run folder (default ``runs/<config name>-<time>``).
    ``verbose``: 0 silent, 1 progress bar, 2 one line per epoch; by default a
    bar on a terminal and one line per epoch in logs (CI, files).
    ``resume``: continue the interrupted run in ``run_dir`` from its last
    backup (``config`` is the one saved there, see :func:`resume_config`);
    the run then ends as the uninterrupted run would have.
    """
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    prepared = prepare(config, run_dir, resume, verbose)
    session = build(prepared, extra_callbacks)
    return finish(prepared, session, fit(prepared, session))


@dataclass
class Prepared:
    """What :func:`prepare` established: a valid config, its strategy, the data, the run folder (unwritten)."""

    config: Config
    folder: RunDir
    data: PreparedData
    history: Optional[UserHistory]
    strategy: tf.distribute.Strategy
    resume: bool
    verbose: int
    streamed: Optional[StreamedData] = None

    @property
    def chief(self) -> bool:
        """Whether this process writes the run folder (every process but a multi-worker run's others)."""
        return bool(self.strategy.extended.should_checkpoint)

    @property
    def num_train(self) -> int:
        return self.streamed.num_train if self.streamed is not None else len(self.data.train)


def prepare(config: Config, run_dir: Optional[str], resume: bool = False, verbose: int = 0) -> Prepared:
    """Step 1: the config validated, the strategy made and the data loaded, split and
    checked; resuming, checked against the data the run started on. Writes nothing."""
    config = absolute_paths(validate(config))
    if run_dir is not None and os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise UserError(f"{run_dir}: exists and is not a folder; name a folder for the run")
    if resume and run_dir is None:
        raise ValueError("resume=True needs the run_dir of the run to continue")
    if config.export.enabled:
        export_name(config)  # a bad name stops now, not after training
        check_export_extras(config)  # so does a missing optional dependency
    # First: logical CPUs and collectives must be set up before TF initialises devices.
    strategy = make_strategy(config.train.distribution)
    folder = RunDir(run_dir or default_run_dir(config.name))
    if not resume and strategy.extended.should_checkpoint and run_dir is not None and folder.holds_run():
        raise UserError(
            f"{run_dir}: already holds a run; continue it with `tfrs-irns train --resume {run_dir}` "
            "or name another --output"
        )
    tf.keras.utils.set_random_seed(config.train.seed)
    streamed = None
    if config.data.streaming:  # the rows stay in shards on disk; the held-out splits are loaded
        # The test split stays in its shards: the final evaluation reads it a group of users at a time.
        streamed = prepare_streamed(
            config.data, folder.streaming_cache_root(), load_train=config.eval.exclude_seen, load_test=False
        )
        data = streamed.data
    else:
        # A content item tower serves the whole item table (items without interactions embed from content).
        data = prepare_data(config.data, catalogue="item_table" if content_features(config.model) else "interactions")
    prepared = Prepared(config, folder, data, None, strategy, resume, verbose, streamed)
    _check_data(prepared)
    prepared.history = user_history(config, data)
    return prepared


def _check_data(p: Prepared) -> None:
    """Say what the data is; stop on data the run cannot train on or continue with."""
    config, data, num_train = p.config, p.data, p.num_train
    if p.verbose:
        print(
            f"data: {data.description} | train {num_train:,}, validation {len(data.validation):,}, "
            f"test {len(data.test):,} | {data.num_users:,} users, {data.num_items:,} items"
        )
    if config.batching.drop_remainder and num_train < config.train.batch_size:
        raise ConfigError(
            f"train.batch_size={config.train.batch_size} with batching.drop_remainder=true drops all "
            f"{num_train} training interactions; lower train.batch_size or set batching.drop_remainder=false"
        )
    # The run's indices mean the ids of the data it started on: resuming on other data would mix them.
    started_on = saved_fingerprint(p.folder.snapshot) if p.resume else None
    if started_on is not None and started_on != data.fingerprint:
        raise UserError(
            f"{p.folder}: the data at {config.data.path or config.data.source} changed since the run started "
            "(its fingerprint differs); start a new run with --output"
        )


@dataclass
class Session:
    """What :func:`build` made for ``model.fit``: the model, its pipeline and callbacks, the backup."""

    model: TwoTowerModel
    pipeline: Any
    callbacks: list[tf.keras.callbacks.Callback]
    backup: RunBackup
    restored: Optional[Restored]
    out_dir: str  # the run folder; a temporary one on the non-chief workers
    folder_existed: bool


def build(p: Prepared, extra_callbacks: Sequence[tf.keras.callbacks.Callback] = ()) -> Session:
    """Step 2: pipeline, model and callbacks, restored from the backup when resuming;
    then the run folder is started: config, data and model are known good."""
    config = p.config
    pipeline = _pipeline(p)
    with p.strategy.scope():  # mirrored variables, optimizer slots included
        with worker_tables(p.strategy):  # parameter_server: data tables per worker, not on the PS
            model = build_model(config, p.data, history=p.history)
        model.compile(optimizer=make_optimizer(config), **compile_options(config))
        # Slots now, in scope: a backup restores into them, and BackupAndRestore wants a built model.
        model.optimizer.build(model.trainable_variables)
    model.built = True  # every weight exists (build_model); Keras never calls the model itself
    # Non-chief workers write nothing in the run folder (TF's convention: a temporary one).
    out_dir = p.folder.path if p.chief else tempfile.mkdtemp(prefix="tfrs-irns-worker-")
    folder_existed = os.path.isdir(p.folder.path)
    every = config.train.backup_every_steps
    state = RunState(pipeline)
    restored = restore(p.folder, model, state, pipeline.steps_per_epoch, every) if p.resume else None
    if restored is not None:
        pipeline.resume_at(restored.initial_epoch, restored.initial_step)
        if p.verbose:
            print(f"resuming {p.folder} at epoch {restored.initial_epoch + 1}, step {restored.initial_step}")
    callbacks = build_callbacks(
        config, out_dir, pipeline, model, p.data,
        initial_epoch=restored.initial_epoch if restored else 0,
        resume_mid_epoch=bool(restored and restored.initial_step > 0),
    ) + list(extra_callbacks)
    if p.verbose:
        k = max(config.eval.ks)
        # After the callbacks that add to the logs (validation, GCBS), so it sees their values.
        callbacks.append(EpochLine(config.train.early_stopping.monitor, (f"val_hit_rate@{k}", "val_mrr"), p.verbose == 1))
    backup = RunBackup(p.folder, state, callbacks, every, restored)
    callbacks.append(backup)  # last: each backup sees the epoch's logs and callback state
    if p.chief:
        os.makedirs(p.folder.path, exist_ok=True)
        if not p.resume:
            p.folder.start(config, p.data, p.history)
    return Session(model, pipeline, callbacks, backup, restored, out_dir, folder_existed)


def _pipeline(p: Prepared) -> Any:
    """The training batches: from shards on disk, windows of whole timelines, or in-memory (GCBS) batches."""
    config = p.config
    if p.streamed is not None:
        workers = worker_files(p.strategy, (p.streamed.file_rows or {}).get("train", []))  # each reads its own files
        if workers is not None and config.train.batch_size % workers.num_replicas:
            raise ConfigError(
                f"train.batch_size={config.train.batch_size} with data.streaming under multi_worker must split "
                f"evenly over the {workers.num_replicas} replicas"
            )
        return ShardPipeline(
            p.streamed.files["train"], p.streamed.num_train, config.train.batch_size,
            seed=config.train.seed, drop_remainder=config.batching.drop_remainder, workers=workers,
        )
    if config.train.sequence_training and p.history is not None:
        return sequence_train_pipeline(config, p.data, p.history)
    return TrainPipeline(
        p.data.train.user, p.data.train.item, config.train.batch_size, seed=config.train.seed,
        drop_remainder=config.batching.drop_remainder, extras=pipeline_extras(p.history),
    )


@dataclass(frozen=True)
class Fitted:
    """What :func:`fit` measured."""

    train_seconds: float  # over every resumed part of the run
    epochs_run: int
    best_epoch: int  # 1-based epoch whose weights were kept (early stopping restores the best one)
    history: dict[str, list[float]]


def fit(p: Prepared, s: Session) -> Fitted:
    """Step 3: ``model.fit`` with the session's callbacks (backups, early stopping);
    the kept weights saved to the run folder's checkpoint."""
    # An early-stopped backup trains no more epochs; fit still runs the callbacks' ends.
    restored = s.restored
    epochs = restored.initial_epoch if restored is not None and restored.stopped else p.config.train.epochs
    if is_parameter_server(p.strategy):  # the coordinator counts the steps of each worker's endless share
        data = p.data.train
        arrays = {"user": data.user, "item": data.item, **pipeline_extras(p.history)}
        s.model.fit(
            worker_dataset(arrays, p.config.train.batch_size, p.config.train.seed), epochs=epochs,
            steps_per_epoch=s.pipeline.steps_per_epoch, callbacks=s.callbacks, verbose=0,
        )
    else:
        fit_input = worker_input(s.pipeline, p.strategy) or {"x": _sharded(s.pipeline.dataset)}
        s.model.fit(**fit_input, epochs=epochs, callbacks=s.callbacks, verbose=0)
    epochs_run = len(s.backup.history.get("loss", []))
    fitted = Fitted(s.backup.train_seconds, epochs_run, _best_epoch(s.callbacks, epochs_run), s.backup.history)
    s.model.set_oov_user_to_mean()
    weights = RunDir(s.out_dir).weights
    os.makedirs(os.path.dirname(weights), exist_ok=True)
    s.model.save_weights(weights)
    return fitted


def finish(p: Prepared, s: Session, f: Fitted) -> Run:
    """Step 4: test metrics into ``metrics.json``, the backup deleted (after it: a kill
    before leaves a run ``--resume`` can finish), then the export and its record."""
    config, folder = p.config, p.folder
    metrics = _metrics(p, s, f)
    run = Run(config, p.data.catalogue, _handed_on(p, s), folder.path, p.data, metrics, is_chief=p.chief)
    if p.chief:
        folder.write_metrics(metrics)
        folder.delete_backup()
    else:
        shutil.rmtree(s.out_dir, ignore_errors=True)
        folder.remove_empty_backup(remove_self=not s.folder_existed)
    if p.verbose:
        print(summary_line(metrics, config))
    if p.chief and config.export.enabled:
        from tfrs_irns.runs.exporting import export_trained_run  # it builds on Run: imported late

        run.exported = export_trained_run(run)
        if run.exported.recorded:  # the one write an export makes in the run folder
            metrics.update(run.exported.recorded)
            folder.write_metrics(metrics)
    return run


def _handed_on(p: Prepared, s: Session) -> TwoTowerModel:
    """The model the run hands on (its export, :class:`Run`). A parameter-server model is
    rebuilt on this process from its saved weights: a SavedModel cannot hold its per-worker tables."""
    if not is_parameter_server(p.strategy):
        return s.model
    model = build_model(p.config, p.data, history=p.history)
    model.load_weights(RunDir(s.out_dir).weights).expect_partial()  # no optimizer: its slots stay unread
    return model


def _metrics(p: Prepared, s: Session, f: Fitted) -> dict[str, Any]:
    """``metrics.json``: the test metrics, and how training went."""
    share = worker_share(p.strategy)  # each worker ranks its share
    if p.streamed is None:
        metrics = evaluate_run(p.config, p.data, s.model, share=share)
    else:
        metrics = evaluate_streamed_run(p.config, p.streamed, s.model, share=share)
        metrics["data_streaming"] = {"cache": p.streamed.folder, "reused": p.streamed.reused}
        # Rows each worker read in its first epoch (from its own files when several), gathered on every worker.
        metrics["data"] = {"rows_read_by_worker": per_worker(p.strategy, s.pipeline.rows_read_per_epoch)}
    metrics.update(
        train_seconds=round(f.train_seconds, 3),
        train_examples_per_second=round(p.num_train * f.epochs_run / max(f.train_seconds, 1e-9), 1),
        epochs_run=f.epochs_run,
        # 1-based epoch whose weights were kept (early stopping restores the best one).
        best_epoch=f.best_epoch,
        history=f.history,
        distribution={**distribution_info(p.config, p.strategy), **placement(p.strategy, s.model)},
        data_fingerprint=p.data.fingerprint,
        duplicate_rows=p.data.duplicate_rows,
        validation=validation_result(p.config, f.history, f.best_epoch),
    )
    return metrics


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
        "higher_is_better": monitor_mode(monitor) == "max",
    }


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


def evaluate_streamed_run(
    config: Config, streamed: StreamedData, model: TwoTowerModel, share: Optional[WorkerShare] = None
) -> dict[str, Any]:
    """:func:`evaluate_run` with the test split read from its shards in passes of
    users (memory: one pass's rows, not the split's), the model's and the
    most-popular baseline's; the same numbers as the in-memory evaluation."""
    from tfrs_irns.data.streaming import iter_blocks
    from tfrs_irns.evaluation.baselines import SCORER, popularity_embeddings
    from tfrs_irns.evaluation.evaluate import embed_users
    from tfrs_irns.evaluation.streamed import evaluate_streamed
    from tfrs_irns.layers.towers import embed_indices

    e, data = config.eval, streamed.data
    seen: dict[str, Any] = {}
    if e.exclude_seen:  # what the test ranking leaves out: training and validation (load_train)
        seen = dict(
            train_users=np.concatenate([data.train.user, data.validation.user]),
            train_items=np.concatenate([data.train.item, data.validation.item]),
        )

    def records() -> Any:
        return iter_blocks(streamed.files["test"])

    protocol = dict(ks=e.ks, exclude_seen=e.exclude_seen, chunk_size=e.chunk_size)
    user_emb = embed_users(model.query_tower, np.arange(data.num_users + 1), data.num_users)
    item_emb = embed_indices(model.candidate_tower, data.num_items + 1)
    metrics = evaluate_streamed(
        user_emb, item_emb, records, item_counts=data.item_counts, share=share, **seen, **protocol  # type: ignore[arg-type]
    )
    popular_users, popular_items = popularity_embeddings(data.item_counts, data.num_users)
    baseline = evaluate_streamed(
        popular_users, popular_items, records, item_counts=data.item_counts, share=share, **seen, **protocol  # type: ignore[arg-type]
    )
    baseline["protocol"]["scorer"] = SCORER
    baseline.pop("users_ranked_by_worker", None)
    metrics["popular_baseline"] = baseline
    metrics.update(
        num_users=data.num_users, num_items=data.num_items, num_train=streamed.rows["train"],
        num_validation=streamed.rows["validation"], num_test=streamed.rows["test"],
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


def run_metrics(run: Run) -> Optional[dict[str, Any]]:
    """What training measured: ``run.metrics``, else the run folder's ``metrics.json``
    (never recomputed from overrides); None if there is neither."""
    return run.metrics if run.metrics is not None else RunDir(run.directory).read_metrics()


def summary_line(metrics: dict[str, Any], config: Config) -> str:
    k = max(config.eval.ks)
    return (
        f"test hit_rate@{k} = {metrics[f'hit_rate@{k}']:.4f} "
        f"(most-popular baseline {metrics['popular_baseline'][f'hit_rate@{k}']:.4f}), "
        f"recall@{k} = {metrics[f'recall@{k}']:.4f}, ndcg@{k} = {metrics[f'ndcg@{k}']:.4f}"
    )


@config_words()
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
    folder = RunDir(run_dir)
    folder.check_weights()
    config = folder.read_config(overrides, sections)
    folder.check_snapshot()
    data = _saved_run_data(config, folder, allow_changed_data) if with_data else None
    catalogue = data.catalogue if data is not None else load_snapshot(folder.snapshot)
    # A history tower's timelines as trained (the checkpoint restores them; this gives their shapes).
    history = load_history(folder.snapshot)
    # build_model reads the catalogue only (its annotation predates Catalogue).
    model = build_model(config, data if data is not None else catalogue, history=history)
    try:
        model.load_weights(folder.weights).expect_partial()
    except (ValueError, tf.errors.OpError) as exc:
        raise UserError(f"{run_dir}: the checkpoint does not fit the run's config.yaml ({str(exc).splitlines()[0]})") from None
    return Run(config, catalogue, model, run_dir, data)


def _saved_run_data(config: Config, folder: RunDir, allow_changed_data: bool) -> PreparedData:
    """A finished run's splits, encoded with its saved vocabularies; an error if the data changed since."""
    trained_on = saved_fingerprint(folder.snapshot)
    if config.data.streaming:
        # The shard cache is keyed by the data: the same files give the same shards and vocabularies.
        data = prepare_streamed(config.data, folder.streaming_cache_root(), load_train=config.eval.exclude_seen).data
        if data.fingerprint != trained_on:
            raise UserError(
                f"{folder}: the data at {config.data.path} changed since the run was trained (data.streaming: "
                "its shards' fingerprint differs); streamed evaluation needs the data the run was trained on"
            )
        return data
    data = prepare_data(config.data, vocabularies=saved_vocabularies(folder.snapshot))
    if data.fingerprint != trained_on and not allow_changed_data:
        raise UserError(
            f"{folder}: the data at {config.data.path or config.data.source} changed since the run was "
            "trained (its fingerprint differs); pass --allow-changed-data to evaluate on it anyway "
            "(ids the run never saw count as unknown)"
        )
    return data
