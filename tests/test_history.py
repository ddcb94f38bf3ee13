"""Activity user towers (tfrs_irns/layers/history.py): pooling and masking
oracles, the in-graph windows against a brute-force timeline, the tower
contract, serialization and argument errors."""

import numpy as np
import pytest

import tfrs_irns  # noqa: F401  (Keras 2 before tensorflow)
import tensorflow as tf

from tfrs_irns.data.history import build_history
from tfrs_irns.layers.history import HistoryHead, HistoryQueryTower
from tfrs_irns.layers.pooling import HISTORY, PoolingOptions, make_pooling
from tfrs_irns.layers.towers import CandidateTower

from helpers import encoded_split

D = 4
RNG = np.random.default_rng(0)
EMB = RNG.normal(size=(3, 5, D)).astype(np.float32)
# Left-padded windows, as the tower cuts them; row 2 has no history at all.
MASK = np.array([[False, False, True, True, True], [True, True, True, True, True], [False] * 5])


def test_mean_pooling_is_the_mean_of_the_unmasked_rows():
    out = make_pooling(HISTORY, "mean", PoolingOptions(units=D))(tf.constant(EMB), tf.constant(MASK)).numpy()
    np.testing.assert_allclose(out[0], EMB[0, 2:].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(out[1], EMB[1].mean(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(out[2], np.zeros(D))  # no history: zeros


def test_attention_pooling_matches_numpy_softmax_over_unmasked_rows():
    layer = make_pooling(HISTORY, "attention", PoolingOptions(units=D))
    out = layer(tf.constant(EMB), tf.constant(MASK)).numpy()
    w = layer.query_vector.numpy()
    for row in range(2):
        e = EMB[row][MASK[row]]
        logits = e @ w / np.sqrt(D)
        alpha = np.exp(logits - logits.max())
        np.testing.assert_allclose(out[row], (alpha / alpha.sum()) @ e, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out[2], np.zeros(D))
    # Padding rows carry no weight whatever their values.
    noisy = EMB.copy()
    noisy[~MASK] = 1e3
    np.testing.assert_allclose(layer(tf.constant(noisy), tf.constant(MASK)).numpy(), out, rtol=1e-6)


def test_gru_pooling_ignores_left_padding_and_reads_oldest_first():
    layer = make_pooling(HISTORY, "gru", PoolingOptions(units=D))
    padded = layer(tf.constant(EMB[:1]), tf.constant(MASK[:1])).numpy()
    # The same three items without padding: the same last state.
    alone = layer(tf.constant(EMB[:1, 2:]), tf.constant(np.ones((1, 3), bool))).numpy()
    np.testing.assert_allclose(padded, alone, rtol=1e-5, atol=1e-6)
    reversed_ = layer(tf.constant(EMB[:1, 2:][:, ::-1]), tf.constant(np.ones((1, 3), bool))).numpy()
    assert not np.allclose(alone, reversed_)  # order matters: it is a sequence model
    np.testing.assert_array_equal(layer(tf.constant(EMB[2:]), tf.constant(MASK[2:])).numpy(), np.zeros((1, D)))


# A hand timeline: user 1 has 4 interactions (two at the same time), user 2 two, user 3 none.
TRAIN = encoded_split([1, 2, 1, 1, 2, 1], [11, 21, 12, 13, 22, 14])
TRAIN = type(TRAIN)(TRAIN.user, TRAIN.item, np.array([5, 1, 3, 3, 2, 9], np.int64))
HIST = build_history(TRAIN, num_rows=4)


def _timeline(user):
    """Brute force: (time, row, item) of ``user``'s training rows, oldest first (ties by row)."""
    rows = [r for r in range(len(TRAIN)) if TRAIN.user[r] == user]
    return sorted((int(TRAIN.timestamp[r]), r, int(TRAIN.item[r])) for r in rows)


def _expected_window(row, rule, length):
    line = _timeline(int(TRAIN.user[row]))
    me = (int(TRAIN.timestamp[row]), row)
    if rule == "before":
        kept = [item for t, r, item in line if (t, r) < me]
    else:
        kept = [item for t, r, item in line if r != row]
    return kept[-length:]


def _tower(rule, length, **kwargs):
    return HistoryQueryTower(
        4, 30, D, length=length, window=rule, history_offsets=HIST.offsets, history_items=HIST.items, **kwargs
    )


@pytest.mark.parametrize("rule", ["before", "others"])
@pytest.mark.parametrize("length", [1, 2, 5])
def test_training_windows_follow_the_rule_and_never_hold_the_positive(rule, length):
    tower = _tower(rule, length)
    items, mask = tower.windows(tf.constant(TRAIN.user), tf.constant(HIST.positions))
    items, mask = items.numpy(), mask.numpy()
    assert items.shape == (len(TRAIN), length)
    for row in range(len(TRAIN)):
        got = items[row][mask[row]].tolist()
        assert got == _expected_window(row, rule, length), (row, rule)
        assert TRAIN.item[row] not in got
        assert not mask[row][: length - len(got)].any()  # padding on the left only


def test_evaluation_window_is_the_most_recent_of_the_whole_timeline():
    items, mask = _tower("before", 3).windows(tf.constant([0, 1, 2, 3]))
    got = [row[m].tolist() for row, m in zip(items.numpy(), mask.numpy())]
    assert got == [[], [12, 13, 11, 14][-3:], [21, 22], []]
    # Ties by row order: items 12 (row 2) and 13 (row 3) share time 3.
    assert HIST.timeline(1).tolist() == [12, 13, 11, 14]


def test_tower_contract_and_oov_mean_for_users_past_the_id_table():
    candidate = CandidateTower(31, D, name="candidate_tower")
    tower = _tower("before", 3, use_id=True, item_tower=candidate)
    out = tower(tf.constant([0, 1, 2, 3]))
    assert out.shape == (4, D)
    tower.set_oov_to_mean()
    table = tower.head.embedding.embeddings.numpy()
    np.testing.assert_allclose(table[0], table[1:].mean(axis=0), rtol=1e-6)
    # A user index past the id table (a cold user) adds the OOV (mean) row to their history.
    small = HistoryQueryTower(2, 30, D, length=3, use_id=True, item_tower=candidate,
                              history_offsets=HIST.offsets, history_items=HIST.items)
    items, mask = small.windows(tf.constant([2]))
    expected = small.head(small.embed_items(items), mask, tf.constant([0]))
    np.testing.assert_allclose(small(tf.constant([2])).numpy(), expected.numpy(), rtol=1e-6)
    assert float(small.embedding_penalty(tf.constant([1, 2]))) > 0


def test_shared_tower_embeds_history_with_the_candidate_tower():
    candidate = CandidateTower(31, D, name="candidate_tower")
    tower = _tower("before", 2, item_tower=candidate)
    tower(tf.constant([1]))
    np.testing.assert_allclose(tower.item_history_embeddings(), candidate(tf.range(31)).numpy(), rtol=1e-6)
    own = _tower("before", 2)
    own(tf.constant([1]))
    assert own.item_table is not None and own.item_history_embeddings().shape == (31, D)


@pytest.mark.parametrize("hidden", [[], [8]])
def test_history_items_encoded_once_per_distinct_item_give_the_same_embeddings_and_gradients(hidden):
    # With an MLP (or a content tower) the window's distinct items are encoded once and gathered;
    # a bare table gathers every slot. Either way: the per-slot encoding, and its gradients.
    candidate = CandidateTower(31, D, hidden=hidden, name="candidate_tower")
    tower = _tower("before", 5, item_tower=candidate)
    items = tf.constant([[0, 12, 13, 12], [12, 12, 21, 0], [30, 13, 13, 13]])
    tower(tf.constant([1]))
    with tf.GradientTape(persistent=True) as tape:
        got = tower.embed_items(items, training=True)
        want = tf.reshape(candidate(tf.reshape(items, [-1]), training=True), [3, 4, D])
        weights = tf.constant(np.random.default_rng(0).standard_normal((3, 4, D)), tf.float32)
        loss_got, loss_want = tf.reduce_sum(got * weights), tf.reduce_sum(want * weights)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-7)
    for g, w in zip(tape.gradient(loss_got, candidate.trainable_variables),
                    tape.gradient(loss_want, candidate.trainable_variables)):
        np.testing.assert_allclose(tf.convert_to_tensor(g).numpy(), tf.convert_to_tensor(w).numpy(), rtol=1e-5, atol=1e-6)
    ops = {op.type for op in tf.function(lambda x: tower.embed_items(x)).get_concrete_function(items).graph.get_operations()}
    assert ("Unique" in ops) == bool(hidden)


@pytest.mark.parametrize("pooling", ["mean", "attention", "gru"])
def test_config_round_trip_and_weights_give_the_same_embeddings(pooling):
    candidate = CandidateTower(31, D, name="candidate_tower")
    tower = _tower("others", 3, pooling=pooling, use_id=True, item_tower=candidate, hidden=[8], normalize=True)
    users = tf.constant([0, 1, 2, 3])
    before = tower(users).numpy()
    clone = HistoryQueryTower.from_config(tower.get_config())
    clone(users)  # build; the zero tables are filled by the weights
    assert clone.get_config() == tower.get_config()
    clone.set_weights(tower.get_weights())
    np.testing.assert_allclose(clone(users).numpy(), before, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(before, axis=1), 1.0, rtol=1e-5)


def test_head_without_users_uses_the_oov_row():
    head = HistoryHead(5, D, "mean", use_id=True)
    emb, mask = tf.constant(EMB[:1]), tf.constant(MASK[:1])
    np.testing.assert_allclose(head(emb, mask).numpy(), head(emb, mask, tf.constant([0])).numpy())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(length=0), "length must be >= 1"),
        (dict(window="future"), "window must be one of before, others"),
        (dict(pooling="max"), "pooling must be one of mean, attention, gru"),
        (dict(num_history_rows=2, history_offsets=None, history_items=None), "fewer than vocab_size=4"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, message):
    args = dict(history_offsets=HIST.offsets, history_items=HIST.items)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        HistoryQueryTower(4, 30, D, **args)
