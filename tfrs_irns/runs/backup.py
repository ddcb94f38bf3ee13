"""Runs that survive being killed: a backup in the run folder, and resuming from it.

A long run killed at epoch 9 of 10 should not start again from zero.
``tf.keras.callbacks.BackupAndRestore`` checkpoints the model and its
optimizer in ``<run>/backup/`` after every epoch (and every
``train.backup_every_steps`` steps); :class:`RunBackup` adds to the same
checkpoint what else a run needs to continue exactly as if it had never
stopped (:class:`RunState`):

* the validation history of the epochs done (``metrics.json``'s ``history``
  covers every epoch of a resumed run);
* the early-stopping state (wait, best value, best epoch, and the name of
  the best epoch's checkpoint, which :class:`~tfrs_irns.runs.stopping.BestEpochStopping`
  writes in ``<run>/backup/best/``: the backup holds no second copy of the weights);
* the batch order state: the random order is a function of the epoch number
  (:meth:`~tfrs_irns.batching.pipeline.TrainPipeline.resume_at`), and the
  explicit GCBS order of a half-done epoch is kept as it was (recomputing it
  from mid-epoch weights would give another one), with its diagnostics.

The sampling step counter of the task is a weight of the model, so the
checkpoint has it already. One checkpoint holds everything, so a kill leaves
the previous backup or the new one, never a mix (the best-epoch checkpoints
are named by epoch, and the one the previous backup names is kept).

Nothing here runs per step beyond counting: the batch number a mid-epoch
backup records is set when the backup is written, not at every step.

Under ``MultiWorkerMirroredStrategy`` every worker restores from the chief's
backup; non-chief workers write theirs to temporary folders that
``BackupAndRestore`` deletes (TF's convention).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import tensorflow as tf

from tfrs_irns.runs.rundir import RunDir



def best_dir(run_dir: str) -> str:
    """Where the early stopping of a run in ``run_dir`` keeps its best epoch."""
    return RunDir(run_dir).best


class RunState(tf.Module):
    """The run's training state beyond the model and optimizer, as
    checkpointable variables: a JSON string (history, early stopping, GCBS
    plan) and the pipeline's explicit order."""

    def __init__(self, pipeline: Any) -> None:
        super().__init__(name="run_state")
        self.state = tf.Variable("{}", dtype=tf.string, trainable=False, name="state")
        self.order = dict(pipeline.order_variables)

    def read(self) -> dict[str, Any]:
        return json.loads(self.state.numpy().decode("utf-8"))


@dataclass
class Restored:
    """Where a backup says the run stands."""

    initial_epoch: int  # 0-based epoch training continues with
    initial_step: int  # its first batch (> 0: the backup was made mid-epoch)
    state: dict[str, Any]

    @property
    def stopped(self) -> bool:
        """Early stopping had ended training when the backup was made."""
        return bool(self.state.get("stop_training", False))


def restore(
    folder: RunDir, model: tf.keras.Model, state: RunState, steps_per_epoch: int, every_steps: Optional[int]
) -> Optional[Restored]:
    """Restore the model, optimizer and ``state`` from the run's backup, if
    any, and say where training continues (as Keras will compute it).

    ``BackupAndRestore`` restores the same checkpoint again when ``fit``
    begins; restoring before ``fit`` lets the pipeline and the callbacks be
    set up for the epoch training resumes at.
    """
    latest = tf.train.latest_checkpoint(folder.backup_checkpoints)
    if latest is None:
        return None
    epoch = tf.Variable(-1, dtype=tf.int64)
    batch = tf.Variable(-1, dtype=tf.int64)
    # The structure WorkerTrainingState saves, with the run state RunBackup adds.
    checkpoint = tf.train.Checkpoint(
        model=model, ckpt_saved_epoch=epoch, ckpt_saved_batch=batch, train_counter=model._train_counter,
        run_state=state,
    )
    checkpoint.restore(latest).expect_partial()
    epoch, batch = int(epoch.numpy()), int(batch.numpy())
    # WorkerTrainingState.maybe_load_initial_counters_from_ckpt's rule.
    initial_epoch, initial_step = epoch + 1, 0
    if every_steps is not None and 0 <= batch < steps_per_epoch - 1:
        initial_epoch, initial_step = epoch, batch + 1
    return Restored(initial_epoch, initial_step, state.read())


def _name(path: Optional[str]) -> Optional[str]:
    return os.path.basename(path) if path else None


class RunBackup(tf.keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that also backs up the :class:`RunState` of the
    given callbacks, at every epoch's end and every ``every_steps`` steps.

    Put it last: each backup then sees the logs and the callbacks' state of
    the epoch just ended. It also keeps the history of every epoch, resumed
    or not (:attr:`history`).
    """

    def __init__(
        self,
        folder: RunDir,
        state: RunState,
        callbacks: Sequence[tf.keras.callbacks.Callback],
        every_steps: Optional[int] = None,
        restored: Optional[Restored] = None,
    ) -> None:
        super().__init__(folder.backup, save_freq=every_steps or "epoch", delete_checkpoint=False)
        self.state = state
        self.every_steps = every_steps
        self.restored = restored
        self.best = folder.best
        self.history: dict[str, list[float]] = dict(restored.state.get("history", {})) if restored else {}
        self._seconds_before = float(restored.state.get("train_seconds", 0.0)) if restored else 0.0
        self._start: Optional[float] = None
        self._last_batch = -1
        self._stopping = next((c for c in callbacks if isinstance(c, tf.keras.callbacks.EarlyStopping)), None)
        self._gcbs = next((c for c in callbacks if hasattr(c, "order_for")), None)

    # ----------------------------------------------------------- Keras hooks

    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        super().on_train_begin(logs)  # restores the checkpoint (again, if resuming)
        # One checkpoint for everything: the run state joins the one
        # WorkerTrainingState made (model, optimizer, epoch and batch counters).
        self._training_state.read_checkpoint_manager._checkpoint.run_state = self.state
        if self.restored is not None:
            self._apply(self.restored.state)
        self._start = time.perf_counter()

    @property
    def train_seconds(self) -> float:
        """Seconds spent in ``fit``, over every resumed part of the run."""
        return self._seconds_before + (time.perf_counter() - self._start if self._start is not None else 0.0)

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        if self.every_steps:  # BackupAndRestore backs up per epoch only with save_freq="epoch"
            self._backup(epoch=epoch, batch=self._last_batch)
        else:
            super().on_epoch_end(epoch, logs)

    def on_train_batch_begin(self, batch: int, logs: Optional[dict] = None) -> None:
        # BackupAndRestore assigns the batch counter variable here at every step;
        # _backup assigns it once, when a backup is written.
        pass

    def on_train_batch_end(self, batch: int, logs: Optional[dict] = None) -> None:
        self._last_batch = batch
        super().on_train_batch_end(batch, logs)

    def _backup(self, epoch: int, batch: int = 0) -> None:
        if self.every_steps:
            # The last batch done (the last of a multi-step execution): Keras resumes
            # after it, at the next epoch after the epoch's last batch.
            self._training_state._ckpt_saved_batch.assign(batch)
        self._capture()
        super()._backup(epoch=epoch, batch=batch)

    # ------------------------------------------------------------- the state

    def _capture(self) -> None:
        state: dict[str, Any] = {
            "history": self.history,
            "stop_training": bool(getattr(self.model, "stop_training", False)),
            "train_seconds": self.train_seconds,
        }
        es = self._stopping
        if es is not None:
            state["early_stopping"] = {
                "wait": int(es.wait),
                "stopped_epoch": int(es.stopped_epoch),
                "best": float(es.best),  # json keeps inf, the value before any epoch
                "best_epoch": int(es.best_epoch),
                # Its name: a resumed run reads it from this run's folder.
                "best_checkpoint": _name(getattr(es, "best_checkpoint", None)),
            }
        if self._gcbs is not None and self._gcbs._planned is not None:
            planned_epoch, stats = self._gcbs._planned
            state["gcbs_planned"] = [planned_epoch, {k: float(v) for k, v in stats.items()}]
        self.state.state.assign(json.dumps(state))

    def _apply(self, state: dict[str, Any]) -> None:
        es, saved = self._stopping, state.get("early_stopping")
        if es is not None and saved is not None:
            es.wait = saved["wait"]
            es.stopped_epoch = saved["stopped_epoch"]
            es.best = float(saved["best"])
            es.best_epoch = saved["best_epoch"]
            if saved.get("best_checkpoint") and hasattr(es, "best_checkpoint"):
                # The chief's folder: every worker of a multi-worker run reads the chief's backup.
                es.best_checkpoint = os.path.join(self.best, saved["best_checkpoint"])
        planned = state.get("gcbs_planned")
        if self._gcbs is not None and planned is not None and self.restored is not None:
            if self.restored.initial_step > 0 and planned[0] == self.restored.initial_epoch + 1:
                self._gcbs._planned = (planned[0], {k: float(v) for k, v in planned[1].items()})

