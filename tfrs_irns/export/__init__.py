"""Export trained models as versioned SavedModels for TF Serving, and query them.

See :mod:`tfrs_irns.export.saved_model` for the layout and signatures and
``docs/serving.md`` for serving with TF Serving.
"""

from tfrs_irns.export.recommend import load_export, recommend, resolve_version_dir
from tfrs_irns.export.saved_model import RetrievalModule, export_embeddings, export_model, export_run

__all__ = [
    "RetrievalModule",
    "export_embeddings",
    "export_model",
    "export_run",
    "load_export",
    "recommend",
    "resolve_version_dir",
]
