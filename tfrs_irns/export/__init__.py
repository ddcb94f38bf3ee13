"""Export trained models as versioned SavedModels for TF Serving, and query them.

See :mod:`tfrs_irns.export.saved_model` for the layout and signatures,
:mod:`tfrs_irns.export.versions` for the atomic version folders and
``docs/serving.md`` for serving with TF Serving. Exporting a training run
(config, metrics) is :func:`tfrs_irns.runs.exporting.export_run`.
"""

from tfrs_irns._lazy import lazy_names

# Loaded on first use (PEP 562): the package's params module, which the config imports, loads no TensorFlow.
__getattr__, __dir__, __all__ = lazy_names(__name__, """
    saved_model: RetrievalModule export_embeddings export_model
    recommend: load_export recommend resolve_version_dir
""")
