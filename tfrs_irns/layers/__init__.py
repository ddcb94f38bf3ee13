"""Keras layers: the two towers."""

from tfrs_irns.layers.towers import CandidateTower, QueryTower

__all__ = ["CandidateTower", "QueryTower"]
