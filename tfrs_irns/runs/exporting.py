"""Publish a finished run as the next SavedModel version of its export name.

:mod:`tfrs_irns.export` knows SavedModels and version folders; this module
knows runs: which config keys name the export and what metadata goes with it.
"""

from __future__ import annotations

import json
import os

from tfrs_irns.export.saved_model import export_model
from tfrs_irns.runs.build import check_export_extras, export_name
from tfrs_irns.runs.training import Run


def export_run(run: Run) -> str:
    """Export a training ``Run`` with its ``export.*`` config, metrics and vocabularies."""
    config = run.config
    check_export_extras(config)  # before a version is published
    metrics = run.metrics
    metrics_path = os.path.join(run.directory, "metrics.json")
    if metrics is None and os.path.isfile(metrics_path):
        with open(metrics_path, encoding="utf-8") as fh:
            metrics = json.load(fh)
    path = export_model(
        run.model,
        run.data.user_vocab,
        run.data.item_vocab,
        run.data.item_titles,
        base_dir=config.export.base_dir,
        name=export_name(config),
        k=config.export.k,
        metadata={"config": config.to_dict(), "metrics": metrics, "run_directory": os.path.abspath(run.directory)},
        precision=config.export.precision,
    )
    from tfrs_irns.runs.serving_files import export_serving_files

    export_serving_files(run, path)  # item embeddings (and an ANN index) beside the version
    return path
