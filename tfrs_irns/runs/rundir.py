"""The run folder: one class that knows its layout and reads and writes its files.

A training run is a folder that holds everything needed to evaluate it
again, export it or resume it without the original process or the data:

```
<run>/config.yaml          the resolved config (data paths made absolute)
<run>/metrics.json         test metrics, the most-popular baseline, timings, sizes; what the
                           export recorded (catalogue, ann)
<run>/checkpoints/weights  the trained weights (TF checkpoint)
<run>/vocab/               the data snapshot: vocabularies, item side table, fingerprint, seen items,
                           history table (tfrs_irns.data.snapshot; evaluate and export trust it, not the data)
<run>/saved_model/1/       the run's own SavedModel (when export.enabled), published or not
<run>/evaluations/         one JSON record per `tfrs-irns evaluate`
<run>/logs/                TensorBoard
<run>/backup/              the last backup while training runs (train --resume continues from it);
<run>/backup/chief/        BackupAndRestore's checkpoint (TF names the chief's folder so)
<run>/backup/best/         the best epoch's checkpoint of early stopping (deleted with the backup)
```

Everything else asks a :class:`RunDir` for these paths; it imports no
TensorFlow, so the commands that only read a run folder stay fast.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from tfrs_irns._files import atomic_open
from tfrs_irns.errors import UserError

if TYPE_CHECKING:  # the data layer loads numpy-heavy modules: only when a run is written or read
    from tfrs_irns.config import Config
    from tfrs_irns.data.history import UserHistory
    from tfrs_irns.data.prepare import PreparedData


class RunDir:
    """The folder of one training run (see the module docstring for its layout).

    A run folder is the unit the commands share: ``train`` writes it,
    ``train --resume`` continues it from its backup, ``evaluate`` and
    ``export`` read it back without the data, ``runs`` and ``report`` list and
    describe it. This class is the one place that names its files: paths
    (``config``, ``metrics``, ``weights``, ``snapshot``, ``backup``, ``best``,
    ``logs``, ``model``, ``evaluations``), the state of the run
    (``holds_run``, ``finished``), and the reads and writes of its small files.
    """

    CONFIG = "config.yaml"
    METRICS = "metrics.json"
    WEIGHTS = os.path.join("checkpoints", "weights")
    SNAPSHOT = "vocab"
    MODEL = "saved_model"  # <run>/saved_model/<version>: the run's own SavedModel
    EVALUATIONS = "evaluations"
    LOGS = "logs"
    BACKUP = "backup"
    BEST = "best"  # inside BACKUP: deleted with it

    def __init__(self, path: str) -> None:
        self.path = path

    def __str__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"RunDir({self.path!r})"

    # ------------------------------------------------------------------ paths

    def _join(self, *names: str) -> str:
        return os.path.join(self.path, *names)

    @property
    def config(self) -> str:
        return self._join(self.CONFIG)

    @property
    def metrics(self) -> str:
        return self._join(self.METRICS)

    @property
    def weights(self) -> str:
        """The checkpoint prefix of the trained weights."""
        return self._join(self.WEIGHTS)

    @property
    def snapshot(self) -> str:
        """The data snapshot folder (:mod:`tfrs_irns.data.snapshot`)."""
        return self._join(self.SNAPSHOT)

    @property
    def model(self) -> str:
        """The folder of the run's own SavedModel versions."""
        return self._join(self.MODEL)

    @property
    def evaluations(self) -> str:
        return self._join(self.EVALUATIONS)

    @property
    def logs(self) -> str:
        """TensorBoard's folder."""
        return self._join(self.LOGS)

    @property
    def backup(self) -> str:
        return self._join(self.BACKUP)

    @property
    def backup_checkpoints(self) -> str:
        """Where ``BackupAndRestore`` writes the chief's checkpoint."""
        return self._join(self.BACKUP, "chief")

    @property
    def best(self) -> str:
        """Where early stopping keeps its best epoch."""
        return self._join(self.BACKUP, self.BEST)

    def streaming_cache_root(self) -> str:
        """``data.streaming``'s default cache: ``.tfrs-irns-cache`` beside the run folder (shared by its siblings)."""
        return os.path.join(os.path.dirname(os.path.abspath(self.path)), ".tfrs-irns-cache")

    # ------------------------------------------------------------------ state

    def has_config(self) -> bool:
        return os.path.isfile(self.config)

    def holds_run(self) -> bool:
        """Whether the folder already holds a run (finished or interrupted)."""
        return any(os.path.exists(path) for path in (self.config, self.metrics, self.backup))

    def finished(self) -> bool:
        """Training wrote its metrics (an interrupted run has none)."""
        return os.path.isfile(self.metrics)

    def has_weights(self) -> bool:
        return os.path.isfile(self.weights + ".index")

    def check_is_run(self, why: str = "") -> None:
        """One clear error unless the folder exists and holds a run's config; ``why`` ends the second."""
        if not os.path.isdir(self.path):
            raise UserError(f"{self.path}: run directory not found")
        if not self.has_config():
            raise UserError(f"{self.path}: not a run directory (no {self.CONFIG}){why}")

    def check_weights(self) -> None:
        """One clear error unless this is the folder of a run whose training finished."""
        self.check_is_run()
        if not self.has_weights():
            raise UserError(
                f"{self.path}: no checkpoint at {self.WEIGHTS} (did training finish? an interrupted run continues "
                f"with: tfrs-irns train --resume {self.path})"
            )

    def check_snapshot(self) -> None:
        """One clear error unless the run kept its data snapshot (evaluate and export trust it)."""
        from tfrs_irns.data.snapshot import has_snapshot

        if not has_snapshot(self.snapshot):
            raise UserError(
                f"{self.path}: no {self.SNAPSHOT}/ snapshot of the run's vocabularies (written by an older tfrs-irns); "
                "train it again"
            )

    # ---------------------------------------------------------- reads, writes

    def read_config(self, overrides: Sequence[str] = (), sections: Optional[Sequence[str]] = None) -> Config:
        from tfrs_irns.config import load_config

        return load_config(self.config, overrides, sections, saved=True)

    def start(self, config: Config, data: PreparedData, history: Optional[UserHistory]) -> None:
        """Create the folder of a new run: its config and data snapshot (now, so a resume can check the data)."""
        from tfrs_irns.config import save_config
        from tfrs_irns.data.history import save_history
        from tfrs_irns.data.snapshot import save_snapshot

        os.makedirs(self.path, exist_ok=True)
        save_config(config, self.config)
        save_snapshot(data, self.snapshot)
        if history is not None:  # an export rebuilds the history tower from it, without the data
            save_history(history, self.snapshot)

    def read_metrics(self) -> Optional[dict[str, Any]]:
        """``metrics.json`` (None if the run has none)."""
        if not self.finished():
            return None
        with open(self.metrics, encoding="utf-8") as fh:
            return json.load(fh)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        """``metrics.json``, strict JSON, written atomically."""
        with atomic_open(self.metrics) as fh:
            json.dump(strict_json(metrics), fh, indent=2, allow_nan=False)

    def delete_backup(self) -> None:
        """Remove the backup (once the run's results are written)."""
        shutil.rmtree(self.backup, ignore_errors=True)

    def remove_empty_backup(self, remove_self: bool) -> None:
        """A non-chief worker's cleanup: ``BackupAndRestore`` left the emptied folders of its
        temporary backups; ``remove_self``: the run folder too, when this worker made it."""
        for folder in [self.backup] + ([self.path] if remove_self else []):
            if os.path.isdir(folder) and not os.listdir(folder):
                os.rmdir(folder)

    def write_evaluation(self, record: dict[str, Any], stamp: str) -> str:
        """``evaluations/<stamp>.json`` (a UTC time) for ``record``, never replacing an earlier one; returns its path."""
        os.makedirs(self.evaluations, exist_ok=True)
        for attempt in range(1000):
            path = os.path.join(self.evaluations, f"{stamp}.json" if attempt == 0 else f"{stamp}-{attempt}.json")
            try:
                # "x": never replaces an earlier record, even from a concurrent evaluate.
                with open(path, "x", encoding="utf-8") as fh:
                    json.dump(strict_json(record), fh, indent=2, allow_nan=False)
                return path
            except FileExistsError:
                continue
        raise UserError(f"{self.evaluations}: cannot name a new evaluation record")


def default_run_dir(name: str) -> str:
    """``runs/<name>-<local time>``: where a run goes when no folder is named."""
    return os.path.join("runs", f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")


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
