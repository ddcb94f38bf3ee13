"""Publish a finished run as the next SavedModel version of its export name — when it deserves it.

:mod:`tfrs_irns.export` knows SavedModels and version folders; this module
knows runs: which config keys name the export, what metadata goes with it,
and whether a run should replace what is being served.

TF Serving (and ``tfrs-irns recommend``) serve the highest version, so
publishing is a decision, as TFX's Evaluator + Pusher make it. Training
always writes its SavedModel into the run folder (``<run>/saved_model/1``);
``export.publish`` decides whether it also becomes the next version under
``<export.base_dir>/<name>/``:

* ``always``: publish; ``never``: do not;
* ``auto`` (default): publish when nothing is published yet, when the data
  differs from the latest version's (its data fingerprint), or when the
  run's validation metric (``train.early_stopping.monitor`` at the kept
  epoch) is at least the latest version's on the same data. A one-line
  reason is given either way; ``tfrs-irns export --run DIR`` publishes
  regardless.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any, Optional

from tfrs_irns.export.embeddings import embeddings_dir
from tfrs_irns.export.saved_model import METADATA_FILE, export_model
from tfrs_irns.export.versions import version_dirs, write_version
from tfrs_irns.runs.build import check_export_extras, export_name
from tfrs_irns.runs.serving_files import serving_extras
from tfrs_irns.runs.training import Run, run_metrics

RUN_MODEL = "saved_model"  # <run>/saved_model/<version>: the run's own SavedModel


def _metadata(run: Run) -> dict[str, Any]:
    metrics = run_metrics(run) or {}
    return {
        "config": run.config.to_dict(),
        "metrics": metrics,
        "run_directory": os.path.abspath(run.directory),
        "data_fingerprint": metrics.get("data_fingerprint") or getattr(run.data, "fingerprint", "") or None,
        "validation": metrics.get("validation"),
    }


def _export(run: Run, base_dir: str, name: str) -> str:
    config = run.config
    check_export_extras(config)  # before a version is published
    path = export_model(
        run.model,
        run.data.user_vocab,
        run.data.item_vocab,
        run.data.item_titles,
        base_dir=base_dir,
        name=name,
        k=config.export.k,
        metadata=_metadata(run),
        precision=config.export.precision,
        **serving_extras(run),  # each user's training items (excluded when served), the most popular items
    )
    from tfrs_irns.runs.serving_files import export_serving_files

    export_serving_files(run, path)  # item embeddings (and an ANN index) beside the version
    return path


def export_run(run: Run) -> str:
    """Publish ``run`` as the next version of its export name; returns the version directory."""
    return _export(run, run.config.export.base_dir, export_name(run.config))


def latest_metadata(model_dir: str) -> tuple[Optional[str], Optional[dict[str, Any]]]:
    """The highest published version under ``model_dir`` and its metadata (None, None if none)."""
    versions = version_dirs(model_dir) if os.path.isdir(model_dir) else {}
    if not versions:
        return None, None
    latest = versions[max(versions)]
    try:
        with open(os.path.join(latest, METADATA_FILE), encoding="utf-8") as fh:
            return latest, json.load(fh)
    except (OSError, ValueError):
        return latest, {}


def publish_decision(policy: str, candidate: dict[str, Any], model_dir: str) -> tuple[bool, str]:
    """Whether a model with ``candidate`` metadata should become the next version
    under ``model_dir`` by ``policy`` (``export.publish``), and why, in words."""
    if policy == "always":
        return True, "export.publish=always"
    if policy == "never":
        return False, "export.publish=never"
    latest, published = latest_metadata(model_dir)
    if latest is None:
        return True, f"nothing published under {model_dir} yet"
    published = published or {}
    if published.get("data_fingerprint") != candidate.get("data_fingerprint"):
        return True, f"trained on other data than {latest}"
    mine, theirs = candidate.get("validation"), published.get("validation")
    if not theirs or theirs.get("monitor") is None:
        return True, f"{latest} records no validation metric to beat"
    if not mine or mine.get("monitor") != theirs["monitor"]:
        what = f"no {theirs['monitor']}" if not mine else f"{mine['monitor']}, not {theirs['monitor']}"
        return False, f"this run logged {what}, so it cannot be compared with {latest}"
    better = mine["value"] >= theirs["value"] if theirs.get("higher_is_better", True) else mine["value"] <= theirs["value"]
    verdict = f"{mine['monitor']} {mine['value']:.4f} vs {theirs['value']:.4f} of {latest} on the same data"
    return better, verdict


def export_trained_run(run: Run) -> tuple[str, Optional[str], str]:
    """After training: write the run's own SavedModel, then publish it if
    ``export.publish`` says so. Returns ``(run model dir, published version
    dir or None, the reason)``."""
    local = _export(run, run.directory, RUN_MODEL)
    model_dir = os.path.join(run.config.export.base_dir, export_name(run.config))
    publish, reason = publish_decision(run.config.export.publish, _metadata(run), model_dir)
    if not publish:
        return local, None, reason
    # The published version is the run's SavedModel, byte for byte, and its embeddings folder beside it.
    published = write_version(model_dir, lambda tmp: shutil.copytree(local, tmp))
    if os.path.isdir(embeddings_dir(local)):
        shutil.copytree(embeddings_dir(local), embeddings_dir(published))
    return local, published, reason
