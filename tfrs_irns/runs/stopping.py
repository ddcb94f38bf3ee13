"""Early stopping that keeps its best epoch as a checkpoint, not as a copy in memory.

Retrieval models overfit within a few epochs, so a run stops once the
validation metric has not improved for ``patience`` epochs and ends with the
weights of its best epoch. Keras' ``EarlyStopping(restore_best_weights=True)``
keeps that epoch as ``model.get_weights()``: the whole model copied to host
memory at every improvement (a 1M-item table of 64 floats is 256 MB, and a
GPU waits for the copy), and a backup that wants it must copy it again.

:class:`BestEpochStopping` decides exactly as Keras does (same ``wait``,
``best``, ``best_epoch``, ``stopped_epoch``, the same messages) but writes
the best epoch's weights as a ``tf.train.Checkpoint`` in a folder of the run
(``<run>/backup/best/best-<epoch>``) and reads them back when training ends.
A backup records only the checkpoint's name. Checkpoints are named by epoch
and the one a backup may still point to is kept, so a kill between writing a
new best and backing it up leaves a consistent pair.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

import tensorflow as tf

PREFIX = "best-"


class BestEpochStopping(tf.keras.callbacks.EarlyStopping):
    """``EarlyStopping(restore_best_weights=True)`` with the best epoch on disk.

    Args:
      directory: folder of the best-epoch checkpoints (created when needed).
      monitor, mode, patience, verbose, min_delta, baseline, start_from_epoch:
        as ``tf.keras.callbacks.EarlyStopping``'s.

    Attributes:
      best_checkpoint: path prefix of the best epoch's checkpoint (None before
        the first monitored epoch); a resumed run sets it from its backup.
    """

    # Set by Keras' EarlyStopping (untyped there).
    wait: int
    best: float

    def __init__(
        self,
        directory: str,
        monitor: str = "val_loss",
        mode: str = "auto",
        patience: int = 0,
        verbose: int = 0,
        min_delta: float = 0.0,
        baseline: Optional[float] = None,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__(
            monitor=monitor, min_delta=min_delta, patience=patience, verbose=verbose, mode=mode,
            baseline=baseline, restore_best_weights=True, start_from_epoch=start_from_epoch,
        )
        self.directory = directory
        self.best_checkpoint: Optional[str] = None

    def _checkpoint(self) -> tf.train.Checkpoint:
        # The variables get_weights/set_weights cover, in their order: the same
        # state Keras restores (not the optimizer).
        return tf.train.Checkpoint(weights=list(self.model.weights))

    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        super().on_train_begin(logs)
        self.best_checkpoint = None

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        # Keras' EarlyStopping.on_epoch_end, with a checkpoint for get_weights().
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        first = self.best_checkpoint is None
        if first:  # Keras keeps the first monitored epoch even if it makes no progress
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            self._keep(epoch)
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if first:
            self._keep(epoch)
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Optional[dict] = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping", file=sys.stdout, flush=True)
        if self.best_checkpoint is not None:
            if self.verbose > 0:
                print(
                    f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.",
                    file=sys.stdout, flush=True,
                )
            self._checkpoint().read(self.best_checkpoint).assert_existing_objects_matched()

    def _keep(self, epoch: int) -> None:
        """Write this epoch's weights; delete older ones but the previous best
        (the last backup may still name it)."""
        tf.io.gfile.makedirs(self.directory)
        path = os.path.join(self.directory, f"{PREFIX}{epoch + 1}")
        self._checkpoint().write(path)
        keep = {path, self.best_checkpoint}
        self.best_checkpoint = path
        for name in tf.io.gfile.listdir(self.directory):
            prefix = os.path.join(self.directory, name.split(".", 1)[0])
            if name.startswith(PREFIX) and prefix not in keep:
                tf.io.gfile.remove(os.path.join(self.directory, name))
