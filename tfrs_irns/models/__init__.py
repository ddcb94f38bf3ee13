"""Models: the two-tower retrieval model."""

from tfrs_irns.models.two_tower import TwoTowerModel

__all__ = ["TwoTowerModel"]
