"""Towers: shapes, features, normalisation, config round trip."""

import numpy as np
import tensorflow as tf

import tfrs_irns  # noqa: F401
from tfrs_irns.layers.towers import CandidateTower, QueryTower


def test_query_tower_is_an_embedding_lookup():
    tower = QueryTower(5, 3)
    out = tower(tf.constant([0, 4, 4]))
    table = tower.embedding.embeddings.numpy()
    np.testing.assert_allclose(out.numpy(), table[[0, 4, 4]])


def test_mlp_and_normalize():
    tower = QueryTower(5, 4, hidden=[8], normalize=True)
    out = tower(tf.constant([1, 2])).numpy()
    assert out.shape == (2, 4)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


def test_candidate_features_are_added_to_the_id_embedding():
    features = np.array([[0, 0], [1, 0], [0, 1]], np.float32)
    tower = CandidateTower(3, 2, item_features=features)
    out = tower(tf.constant([0, 1, 2])).numpy()
    ids = tower.embedding.embeddings.numpy()
    proj = tower.feature_projection.kernel.numpy()
    np.testing.assert_allclose(out, ids + features @ proj, rtol=1e-6)


def test_get_config_round_trip():
    tower = CandidateTower(7, 4, hidden=[6], normalize=True, item_features=np.ones((7, 3)))
    tower(tf.constant([1]))
    clone = CandidateTower.from_config(tower.get_config())
    clone(tf.constant([1]))
    clone.set_weights(tower.get_weights())
    np.testing.assert_allclose(clone(tf.constant([1, 2, 6])), tower(tf.constant([1, 2, 6])), rtol=1e-6)
    assert clone.get_config()["num_features"] == 3


def test_feature_rows_must_match_vocab():
    import pytest

    with pytest.raises(ValueError, match="item_features has 2 rows, expected vocab_size=3"):
        CandidateTower(3, 2, item_features=np.ones((2, 1)))


def test_keras_serialize_round_trip_by_registered_name():
    tower = QueryTower(6, 3, hidden=[4], name="query_tower")
    tower(tf.constant([1]))
    blob = tf.keras.layers.serialize(tower)
    assert blob["registered_name"] == "tfrs_irns>QueryTower"
    clone = tf.keras.layers.deserialize(blob)
    assert isinstance(clone, QueryTower) and clone.name == "query_tower"
    clone(tf.constant([1]))
    clone.set_weights(tower.get_weights())
    np.testing.assert_array_equal(clone(tf.constant([0, 3, 5])).numpy(), tower(tf.constant([0, 3, 5])).numpy())


def test_embedding_penalty_is_mean_squared_norm_of_the_rows_used():
    tower = QueryTower(4, 2)
    tower(tf.constant([0]))
    table = np.array([[9, 9], [1, 2], [3, 0], [0, 1]], np.float32)
    tower.embedding.embeddings.assign(table)
    # rows 1, 1, 2: (5 + 5 + 9) / 3, by hand
    np.testing.assert_allclose(tower.embedding_penalty(tf.constant([1, 1, 2])).numpy(), 19 / 3, rtol=1e-6)


def test_set_oov_to_mean_touches_row_zero_only():
    tower = QueryTower(4, 2)
    tower(tf.constant([0]))
    table = np.array([[9, 9], [1, 2], [3, 0], [2, 1]], np.float32)
    tower.embedding.embeddings.assign(table)
    tower.set_oov_to_mean()
    np.testing.assert_allclose(tower.embedding.embeddings.numpy(), [[2, 1], [1, 2], [3, 0], [2, 1]])
