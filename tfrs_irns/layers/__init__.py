"""Keras layers: the two towers, and the activity (history) user tower."""

from tfrs_irns._lazy import lazy_names

# Loaded on first use (PEP 562): the package's params module, which the config imports, loads no TensorFlow.
__getattr__, __dir__, __all__ = lazy_names(__name__, """
    towers: CandidateTower QueryTower
    history: HistoryQueryTower
""")
