"""Sequence training: windows, the sequence IRNS loss against a numpy oracle, causality."""

import tfrs_irns  # noqa: F401,I001  (first: pins Keras 2 before anything touches tf.keras)

import itertools

import numpy as np
import pytest
import tensorflow as tf

from tfrs_irns.batching.sequence import sequence_pipeline, sequence_windows
from tfrs_irns.errors import DataError
from tfrs_irns.layers.history import HistoryQueryTower
from tfrs_irns.sampling import UniformSampler, UnigramSampler
from tfrs_irns.tasks import IRNSRetrieval
from tfrs_irns.tasks.sequence import sequence_retrieval_loss

N, D, M = 9, 4, 7  # a tiny catalogue: duplicates and accidental hits happen


# ---------------------------------------------------------------- windows


def test_windows_cut_each_timeline_so_every_item_but_the_first_is_a_target_once():
    # user 1: 1 2 3 4 5 6 7; user 2: 8 9; user 3: a single item; user 4 (past num_users): cold history
    offsets = np.array([0, 0, 7, 9, 10, 12])
    items = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 4, 5, 6])
    w = sequence_windows(offsets, items, num_users=4, length=3)
    assert w.users.tolist() == [1, 1, 2]
    assert w.sequence.tolist() == [[4, 5, 6], [1, 2, 3], [0, 0, 8]]
    assert w.targets.tolist() == [[5, 6, 7], [2, 3, 4], [0, 0, 9]]
    assert w.num_targets == 6 + 1
    # A short first window: the target after a padding input is padding too.
    w = sequence_windows(offsets, items, num_users=2, length=4)
    assert w.sequence.tolist() == [[3, 4, 5, 6], [0, 0, 1, 2]] and w.targets.tolist() == [[4, 5, 6, 7], [0, 0, 2, 3]]


def test_pipeline_batches_windows_and_refuses_no_targets():
    offsets, items = np.array([0, 0, 3, 6]), np.array([1, 2, 3, 4, 5, 6])
    pipe = sequence_pipeline(sequence_windows(offsets, items, 3, 2), batch_size=2, seed=1)
    batch = next(iter(pipe.dataset))
    assert batch["sequence"].shape == (2, 2) and batch["targets"].shape == (2, 2)
    with pytest.raises(DataError, match="two training interactions"):
        sequence_pipeline(sequence_windows(np.array([0, 0, 1]), np.array([1]), 2, 2), batch_size=2)


# ---------------------------------------------------------------- the loss against numpy


def oracle(q, table, targets, neg, mode, p, qprob, logq, hits, temperature):
    """Loss and d loss / d q by definition, one row and one column at a time (float64)."""
    q, table = q.astype(np.float64), table.astype(np.float64)
    b, length, _ = q.shape
    rows = [(i, t) for i in range(b) for t in range(length)]
    real = [(i, t) for i, t in rows if targets[i, t] > 0]
    big_p = len(real)
    m = len(neg) if mode != "in_batch" else 0
    cols = []
    if mode != "random":
        cols += [("batch", (i, t), targets[i, t]) for i, t in rows if targets[i, t] > 0]  # padding columns masked
    if mode != "in_batch":
        cols += [("sampled", None, j) for j in neg]

    def shift(item):
        if not logq:
            return 0.0
        expected = (big_p * p[item] if mode != "random" else 0.0) + m * qprob[item]
        return np.log(max(expected, 1e-10))

    total, grad = 0.0, np.zeros_like(q)
    for i, t in real:
        pos = targets[i, t]
        qi = q[i, t] / temperature
        label = qi @ table[pos] - shift(pos)
        logits, vectors = [label], [table[pos]]
        for kind, where, item in cols:
            if kind == "batch" and where == (i, t):
                continue  # the label column: counted once, above
            if hits and item == pos:
                continue  # an accidental hit
            logits.append(qi @ table[item] - shift(item))
            vectors.append(table[item])
        logits = np.array(logits)
        top = logits.max()
        lse = top + np.log(np.exp(logits - top).sum())
        total += lse - label
        share = np.exp(logits - lse)
        grad[i, t] = (share @ np.array(vectors) - table[pos]) / temperature
    return total / big_p, grad / big_p


def make_task(mode, logq, hits, temperature, sampler_kind, seed):
    table = tf.keras.layers.Embedding(
        N + 1, D, embeddings_initializer=tf.keras.initializers.RandomNormal(seed=seed)
    )
    table.build((None,))
    counts = np.array([0, 5, 1, 3, 0, 8, 2, 2, 6, 1], np.float64)
    sampler = UniformSampler(N) if sampler_kind == "uniform" else UnigramSampler(counts, alpha=0.75)
    task = IRNSRetrieval(
        table, N, mode=mode, num_negatives=M, sampler=sampler, item_probabilities=counts / counts.sum(),
        logq=logq, remove_accidental_hits=hits, temperature=temperature, seed=seed,
    )
    return table, task, counts / counts.sum()


CASES = list(itertools.product(["mixed", "in_batch", "random"], [True, False], [True, False]))


@pytest.mark.parametrize("mode,logq,hits", CASES)
def test_loss_and_gradient_match_the_numpy_oracle(mode, logq, hits):
    seed = CASES.index((mode, logq, hits))
    table, task, p = make_task(mode, logq, hits, 0.7, "unigram" if seed % 2 else "uniform", seed)
    rng = np.random.default_rng(seed)
    # 3 sequences of 4: padding at the start, duplicates across positions, one empty sequence.
    targets = np.array([[0, 2, 5, 5], [1, 3, 2, 8], [0, 0, 0, 0]], np.int32)
    q = tf.constant(rng.normal(size=(3, 4, D)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(q)
        loss = sequence_retrieval_loss(task, q, targets, table(tf.constant(targets)), training=False)
    neg = task.sample_negatives(task.step)[0].numpy() if mode != "in_batch" else np.zeros(0, np.int32)
    qprob = task.sampler.probability(tf.range(N + 1)).numpy() if task.sampler is not None else np.zeros(N + 1)
    want, want_grad = oracle(
        q.numpy(), table.embeddings.numpy(), targets, neg, mode, p, qprob, logq, hits, 0.7
    )
    np.testing.assert_allclose(float(loss), want, rtol=1e-5, atol=1e-6)
    grad = tape.gradient(loss, q).numpy()
    np.testing.assert_allclose(grad, want_grad, rtol=1e-4, atol=1e-6)
    assert not grad[2].any() and not grad[0, 0].any()  # padding rows: no gradient


def test_a_training_call_advances_the_step_and_draws_anew():
    table, task, _ = make_task("mixed", True, True, 1.0, "uniform", 3)
    targets = tf.constant([[1, 2, 3]])
    q = tf.random.normal([1, 3, D])
    before = task.sample_negatives(task.step)[0].numpy()
    sequence_retrieval_loss(task, q, targets, table(targets), training=True)
    assert int(task.step.numpy()) == 1
    assert not np.array_equal(before, task.sample_negatives(task.step)[0].numpy())


def test_full_mode_is_refused():
    table, _, p = make_task("mixed", True, True, 1.0, "uniform", 0)
    task = IRNSRetrieval(table, N, mode="full")
    with pytest.raises(ValueError, match="sequence training needs"):
        sequence_retrieval_loss(task, tf.zeros([1, 2, D]), tf.constant([[1, 2]]), tf.zeros([1, 2, D]))


# ---------------------------------------------------------------- causality


def make_tower(length=5, use_id=False):
    offsets = np.array([0, 0, 6, 8])
    items = np.array([1, 2, 3, 4, 5, 6, 7, 8])
    return HistoryQueryTower(
        3, N, 8, length=length, pooling="transformer", use_id=use_id, num_blocks=2, num_heads=2, dropout=0.0,
        history_offsets=offsets, history_items=items,
    )


@pytest.mark.parametrize("use_id", [False, True])
def test_no_position_sees_a_later_one(use_id):
    tower = make_tower(use_id=use_id)
    sequence = np.array([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]], np.int32)
    users = tf.constant([1, 2])
    base = tower.sequence_queries(users, sequence).numpy()
    for later in range(1, 5):
        changed = sequence.copy()
        changed[:, later] = (changed[:, later] % N) + 1  # another item at `later`
        out = tower.sequence_queries(users, changed).numpy()
        np.testing.assert_allclose(out[:, :later], base[:, :later], atol=1e-6)
        assert np.abs(out[1, later:] - base[1, later:]).max() > 1e-4  # ... but it does see itself and the past


def test_the_last_position_is_the_tower_query_of_that_window():
    tower = make_tower(length=5)
    # User 1's evaluation window is its last 5 items: 2..6.
    seq = tower.sequence_queries(tf.constant([1]), tf.constant([[2, 3, 4, 5, 6]]))
    np.testing.assert_allclose(seq[:, -1].numpy(), tower(tf.constant([1])).numpy(), atol=1e-5)
