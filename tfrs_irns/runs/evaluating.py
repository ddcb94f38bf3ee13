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
import json
import os
from typing import Any, Sequence

from tfrs_irns.data.snapshot import saved_fingerprint
from tfrs_irns.runs.training import VOCAB, Run, evaluate_run, load_run, strict_json

EVALUATIONS = "evaluations"


def evaluate_saved_run(
    run_dir: str, overrides: Sequence[str] = (), allow_changed_data: bool = False
) -> tuple[Run, dict[str, Any], str]:
    """Evaluate the run in ``run_dir`` on its test split with ``eval.*``
    ``overrides``; returns ``(run, metrics, path of the record written)``."""
    run = load_run(run_dir, overrides, sections=("eval",), allow_changed_data=allow_changed_data)
    metrics = evaluate_run(run.config, run.data, run.model)
    e = run.config.eval
    now = datetime.datetime.now(datetime.timezone.utc)
    record = {
        "created": now.isoformat(timespec="seconds"),
        "overrides": list(overrides),
        "protocol": {"split": "test", "ks": e.ks, "exclude_seen": e.exclude_seen, "chunk_size": e.chunk_size},
        "data_fingerprint": run.data.fingerprint,
        "data_changed": run.data.fingerprint != saved_fingerprint(os.path.join(run_dir, VOCAB)),
        "metrics": metrics,
    }
    folder = os.path.join(run_dir, EVALUATIONS)
    os.makedirs(folder, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%S.%fZ")
    for attempt in range(1000):
        path = os.path.join(folder, f"{stamp}.json" if attempt == 0 else f"{stamp}-{attempt}.json")
        try:
            # "x": never replaces an earlier record, even from a concurrent evaluate.
            with open(path, "x", encoding="utf-8") as fh:
                json.dump(strict_json(record), fh, indent=2, allow_nan=False)
            break
        except FileExistsError:
            continue
    return run, metrics, path
