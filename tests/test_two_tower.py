"""TwoTowerModel: the loss it hands the task, the L2 penalty, embedding dumps."""

import numpy as np
import tensorflow as tf

import tfrs_irns  # noqa: F401
from tfrs_irns.layers.towers import CandidateTower, QueryTower
from tfrs_irns.models.two_tower import TwoTowerModel


class RecordingTask(tf.keras.layers.Layer):
    """Returns sum(q·c) and remembers what it was given."""

    def call(self, query, candidates, candidate_ids=None, query_ids=None, training=False):
        self.seen = (query, candidates, candidate_ids, query_ids)
        return tf.reduce_sum(query * candidates)


def make(l2=0.0):
    q, c = QueryTower(4, 3), CandidateTower(6, 3)
    model = TwoTowerModel(q, c, RecordingTask(), embedding_l2=l2)
    q(tf.constant([0]))
    c(tf.constant([0]))
    return model


def test_task_receives_tower_outputs_and_ids():
    model = make()
    batch = {"user": tf.constant([1, 2, 3]), "item": tf.constant([5, 4, 1])}
    loss = model.compute_loss(batch, training=True)
    qt = model.query_tower.embedding.embeddings.numpy()
    ct = model.candidate_tower.embedding.embeddings.numpy()
    expected = np.sum(qt[[1, 2, 3]] * ct[[5, 4, 1]])
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)
    _, _, cand_ids, query_ids = model.task.seen
    np.testing.assert_array_equal(cand_ids.numpy(), [5, 4, 1])
    np.testing.assert_array_equal(query_ids.numpy(), [1, 2, 3])


def test_embedding_l2_penalises_the_rows_in_the_batch():
    model = make(l2=0.5)
    batch = {"user": tf.constant([1, 1]), "item": tf.constant([2, 3])}
    qt = model.query_tower.embedding.embeddings.numpy()
    ct = model.candidate_tower.embedding.embeddings.numpy()
    base = np.sum(qt[[1, 1]] * ct[[2, 3]])
    penalty = np.mean(np.sum(qt[[1, 1]] ** 2, 1)) + np.mean(np.sum(ct[[2, 3]] ** 2, 1))
    np.testing.assert_allclose(model.compute_loss(batch).numpy(), base + 0.5 * penalty, rtol=1e-5)


def test_embedding_dumps_cover_every_index_in_chunks():
    model = make()
    users = model.user_embeddings(batch_size=3)
    items = model.item_embeddings(batch_size=4)
    np.testing.assert_allclose(users, model.query_tower.embedding.embeddings.numpy(), rtol=1e-6)
    np.testing.assert_allclose(items, model.candidate_tower.embedding.embeddings.numpy(), rtol=1e-6)


def test_fit_runs_and_lowers_the_loss():
    model = make()
    model.task = RecordingTask()
    model.compile(optimizer=tf.keras.optimizers.SGD(0.1))
    ds = tf.data.Dataset.from_tensors({"user": tf.constant([1, 2]), "item": tf.constant([3, 4])}).repeat(5)
    history = model.fit(ds, epochs=2, verbose=0)
    # Minimising sum(q·c) drives it down from the first epoch to the second.
    assert history.history["loss"][1] < history.history["loss"][0]


def test_oov_user_becomes_the_mean_user():
    model = make()
    model.set_oov_user_to_mean()
    table = model.query_tower.embedding.embeddings.numpy()
    np.testing.assert_allclose(table[0], table[1:].mean(axis=0), rtol=1e-6)


def test_a_users_own_tower_works_with_embedding_l2():
    """A plain Keras layer as a tower: no penalty from it, no attribute errors."""
    own = tf.keras.layers.Embedding(4, 3)
    own.build((None,))
    c = CandidateTower(6, 3)
    c(tf.constant([0]))
    model = TwoTowerModel(own, c, RecordingTask(), embedding_l2=0.5)
    batch = {"user": tf.constant([1, 2]), "item": tf.constant([2, 3])}
    qt, ct = own.embeddings.numpy(), c.embedding.embeddings.numpy()
    base = np.sum(qt[[1, 2]] * ct[[2, 3]])
    expected = base + 0.5 * np.mean(np.sum(ct[[2, 3]] ** 2, 1))  # only the candidate tower offers a penalty
    np.testing.assert_allclose(model.compute_loss(batch).numpy(), expected, rtol=1e-5)
    model.set_oov_user_to_mean()  # a tower without set_oov_to_mean is left as it is
    np.testing.assert_array_equal(own.embeddings.numpy(), qt)
