"""Runs: a config turned into objects, trained with ``model.fit``, written to a folder, exported.

The orchestration layer, above every library layer: :mod:`~tfrs_irns.runs.build`
is the one place that reads a config to build objects,
:mod:`~tfrs_irns.runs.training` trains and restores runs, and
:mod:`~tfrs_irns.runs.exporting` publishes them.
"""

from tfrs_irns.runs.build import build_model, irns_task_from_config
from tfrs_irns.runs.exporting import export_run
from tfrs_irns.runs.training import Run, load_run, train

__all__ = ["Run", "build_model", "export_run", "irns_task_from_config", "load_run", "train"]
