"""The tower contract (tfrs_irns/layers/contract.py) and the one id-row implementation
(tfrs_irns/layers/id_rows.py): every tower kind against a numpy oracle of the penalty and
the OOV row, what each tower is by type, and what the model and the export do with that."""

import numpy as np
import pytest

import tfrs_irns  # noqa: F401  (Keras 2 before tensorflow)
import tensorflow as tf

from tfrs_irns.export.content import has_content
from tfrs_irns.export.saved_model import HistoryServing, history_serving
from tfrs_irns.layers.contract import (
    CandidateTowerProtocol,
    ContentTowerProtocol,
    HistoryTowerProtocol,
    IdRowsProtocol,
    QueryTowerProtocol,
)
from tfrs_irns.layers.history import HistoryQueryTower
from tfrs_irns.layers.id_rows import clamp_oov, mean_squared_norm, set_oov_row_to_mean
from tfrs_irns.layers.item_content import ContentItemTower
from tfrs_irns.layers.towers import CandidateTower, QueryTower
from tfrs_irns.models.two_tower import TwoTowerModel

V, D = 5, 3
# Two users' timelines (CSR), enough rows for V users.
OFFSETS = np.array([0, 0, 2, 3, 3, 3])
ITEMS = np.array([1, 2, 3])
ID_MASK = np.array([0, 1, 0, 1, 1], np.float32)  # item 2 never trained: not in the OOV mean


def _id_tower():
    return QueryTower(V, D)


def _candidate_tower():
    return CandidateTower(V, D, item_features=np.eye(V, 2))


def _history_tower():
    return HistoryQueryTower(V, 4, D, length=2, use_id=True, history_offsets=OFFSETS, history_items=ITEMS)


def _content_tower():
    return ContentItemTower(V, D, use_id=True, id_mask=ID_MASK)


# (build, the id table of the built tower, the trained-row weights of its OOV mean)
KINDS = {
    "query": (_id_tower, lambda t: t.embedding, None),
    "candidate": (_candidate_tower, lambda t: t.embedding, None),
    "history": (_history_tower, lambda t: t.head.embedding, None),
    "content": (_content_tower, lambda t: t.embedding, ID_MASK),
}


def _built(kind):
    build, table, trained = KINDS[kind]
    tower = build()
    tower(tf.constant([1, 2]))
    # Distinct random rows, so a wrong row or a wrong mean shows.
    rows = np.random.default_rng(len(kind)).normal(size=(V, D)).astype(np.float32)
    table(tower).embeddings.assign(rows)
    return tower, rows, trained


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_penalty_is_the_mean_squared_norm_of_the_rows_used(kind):
    tower, rows, trained = _built(kind)
    indices = np.array([1, 3, 3, 4])
    used = rows[indices] * (1.0 if trained is None else trained[indices, None])  # content: the masked id part
    want = np.mean(np.sum(used**2, axis=1))
    np.testing.assert_allclose(tower.embedding_penalty(tf.constant(indices)).numpy(), want, rtol=1e-6)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_oov_row_becomes_the_mean_of_the_trained_rows_and_nothing_else_moves(kind):
    tower, rows, trained = _built(kind)
    tower.set_oov_to_mean()
    got = KINDS[kind][1](tower).embeddings.numpy()
    want_oov = rows[1:].mean(axis=0) if trained is None else (rows * trained[:, None]).sum(0) / trained.sum()
    np.testing.assert_allclose(got[0], want_oov, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(got[1:], rows[1:])


@pytest.mark.parametrize("kind", ["query", "candidate", "history"])
def test_an_index_past_the_table_is_penalised_as_the_oov_row(kind):
    tower, rows, _ = _built(kind)
    np.testing.assert_allclose(
        tower.embedding_penalty(tf.constant([V, V + 7])).numpy(), np.sum(rows[0] ** 2), rtol=1e-6
    )


def test_a_tower_without_id_rows_has_no_penalty_and_nothing_to_set():
    tower = HistoryQueryTower(V, 4, D, length=2, history_offsets=OFFSETS, history_items=ITEMS)
    tower(tf.constant([1]))
    before = [w.copy() for w in tower.get_weights()]
    assert float(tower.embedding_penalty(tf.constant([1, 2]))) == 0.0
    tower.set_oov_to_mean()
    for a, b in zip(before, tower.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_helpers_by_hand():
    np.testing.assert_array_equal(clamp_oov(tf.constant([0, 2, 3, 9]), 3).numpy(), [0, 2, 0, 0])
    # rows (3, 4) and (0, 0): norms² 25 and 0, mean 12.5; bfloat16 rows give a float32 answer.
    penalty = mean_squared_norm(tf.constant([[3.0, 4.0], [0.0, 0.0]], tf.bfloat16))
    assert penalty.dtype == tf.float32 and float(penalty) == 12.5
    table = tf.Variable([[9.0, 9.0], [1.0, 2.0], [3.0, 6.0], [100.0, 100.0]])
    set_oov_row_to_mean(table, tf.constant([0.0, 1.0, 1.0, 0.0]))
    np.testing.assert_array_equal(table.numpy()[0], [2.0, 4.0])
    set_oov_row_to_mean(table)
    np.testing.assert_allclose(table.numpy()[0], [104 / 3, 108 / 3], rtol=1e-6)
    one = tf.Variable([[5.0, 5.0]])
    set_oov_row_to_mean(one)  # nothing to average: left as it is
    np.testing.assert_array_equal(one.numpy(), [[5.0, 5.0]])


def test_each_tower_is_what_it_offers():
    query, candidate, history, content = _id_tower(), _candidate_tower(), _history_tower(), _content_tower()
    feature = {"name": "genres", "kind": "categorical", "vocabulary": ["a"], "length": 2}
    with_features = ContentItemTower(V, D, features=[feature])
    for tower in (query, candidate, history, content):
        assert isinstance(tower, IdRowsProtocol) and isinstance(tower, QueryTowerProtocol)
    for tower in (query, candidate, content):
        assert isinstance(tower, CandidateTowerProtocol) and not isinstance(tower, HistoryTowerProtocol)
    assert candidate.is_table_lookup and not CandidateTower(V, D, hidden=[4]).is_table_lookup
    assert not content.is_table_lookup  # it pools features: worth encoding each distinct item once
    assert isinstance(history, HistoryTowerProtocol) and not isinstance(history, CandidateTowerProtocol)
    assert isinstance(with_features, ContentTowerProtocol) and has_content(with_features)
    assert not has_content(content)  # id rows only: nothing to serve from raw strings
    assert not has_content(candidate)
    plain = tf.keras.layers.Embedding(V, D)
    assert not isinstance(plain, IdRowsProtocol) and not isinstance(plain, HistoryTowerProtocol)


def test_the_export_takes_a_history_tower_by_type_as_a_named_structure():
    tower = _history_tower()
    tower(tf.constant([1]))
    served = history_serving(tower)
    assert isinstance(served, HistoryServing)
    assert served.head is tower.head and served.length == 2
    np.testing.assert_array_equal(served.item_embeddings, tower.item_history_embeddings())
    assert history_serving(_id_tower()) is None and history_serving(None) is None


def test_sequence_training_refuses_a_query_tower_without_a_history():
    model = TwoTowerModel(_id_tower(), _candidate_tower(), tf.keras.layers.Layer())
    batch = {"user": tf.constant([1]), "sequence": tf.constant([[1, 2]]), "targets": tf.constant([[2, 3]])}
    with pytest.raises(TypeError, match="sequence training needs a history query tower, got QueryTower"):
        model.compute_loss(batch)
