"""Pooling padded embeddings: numpy oracles; padding never counts; empty rows pool to zeros."""

import numpy as np
import pytest
import tensorflow as tf

import tfrs_irns  # noqa: F401
from tfrs_irns.layers.pooling import TokenAttentionPooling, MaskedMeanPooling, masked_mean

RNG = np.random.default_rng(0)
VALUES = RNG.normal(size=(3, 4, 5)).astype(np.float32)
VALID = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]], bool)


def test_masked_mean_matches_numpy_and_ignores_padding():
    want = np.stack([VALUES[0, :2].mean(0), VALUES[1].mean(0), np.zeros(5)])
    np.testing.assert_allclose(masked_mean(VALUES, VALID).numpy(), want, rtol=1e-6, atol=1e-6)
    garbage = VALUES.copy()
    garbage[~VALID] = 1e6  # what sits under padding does not matter
    np.testing.assert_allclose(MaskedMeanPooling()(garbage, VALID).numpy(), want, rtol=1e-6, atol=1e-6)


def test_attention_pooling_matches_a_numpy_softmax_over_valid_positions():
    layer = TokenAttentionPooling()
    layer(VALUES, VALID)
    w = RNG.normal(size=5).astype(np.float32)
    layer.query.assign(w)
    out = layer(VALUES, VALID).numpy()
    for b in range(2):
        s = VALUES[b][VALID[b]] @ w
        p = np.exp(s - s.max()) / np.exp(s - s.max()).sum()
        np.testing.assert_allclose(out[b], p @ VALUES[b][VALID[b]], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[2], np.zeros(5))  # no real position: zeros, not NaN


def test_attention_starts_as_the_masked_mean():
    """A zero query weighs every real position alike."""
    np.testing.assert_allclose(
        TokenAttentionPooling()(VALUES, VALID).numpy(), masked_mean(VALUES, VALID).numpy(), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("cls", [MaskedMeanPooling, TokenAttentionPooling])
def test_mixed_bfloat16_computes_in_bfloat16_and_stays_finite(cls):
    out = cls(dtype="mixed_bfloat16")(VALUES, VALID)
    assert out.dtype == tf.bfloat16 and np.isfinite(tf.cast(out, tf.float32).numpy()).all()
