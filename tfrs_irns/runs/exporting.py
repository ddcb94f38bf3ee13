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
* ``auto`` (default): publish when nothing is published yet; never when
  the model is identical to the latest version (same weights, vocabularies
  and serving settings: its ``model_fingerprint``), so re-running a command
  adds no version; on the same data (the latest version's data
  fingerprint), when the run's validation metric
  (``train.early_stopping.monitor`` at the kept epoch) is at least the latest
  version's; on other data, when the run scores at least as well as the
  latest version on the same examples (:mod:`tfrs_irns.runs.champion`: this
  run's validation split, and the served version's own when its data can
  still be read). ``export.publish_tolerance`` lets a candidate that far
  below the served one through. A one-line reason is given either way;
  ``tfrs-irns export --run DIR`` publishes regardless.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from typing import Any, Callable, Optional

import numpy as np

from tfrs_irns.errors import UserError
from tfrs_irns.export.embeddings import embeddings_dir
from tfrs_irns.export.saved_model import METADATA_FILE, export_model
from tfrs_irns.export.versions import version_dirs, write_version
from tfrs_irns.runs.build import check_export_extras, export_name
from tfrs_irns.runs.serving_files import serving_extras
from tfrs_irns.runs.rundir import RunDir
from tfrs_irns.runs.training import Exported, Run, run_metrics


def model_fingerprint(run: Run) -> str:
    """A hash of everything a served answer depends on: every weight, the
    vocabularies, the titles and the serving settings (``export.k``,
    ``export.precision``). Equal fingerprints serve identical answers."""
    digest = hashlib.sha256()
    for weight in sorted(run.model.weights, key=lambda w: w.name):
        value = np.ascontiguousarray(weight.numpy())
        digest.update(f"{weight.name}:{value.dtype}:{value.shape}".encode())
        digest.update(value.tobytes())
    for table in (run.catalogue.user_vocab.ids, run.catalogue.item_vocab.ids, run.catalogue.item_titles):
        digest.update("\0".join(str(v) for v in table).encode("utf-8", "surrogatepass"))
        digest.update(b"\1")
    digest.update(f"k={run.config.export.k};precision={run.config.export.precision}".encode())
    return digest.hexdigest()[:16]


def _metadata(run: Run) -> dict[str, Any]:
    metrics = run_metrics(run) or {}
    return {
        "model_fingerprint": model_fingerprint(run),
        "config": run.config.to_dict(),
        "metrics": metrics,
        "run_directory": os.path.abspath(run.directory),
        "data_fingerprint": metrics.get("data_fingerprint") or run.catalogue.fingerprint or None,
        "validation": metrics.get("validation"),
    }


def _export(run: Run, base_dir: str, name: str) -> tuple[str, dict[str, Any]]:
    """The next version of ``<base_dir>/<name>`` with its serving files; returns its folder
    and what the export measured for ``metrics.json`` (``catalogue``, ``ann``)."""
    config = run.config
    check_export_extras(config)  # before a version is published
    path = export_model(
        run.model,
        run.catalogue.user_vocab,
        run.catalogue.item_vocab,
        run.catalogue.item_titles,
        base_dir=base_dir,
        name=name,
        k=config.export.k,
        metadata=_metadata(run),
        precision=config.export.precision,
        **serving_extras(run),  # each user's training items (excluded when served), the most popular items
    )
    from tfrs_irns.runs.serving_files import export_serving_files

    return path, export_serving_files(run, path)  # item embeddings (and an ANN index) beside the version


def export_run(run: Run) -> str:
    """Publish ``run`` as the next version of its export name and record what the
    export measured in its ``metrics.json``; returns the version directory."""
    path, recorded = _export(run, run.config.export.base_dir, export_name(run.config))
    record_export(run, recorded)
    return path


def record_export(run: Run, recorded: dict[str, Any]) -> None:
    """Add what an export measured (``catalogue``, ``ann``) to the run's ``metrics.json``
    (and ``run.metrics``): the one write an export makes in the run folder."""
    if not recorded:
        return
    metrics = dict(run_metrics(run) or {})
    metrics.update(recorded)
    RunDir(run.directory).write_metrics(metrics)
    if run.metrics is not None:
        run.metrics.update(recorded)


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


#: ``compare(latest version dir, its metadata)`` → a :class:`~tfrs_irns.runs.champion.Comparison`.
Compare = Callable[[str, dict[str, Any]], Any]


def publish_decision(
    policy: str,
    candidate: dict[str, Any],
    model_dir: str,
    compare: Optional[Compare] = None,
    tolerance: float = 0.0,
) -> tuple[bool, str]:
    """Whether a model with ``candidate`` metadata should become the next version
    under ``model_dir`` by ``policy`` (``export.publish``), and why, in one line.

    ``compare`` scores the candidate and the latest version on the same
    examples when they were trained on other data (without it, such a
    candidate is not published); ``tolerance`` (``export.publish_tolerance``)
    is how far below the latest version's metric still publishes.
    """
    if policy == "always":
        return True, "export.publish=always"
    if policy == "never":
        return False, "export.publish=never"
    latest, published = latest_metadata(model_dir)
    if latest is None:
        return True, f"nothing published under {model_dir} yet"
    published = published or {}
    mine_fp = candidate.get("model_fingerprint")
    if mine_fp and mine_fp == published.get("model_fingerprint"):
        return False, f"identical to {latest}: same weights, vocabularies and serving settings"
    if published.get("data_fingerprint") != candidate.get("data_fingerprint"):
        if compare is None:
            return False, f"trained on other data than {latest}, and the two models were not compared"
        try:
            result = compare(latest, published)
        except UserError as exc:
            return False, f"trained on other data than {latest}, which could not be scored ({exc})"
        if not result.rows:
            return False, f"trained on other data than {latest}, and this run has no validation split to compare on"
        verdict = result.describe(latest)
        if tolerance:
            verdict += f", tolerance {tolerance:g}"
        return result.better(tolerance), verdict
    mine, theirs = candidate.get("validation"), published.get("validation")
    if not theirs or theirs.get("monitor") is None:
        return True, f"{latest} records no validation metric to beat"
    if not mine or mine.get("monitor") != theirs["monitor"]:
        what = f"no {theirs['monitor']}" if not mine else f"{mine['monitor']}, not {theirs['monitor']}"
        return False, f"this run logged {what}, so it cannot be compared with {latest}"
    if theirs.get("higher_is_better", True):
        better = mine["value"] >= theirs["value"] - tolerance
    else:
        better = mine["value"] <= theirs["value"] + tolerance
    verdict = f"{mine['monitor']} {mine['value']:.4f} vs {theirs['value']:.4f} of {latest} on the same data"
    if tolerance:
        verdict += f", tolerance {tolerance:g}"
    return better, verdict


def _champion_compare(run: Run) -> Compare:
    """The ``compare`` of :func:`publish_decision` for a freshly trained ``run``."""
    from tfrs_irns.runs import champion

    data = run.data
    if data is None:
        raise ValueError("a run is compared with the served version on its data: load it with its data")

    def compare(latest: str, published: dict[str, Any]) -> Any:
        mine = champion.run_side("this run", run.model, data)
        theirs = champion.version_side(latest, latest)
        return champion.compare(mine, data, theirs, published, champion.protocol_of(run.config))

    return compare


def export_trained_run(run: Run) -> Exported:
    """After training: write the run's own SavedModel (``<run>/saved_model/1``), then
    publish it if ``export.publish`` says so. Writes nothing in ``metrics.json``: what
    the export measured is in ``Exported.recorded``, for the caller to record."""
    local, recorded = _export(run, run.directory, RunDir.MODEL)
    model_dir = os.path.join(run.config.export.base_dir, export_name(run.config))
    publish, reason = publish_decision(
        run.config.export.publish, _metadata(run), model_dir,
        compare=_champion_compare(run), tolerance=run.config.export.publish_tolerance,
    )
    if not publish:
        return Exported(local, None, reason, recorded)
    # The published version is the run's SavedModel, byte for byte, and its embeddings folder beside it.
    published = write_version(model_dir, lambda tmp: shutil.copytree(local, tmp))
    if os.path.isdir(embeddings_dir(local)):
        shutil.copytree(embeddings_dir(local), embeddings_dir(published))
    return Exported(local, published, reason, recorded)
