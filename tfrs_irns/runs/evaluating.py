"""Re-evaluating a finished run, and the record each evaluation leaves.

Training's ``metrics.json`` describes what training did, under the
``config.yaml`` beside it; an evaluation under other settings (say
``--set eval.exclude_seen=true``) must not rewrite it, or the two files stop
describing the same thing. Each ``tfrs-irns evaluate`` instead adds
``<run>/evaluations/<UTC time>.json``: its overrides, the protocol it used,
whether the data still matched the run's fingerprint, and its metrics.
"""

from __future__ import annotations

import datetime
from typing import Any, Sequence

from tfrs_irns.data.snapshot import saved_fingerprint
from tfrs_irns.runs.rundir import RunDir
from tfrs_irns.runs.training import Run, evaluate_run, load_run
from tfrs_irns.runs.wording import config_words


@config_words()
def evaluate_saved_run(
    run_dir: str, overrides: Sequence[str] = (), allow_changed_data: bool = False
) -> tuple[Run, dict[str, Any], str]:
    """Evaluate the run in ``run_dir`` on its test split with ``eval.*``
    ``overrides``; returns ``(run, metrics, path of the record written)``."""
    run = load_run(run_dir, overrides, sections=("eval",), allow_changed_data=allow_changed_data)
    assert run.data is not None  # loaded with its data
    metrics = evaluate_run(run.config, run.data, run.model)
    e = run.config.eval
    now = datetime.datetime.now(datetime.timezone.utc)
    record = {
        "created": now.isoformat(timespec="seconds"),
        "overrides": list(overrides),
        "protocol": {"split": "test", "ks": e.ks, "exclude_seen": e.exclude_seen, "chunk_size": e.chunk_size},
        "data_fingerprint": run.data.fingerprint,
        "data_changed": run.data.fingerprint != saved_fingerprint(RunDir(run_dir).snapshot),
        "metrics": metrics,
    }
    return run, metrics, RunDir(run_dir).write_evaluation(record, now.strftime("%Y%m%dT%H%M%S.%fZ"))
