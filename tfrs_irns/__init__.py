"""tfrs_irns: two-tower retrieval with In-batch Random Negative Sampling.

Importing the package pins Keras 2 (``tf-keras``), which TFRS 0.7.7 needs;
see :mod:`tfrs_irns._keras`. The names below are the public API, in the order
data flows through them. They load lazily (PEP 562), so ``import
tfrs_irns.tasks`` pays only for the task layer and the layers below it, and
``import tfrs_irns.config`` does not load TensorFlow at all.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

from tfrs_irns._version import __version__

# TensorFlow reads this when `tf.keras` is first touched, so setting it here,
# before any submodule imports TensorFlow, pins Keras 2 whichever module is
# imported first. If TensorFlow is already loaded, check it is not too late.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
if "tensorflow" in sys.modules:
    from tfrs_irns import _keras  # noqa: F401

# Public name -> the module that defines it.
_EXPORTS = {
    "Config": "tfrs_irns.config",
    "load_config": "tfrs_irns.config",
    "Catalogue": "tfrs_irns.data.prepare",
    "PreparedData": "tfrs_irns.data.prepare",
    "prepare_data": "tfrs_irns.data.prepare",
    "TrainPipeline": "tfrs_irns.batching.pipeline",
    "GCBSCallback": "tfrs_irns.batching.gcbs_callback",
    "UniformSampler": "tfrs_irns.sampling.samplers",
    "UnigramSampler": "tfrs_irns.sampling.samplers",
    "IRNSRetrieval": "tfrs_irns.tasks.irns",
    "CandidateTower": "tfrs_irns.layers.towers",
    "QueryTower": "tfrs_irns.layers.towers",
    "HistoryQueryTower": "tfrs_irns.layers.history",
    "TwoTowerModel": "tfrs_irns.models.two_tower",
    "build_model": "tfrs_irns.runs.build",
    "evaluate_model": "tfrs_irns.evaluation.evaluate",
    "popular_baseline": "tfrs_irns.evaluation.baselines",
    "EpochMetrics": "tfrs_irns.evaluation.validation",
    "export_model": "tfrs_irns.export.saved_model",
    "recommend": "tfrs_irns.export.recommend",
    "export_run": "tfrs_irns.runs.exporting",
    "load_run": "tfrs_irns.runs.training",
    "RunDir": "tfrs_irns.runs.rundir",
    "train": "tfrs_irns.runs.training",
}

__all__ = list(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tfrs_irns' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
