"""Export trained models as versioned SavedModels for TF Serving, and query them.

See :mod:`tfrs_irns.export.saved_model` for the layout and signatures,
:mod:`tfrs_irns.export.versions` for the atomic version folders and
``docs/serving.md`` for serving with TF Serving. Exporting a training run
(config, metrics) is :func:`tfrs_irns.runs.exporting.export_run`.
"""

from tfrs_irns._lazy import lazy_names

# Public name -> the module that defines it, loaded on first use (PEP 562): the
# package's params module, which the config imports, loads no TensorFlow.
_EXPORTS = {
    "RetrievalModule": "tfrs_irns.export.saved_model",
    "export_embeddings": "tfrs_irns.export.saved_model",
    "export_model": "tfrs_irns.export.saved_model",
    "load_export": "tfrs_irns.export.recommend",
    "recommend": "tfrs_irns.export.recommend",
    "resolve_version_dir": "tfrs_irns.export.recommend",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
