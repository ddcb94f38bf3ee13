"""Keras layers: the two towers, and the activity (history) user tower."""

from tfrs_irns._lazy import lazy_names

# Public name -> the module that defines it, loaded on first use (PEP 562): the
# package's params module, which the config imports, loads no TensorFlow.
_EXPORTS = {
    "CandidateTower": "tfrs_irns.layers.towers",
    "HistoryQueryTower": "tfrs_irns.layers.history",
    "QueryTower": "tfrs_irns.layers.towers",
}

__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
