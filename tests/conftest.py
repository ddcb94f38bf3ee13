"""Fixtures shared by the test files (helpers that are not fixtures live in ``helpers.py``)."""

import pytest

import tfrs_irns  # noqa: F401  (pins Keras 2 before any test touches tf.keras)
from helpers import TINY_OVERRIDES


@pytest.fixture
def tiny_overrides():
    return list(TINY_OVERRIDES)
