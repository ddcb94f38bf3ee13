"""Pooling padded embeddings: numpy oracles; padding never counts; empty rows pool to zeros;
the registry maps each family's names to its own maths and round-trips through Keras config."""

import numpy as np
import pytest
import tensorflow as tf

import tfrs_irns  # noqa: F401
from tfrs_irns.layers.pooling import (
    HISTORY,
    TEXT,
    GRUPooling,
    MaskedMeanPooling,
    PoolingOptions,
    ScaledAttentionPooling,
    TokenAttentionPooling,
    TransformerPooling,
    make_pooling,
    masked_mean,
    pooling_names,
)

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


# --------------------------------------------------------------------------- registry

OPTIONS = PoolingOptions(units=5, length=4, num_blocks=1, num_heads=1, dropout=0.0)
CLASSES = {
    (TEXT, "mean"): MaskedMeanPooling,
    (TEXT, "attention"): TokenAttentionPooling,
    (HISTORY, "mean"): MaskedMeanPooling,
    (HISTORY, "attention"): ScaledAttentionPooling,
    (HISTORY, "gru"): GRUPooling,
    (HISTORY, "transformer"): TransformerPooling,
}


def test_each_family_has_its_names_and_attention_means_two_maths():
    assert pooling_names(TEXT) == ("mean", "attention")
    assert pooling_names(HISTORY) == ("mean", "attention", "gru", "transformer")
    for (family, name), cls in CLASSES.items():
        assert type(make_pooling(family, name, OPTIONS)) is cls
    # One query w, the same values: the text attention scores w·v, the history one w·v/sqrt(d).
    text, history = make_pooling(TEXT, "attention", OPTIONS), make_pooling(HISTORY, "attention", OPTIONS)
    text(VALUES, VALID)
    w = RNG.normal(size=5).astype(np.float32)
    text.query.assign(w)
    history.query_vector.assign(w)
    s = VALUES[1] @ w
    for layer, scale in ((text, 1.0), (history, np.sqrt(5))):
        p = np.exp(s / scale - (s / scale).max())
        np.testing.assert_allclose(layer(VALUES, VALID).numpy()[1], (p / p.sum()) @ VALUES[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("family, name", sorted(CLASSES))
def test_registered_layers_round_trip_their_config_and_weights(family, name):
    layer = make_pooling(family, name, OPTIONS, name="pooling")
    before = layer(VALUES, VALID).numpy()
    clone = tf.keras.layers.deserialize(tf.keras.layers.serialize(layer))
    assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
    clone(VALUES, VALID)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(VALUES, VALID).numpy(), before, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(before[2], np.zeros_like(before[2]))  # no real position: zeros


@pytest.mark.parametrize(
    "args, message",
    [
        ((TEXT, "gru"), "pooling must be one of mean, attention, got 'gru'"),
        ((HISTORY, "max"), "pooling must be one of mean, attention, gru, transformer, got 'max'"),
        (("audio", "mean"), "family must be one of text, history, got 'audio'"),
    ],
)
def test_unknown_names_are_refused_naming_the_choices(args, message):
    with pytest.raises(ValueError, match=message):
        make_pooling(*args)


def test_units_must_be_positive():
    with pytest.raises(ValueError, match="units must be > 0, got 0"):
        make_pooling(HISTORY, "gru", PoolingOptions(units=0))
