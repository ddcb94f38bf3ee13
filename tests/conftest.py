"""Shared test settings."""

from dataclasses import dataclass
from typing import Optional

import numpy as np
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


@dataclass
class Split:  # stand-in for tfrs_irns.data.prepare.EncodedSplit
    user: np.ndarray
    item: np.ndarray
    timestamp: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.user)


@dataclass
class Data:  # stand-in for tfrs_irns.data.prepare.PreparedData
    train: Split
    validation: Split
    test: Split
    num_users: int
    num_items: int
    item_counts: np.ndarray


def split(users, items):
    return Split(np.asarray(users, np.int32), np.asarray(items, np.int32), np.zeros(len(users), np.int64))
