"""Shared test settings."""

import pytest

import tfrs_irns  # noqa: F401  (pins Keras 2 before any test touches tf.keras)

# A synthetic dataset small enough to train in seconds, with the quickstart's structure.
TINY_OVERRIDES = [
    "data.synthetic.num_users=200",
    "data.synthetic.num_items=400",
    "data.synthetic.num_interactions=6000",
    "data.synthetic.num_clusters=4",
    "train.batch_size=128",
    "negatives.num_negatives=200",
    "export.enabled=false",
]


@pytest.fixture
def tiny_overrides():
    return list(TINY_OVERRIDES)
