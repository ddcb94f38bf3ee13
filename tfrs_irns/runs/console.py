"""What a training run prints: one short line per epoch.

Keras' own epoch line prints every logged value: with the validation
metrics at every K and the GCBS diagnostics that ran to ~660 characters.
The full record goes to ``metrics.json`` (``history``) and TensorBoard; the
console gets what a person watches: the loss with its L2 part, the
monitored validation metric (and the largest-K hit rate and MRR), and
whether GCBS ordered the epoch.

On a terminal a progress bar runs within each epoch. The loss in a batch's
logs is a tensor on the device the step ran on, and reading it waits for the
device (a device→host sync that stalls a GPU's queue of steps): the bar
reads it at most once per ``interval`` seconds and at the epoch's end, and
takes the batch logs as tensors so Keras does not convert them every step.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Callable, Optional

import tensorflow as tf

from tfrs_irns.data.progress import Every


class EpochLine(tf.keras.callbacks.Callback):
    """Prints ``epoch 3/12  4s  loss 5.4119 (l2 0.0312)  val_hit_rate@100 0.8583  val_mrr 0.0891  gcbs 0.05s``.

    Args:
      monitor: the metric early stopping watches, shown first among the validation ones.
      also: further log keys shown when present.
      progress_bar: a Keras progress bar within each epoch (a terminal).
      interval: seconds between two reads of the loss for the bar (the
        first batch and the epoch's end are always shown).
      clock: the clock of ``interval`` (tests pass a fake one).
    """

    def __init__(
        self,
        monitor: str,
        also: tuple[str, ...] = (),
        progress_bar: bool = False,
        interval: float = 1.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        super().__init__()
        self.keys = [monitor] + [k for k in also if k != monitor]
        self.progress_bar = progress_bar
        self._bar: Optional[tf.keras.utils.Progbar] = None
        self._start = 0.0
        self._every = Every(interval, clock)
        self._done = 0
        # Batch logs reach this callback as tensors (no per-step conversion by Keras).
        self._supports_tf_logs = True
        if not progress_bar:
            # Keras times batch hooks only when a callback overrides them: keep the default.
            self.on_train_batch_end = super().on_train_batch_end  # type: ignore[method-assign]

    def on_epoch_begin(self, epoch: int, logs: Optional[dict] = None) -> None:
        self._start = time.perf_counter()
        self._done = 0
        self._every.reset()
        if self.progress_bar:
            self._bar = tf.keras.utils.Progbar(self.params.get("steps"), stateful_metrics=["loss"], verbose=1)

    def on_train_batch_end(self, batch: int, logs: Optional[dict] = None) -> None:
        self._done = batch + 1
        # The last batch is shown by on_epoch_end; between, at most one read per interval.
        if self._bar is None or not logs or self._done == self.params.get("steps") or not self._every.due():
            return
        self._bar.update(self._done, [("loss", float(logs.get("loss", math.nan)))])

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if self._bar is not None and logs:
            self._bar.update(self._done, [("loss", float(logs.get("loss", math.nan)))], finalize=True)
            self._bar = None
        print(self.line(epoch, logs or {}, time.perf_counter() - self._start), file=sys.stdout, flush=True)

    def line(self, epoch: int, logs: dict[str, Any], seconds: float) -> str:
        total = self.params.get("epochs") if self.params else None
        parts = [f"epoch {epoch + 1}/{total}" if total else f"epoch {epoch + 1}", f"{seconds:.0f}s"]
        if "loss" in logs:
            loss = f"loss {float(logs['loss']):.4f}"
            if float(logs.get("l2_loss", 0.0)) > 0:
                loss += f" (l2 {float(logs['l2_loss']):.4f})"
            parts.append(loss)
        parts += [f"{key} {float(logs[key]):.4f}" for key in self.keys if key in logs and key != "loss"]
        if logs.get("gcbs_active") == 1.0:
            parts.append(f"gcbs order {float(logs.get('gcbs_seconds', math.nan)):.2f}s")
        return "  ".join(parts)
