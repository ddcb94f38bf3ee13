"""Keras layers: the two towers, and the activity (history) user tower."""

from tfrs_irns.layers.history import HistoryQueryTower
from tfrs_irns.layers.towers import CandidateTower, QueryTower

__all__ = ["CandidateTower", "HistoryQueryTower", "QueryTower"]
