"""Runs: a config turned into objects, trained with ``model.fit``, written to a folder, exported.

The orchestration layer, above every library layer: :mod:`~tfrs_irns.runs.build`
is the one place that reads a config to build objects,
:mod:`~tfrs_irns.runs.training` trains (prepare, build, fit, finish) and restores runs,
:mod:`~tfrs_irns.runs.rundir` owns the run folder's layout, and
:mod:`~tfrs_irns.runs.exporting` publishes runs. The names below load lazily
(PEP 562): ``tfrs_irns.runs.rundir`` alone does not load TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Run": "tfrs_irns.runs.training",
    "RunDir": "tfrs_irns.runs.rundir",
    "build_model": "tfrs_irns.runs.build",
    "export_run": "tfrs_irns.runs.exporting",
    "irns_task_from_config": "tfrs_irns.runs.build",
    "load_run": "tfrs_irns.runs.training",
    "train": "tfrs_irns.runs.training",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tfrs_irns.runs' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
