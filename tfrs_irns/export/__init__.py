"""Export trained models as versioned SavedModels for TF Serving, and query them.

See :mod:`tfrs_irns.export.saved_model` for the layout and signatures,
:mod:`tfrs_irns.export.versions` for the atomic version folders and
``docs/serving.md`` for serving with TF Serving. Exporting a training run
(config, metrics) is :func:`tfrs_irns.runs.exporting.export_run`.
"""

from tfrs_irns.export.recommend import load_export, recommend, resolve_version_dir
from tfrs_irns.export.saved_model import RetrievalModule, export_embeddings, export_model

__all__ = [
    "RetrievalModule",
    "export_embeddings",
    "export_model",
    "load_export",
    "recommend",
    "resolve_version_dir",
]
