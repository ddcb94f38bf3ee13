"""Models: the two-tower retrieval model."""

from tfrs_irns.models.two_tower import TwoTowerModel, build_model

__all__ = ["TwoTowerModel", "build_model"]
