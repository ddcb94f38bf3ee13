"""evaluate_embeddings / evaluate_model: hand-computed protocol, TFRS parity, towers."""

import tfrs_irns  # noqa: F401  (pins Keras 2 before TensorFlow)

import dataclasses
import inspect
import json
import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrs_irns.errors import DataError, UserError
from tfrs_irns.evaluation import (
    DEFAULT_KS,
    ProtocolArgs,
    evaluate_embeddings,
    evaluate_model,
    evaluate_on_split,
    popular_baseline,
    popular_baseline_arrays,
)
from tfrs_irns.evaluation.validation import EpochMetrics


from helpers import encoded_split, prepared_data  # noqa: E402  (real PreparedData from hand-made splits)


# d = 1: user 1 ranks items 1, 2, 3, 4; user 2 ranks 4, 3, 2, 1; row 0 is OOV.
USER_EMB = np.array([[0.5], [1.0], [-1.0]], np.float32)
ITEM_EMB = np.array([[0.0], [4.0], [3.0], [2.0], [1.0]], np.float32)
# (1,2) rank 1; (1,OOV) miss; (2,4) rank 0 twice; (2,1) rank 3.
TEST_USERS = np.array([1, 1, 2, 2, 2])
TEST_ITEMS = np.array([2, 0, 4, 4, 1])
L3, L5 = math.log2(3), math.log2(5)


def test_hand_computed_metrics_without_exclusion():
    r = evaluate_embeddings(USER_EMB, ITEM_EMB, TEST_USERS, TEST_ITEMS, ks=[10, 1, 2])
    assert r["hit_rate@1"] == pytest.approx(2 / 5)
    assert r["hit_rate@2"] == pytest.approx(3 / 5)
    assert r["hit_rate@10"] == pytest.approx(4 / 5)  # K > catalogue; the OOV item stays a miss
    # per user, distinct items: user 1 {2: rank 1, OOV}, user 2 {4: rank 0, 1: rank 3}
    assert r["recall@1"] == pytest.approx((0 + 1 / 2) / 2)
    assert r["recall@2"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert r["recall@10"] == pytest.approx((1 / 2 + 1) / 2)
    assert r["ndcg@1"] == pytest.approx((0 + 1) / 2)
    assert r["ndcg@2"] == pytest.approx(((1 / L3) / (1 + 1 / L3) + 1 / (1 + 1 / L3)) / 2)
    assert r["ndcg@10"] == pytest.approx(((1 / L3) / (1 + 1 / L3) + (1 + 1 / L5) / (1 + 1 / L3)) / 2)
    assert r["mrr"] == pytest.approx(((1 / 2 + 0) / 2 + (1 + 1 / 4) / 2) / 2)
    assert r["coverage@1"] == pytest.approx(2 / 4)  # items 1 and 4
    assert r["coverage@2"] == 1.0
    assert r["num_test_interactions"] == 5 and r["num_test_users"] == 2
    assert list(r)[:3] == ["hit_rate@1", "hit_rate@2", "hit_rate@10"]
    assert "head" not in r and "not computed" in r["protocol"]["head"]
    p = r["protocol"]
    assert p["num_items"] == 4 and p["exclude_seen"] is False
    assert "1 test interactions have an item unseen in training" in p["oov_items"]
    assert "tf.math.top_k" in p["tie_rule"]


def test_repeated_known_items_count_once_per_user_but_each_oov_item_counts():
    # user 1: item 1 (rank 0) twice and two different unseen items (both index 0).
    r = evaluate_embeddings(USER_EMB, ITEM_EMB, [1, 1, 1, 1], [1, 1, 0, 0], ks=[1])
    assert r["hit_rate@1"] == 0.5  # per interaction: 2 of 4
    assert r["recall@1"] == pytest.approx(1 / 3)  # distinct: {1, unseen a, unseen b}
    assert r["ndcg@1"] == 1.0
    assert r["mrr"] == pytest.approx(1 / 3)


def test_exclude_seen_removes_history_but_never_the_target():
    train_users, train_items = np.array([1, 2, 2]), np.array([1, 4, 3])
    r = evaluate_embeddings(
        USER_EMB, ITEM_EMB, TEST_USERS, TEST_ITEMS, ks=[1],
        train_users=train_users, train_items=train_items, exclude_seen=True,
    )
    # user 1 ranks 2, 3, 4; user 2 ranks 2, 1 but item 4 stays its own target at rank 0.
    assert r["hit_rate@1"] == pytest.approx(3 / 5)
    assert r["mrr"] == pytest.approx(((1 + 0) / 2 + (1 + 1 / 2) / 2) / 2)
    assert r["coverage@1"] == pytest.approx(1 / 4)  # both users' top 1 is item 2
    assert r["protocol"]["exclude_seen"] is True


def test_head_and_tail_bands():
    counts = np.array([0, 6, 1, 1, 2])  # item 1 holds 6 of 10 training interactions: head = {1}
    r = evaluate_embeddings(USER_EMB, ITEM_EMB, TEST_USERS, TEST_ITEMS, ks=[1, 10], item_counts=counts)
    head, tail = r["head"], r["tail"]
    assert head["num_test_interactions"] == 1 and head["num_test_users"] == 1  # (2, 1) at rank 3
    assert head["hit_rate@1"] == 0.0 and head["hit_rate@10"] == 1.0
    assert head["mrr"] == pytest.approx(1 / 4)
    assert head["coverage@1"] == 1.0  # item 1 is user 1's top 1
    assert tail["num_test_interactions"] == 4  # includes the OOV item
    assert tail["hit_rate@1"] == pytest.approx(2 / 4)
    assert tail["coverage@1"] == pytest.approx(1 / 3)  # of tail items {2, 3, 4}, only 4 shown
    assert "the 1 most popular items" in r["protocol"]["head"]
    assert set(head) == set(tail) == {k for k in r if k not in ("head", "tail", "protocol")}


def test_empty_band_gives_none_and_result_is_strict_json():
    counts = np.array([0, 0, 0, 0, 9])  # head = {4}: no test item of user 1 is head
    r = evaluate_embeddings(USER_EMB, ITEM_EMB, TEST_USERS[:2], TEST_ITEMS[:2], ks=[1], item_counts=counts)
    assert r["head"]["hit_rate@1"] is None and r["head"]["num_test_interactions"] == 0
    json.dumps(r, allow_nan=False)


def test_counts_come_from_training_items_when_not_given():
    a = evaluate_embeddings(USER_EMB, ITEM_EMB, TEST_USERS, TEST_ITEMS, ks=[1],
                            train_users=np.array([1, 1, 1]), train_items=np.array([1, 1, 3]))
    b = evaluate_embeddings(USER_EMB, ITEM_EMB, TEST_USERS, TEST_ITEMS, ks=[1],
                            item_counts=np.array([0, 2, 0, 1, 0]))
    assert a == b


@pytest.mark.parametrize("exclude_seen", [False, True])
def test_chunked_equals_unchunked(exclude_seen):
    rng = np.random.default_rng(0)
    users = rng.integers(-3, 4, (21, 3)).astype(np.float32)  # exact scores, many ties
    items = rng.integers(-3, 4, (61, 3)).astype(np.float32)
    kw = dict(ks=[1, 5, 20, 100], train_users=rng.integers(1, 21, 200),
              train_items=rng.integers(0, 61, 200), exclude_seen=exclude_seen)
    tu, ti = rng.integers(0, 21, 150), rng.integers(0, 61, 150)
    base = evaluate_embeddings(users, items, tu, ti, chunk_size=1024, **kw)
    for chunk in (1, 2, 7):
        assert evaluate_embeddings(users, items, tu, ti, chunk_size=chunk, **kw) == base


def test_hit_rate_equals_tfrs_factorized_top_k():
    # Multiples of 2^-10 in [-1, 1], d = 8: every score is exact in float32, so
    # TFRS's separately computed positive score equals its matmul score. (With
    # arbitrary floats they differ in the last bit, and TFRS then misses an item
    # ranked exactly K-th about once per few hundred test pairs.)
    num_items, ks = 300, [1, 5, 10, 50]
    for seed in range(100):  # the first draw without tied scores: tie rules cannot matter
        rng = np.random.default_rng(seed)
        user_emb = (rng.integers(-1024, 1025, (41, 8)) / 1024).astype(np.float32)
        item_emb = (rng.integers(-1024, 1025, (num_items + 1, 8)) / 1024).astype(np.float32)
        if all(np.unique(row).size == num_items for row in user_emb @ item_emb[1:].T):
            break
    else:
        pytest.fail("no tie-free draw")
    tu, ti = rng.integers(0, 41, 400), rng.integers(1, num_items + 1, 400)
    ours = evaluate_embeddings(user_emb, item_emb, tu, ti, ks=ks)

    candidates = (
        tf.data.Dataset.from_tensor_slices(item_emb[1:])
        .batch(64)
        .enumerate()
        .map(lambda i, emb: (tf.range(i * 64, i * 64 + tf.shape(emb, out_type=tf.int64)[0]) + 1, emb))
    )
    metric = tfrs.metrics.FactorizedTopK(candidates=candidates, ks=ks)
    metric.update_state(tf.constant(user_emb[tu]), tf.constant(item_emb[ti]))
    theirs = [float(v) for v in metric.result()]
    assert theirs == pytest.approx([ours[f"hit_rate@{k}"] for k in ks], abs=1e-6)
    assert 0 < ours["hit_rate@10"] < ours["hit_rate@50"] < 1  # a test that can tell them apart


def test_max_queries_samples_whole_users_reproducibly():
    rng = np.random.default_rng(2)
    user_emb = rng.standard_normal((7, 4)).astype(np.float32)
    item_emb = rng.standard_normal((51, 4)).astype(np.float32)
    sizes = [1, 2, 4, 8, 16, 32]  # users 1..6: the interaction count tells which users were kept
    tu = np.repeat(np.arange(1, 7), sizes)
    ti = rng.integers(0, 51, tu.size)
    kw = dict(ks=[1, 10], item_counts=np.bincount(rng.integers(1, 51, 500), minlength=51))
    seen = set()
    for seed in range(6):
        r = evaluate_embeddings(user_emb, item_emb, tu, ti, max_queries=3, seed=seed, **kw)
        assert r == evaluate_embeddings(user_emb, item_emb, tu, ti, max_queries=3, seed=seed, **kw)
        n = r["num_test_interactions"]
        kept = [u + 1 for u, s in enumerate(sizes) if n & s]
        assert r["num_test_users"] == 3 and len(kept) == 3
        assert r["protocol"]["evaluated_users"] == "3 of 6 test users"
        mask = np.isin(tu, kept)
        sub = evaluate_embeddings(user_emb, item_emb, tu[mask], ti[mask], **kw)
        strip = lambda d: {k: v for k, v in d.items() if k != "protocol"}  # noqa: E731
        assert strip(r) == strip(sub)
        seen.add(tuple(kept))
    assert len(seen) > 1


class TwoEmbeddings:
    """A tiny two-tower model: one Embedding (+ Dropout) layer per tower."""

    def __init__(self, num_users, num_items, dim=4, dropout=0.0):
        self.query_tower = tf.keras.Sequential(
            [tf.keras.layers.Embedding(num_users + 1, dim), tf.keras.layers.Dropout(dropout)]
        )
        self.candidate_tower = tf.keras.Sequential(
            [tf.keras.layers.Embedding(num_items + 1, dim), tf.keras.layers.Dropout(dropout)]
        )
        self.query_tower(tf.constant([0]))
        self.candidate_tower(tf.constant([0]))


def make_data(rng, num_users=12, num_items=40):
    def part(n):
        return encoded_split(rng.integers(0, num_users + 1, n), rng.integers(0, num_items + 1, n))

    return prepared_data(part(300), part(40), part(60), num_users, num_items)


@pytest.mark.parametrize("split_name,history", [("test", ("train", "validation")), ("validation", ("train",))])
def test_evaluate_model_equals_evaluate_embeddings_on_its_weights(split_name, history):
    rng = np.random.default_rng(3)
    data = make_data(rng)
    model = TwoEmbeddings(data.num_users, data.num_items, dropout=0.5)  # dropout must be off
    got = evaluate_model(model, data, split=split_name, ks=[1, 5, 10], exclude_seen=True, batch_size=7)
    part = getattr(data, split_name)
    expected = evaluate_embeddings(
        model.query_tower.layers[0].embeddings.numpy(),
        model.candidate_tower.layers[0].embeddings.numpy(),
        part.user, part.item, ks=[1, 5, 10],
        train_users=np.concatenate([getattr(data, h).user for h in history]),
        train_items=np.concatenate([getattr(data, h).item for h in history]),
        item_counts=data.item_counts, exclude_seen=True,
    )
    assert got["protocol"].pop("split") == split_name
    assert got["protocol"].pop("history") == list(history)
    assert got == expected


def test_user_errors_name_the_problem():
    data = make_data(np.random.default_rng(4))
    model = TwoEmbeddings(data.num_users, data.num_items)
    data = dataclasses.replace(data, validation=encoded_split([], []))
    with pytest.raises(DataError, match="validation split is empty.*validation_fraction"):
        evaluate_model(model, data, split="validation")
    with pytest.raises(DataError, match="no test interactions"):
        evaluate_embeddings(USER_EMB, ITEM_EMB, [], [])
    with pytest.raises(DataError, match=r"test item index 9 is outside the item embedding table \(rows 0..4\)"):
        evaluate_embeddings(USER_EMB, ITEM_EMB, [1], [9])
    with pytest.raises(DataError, match=r"test user index 3 is outside the user embedding table \(rows 0..2\)"):
        evaluate_embeddings(USER_EMB, ITEM_EMB, [3], [1])
    with pytest.raises(UserError, match="NaN or inf"):
        evaluate_embeddings(USER_EMB * np.nan, ITEM_EMB, [1], [1])


def test_programming_errors():
    model = TwoEmbeddings(3, 4)
    with pytest.raises(ValueError, match="split must be 'validation' or 'test', got 'train'"):
        evaluate_model(model, make_data(np.random.default_rng(4), 3, 4), split="train")
    for bad in ([], [0], [5, -1], [2.5], [True]):
        with pytest.raises(ValueError, match=r"ks must be a non-empty list of integers K > 0, got \["):
            evaluate_embeddings(USER_EMB, ITEM_EMB, [1], [1], ks=bad)
    with pytest.raises(TypeError, match="positional"):
        evaluate_model(model, make_data(np.random.default_rng(4), 3, 4), "test", [1, 5])  # ks is keyword-only
    with pytest.raises(ValueError, match="exclude_seen=True needs train_users and train_items"):
        evaluate_embeddings(USER_EMB, ITEM_EMB, [1], [1], exclude_seen=True)
    with pytest.raises(ValueError, match=r"item_counts has shape \(3,\), expected \(5,\)"):
        evaluate_embeddings(USER_EMB, ITEM_EMB, [1], [1], item_counts=np.ones(3))
    with pytest.raises(ValueError, match="2 test users but 1 test items"):
        evaluate_embeddings(USER_EMB, ITEM_EMB, [1, 2], [1])


def test_protocol_keywords_and_defaults_are_declared_once():
    # Every entry point forwards ProtocolArgs to evaluate_embeddings, which holds the defaults.
    defaults = {name: p.default for name, p in inspect.signature(evaluate_embeddings).parameters.items()}
    assert set(ProtocolArgs.__annotations__) == {"ks", "exclude_seen", "chunk_size", "max_queries", "seed", "device"}
    assert defaults["ks"] == DEFAULT_KS
    for entry in (evaluate_model, evaluate_on_split, popular_baseline, popular_baseline_arrays):
        assert inspect.signature(entry).parameters["protocol"].kind is inspect.Parameter.VAR_KEYWORD
    # The Keras callback spells them out (its attributes); same defaults.
    callback = inspect.signature(EpochMetrics).parameters
    for name in ProtocolArgs.__annotations__:
        assert callback[name].default == defaults[name], name
    with pytest.raises(TypeError, match="k_list"):
        evaluate_model(TwoEmbeddings(3, 4), make_data(np.random.default_rng(0), 3, 4), k_list=[1])


class RecordingTower(tf.keras.layers.Layer):
    """A query tower that remembers every index it embedded."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.seen = inner, []

    def call(self, indices, training=False):
        self.seen.extend(np.asarray(indices).tolist())
        return self.inner(indices, training=training)


@pytest.mark.parametrize("device", ["numpy", "tf"])
def test_validation_embeds_only_the_users_it_scores(device):
    rng = np.random.default_rng(9)
    data = make_data(rng, num_users=30, num_items=40)
    model = TwoEmbeddings(data.num_users, data.num_items)
    model.query_tower = RecordingTower(model.query_tower)
    callback = EpochMetrics(data, ks=[1, 10], max_queries=4, seed=5, device=device)
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)
    # The tower saw the 4 sampled validation users, each once (not all 31 rows).
    assert len(model.query_tower.seen) == 4 and len(set(model.query_tower.seen)) == 4
    assert set(model.query_tower.seen) <= set(data.validation.user.tolist())
    # Same numbers as ranking every user's embedding with the same sample.
    full = evaluate_embeddings(
        model.query_tower.inner.layers[0].embeddings.numpy(),
        model.candidate_tower.layers[0].embeddings.numpy(),
        data.validation.user, data.validation.item, ks=[1, 10], max_queries=4, seed=5,
        item_counts=data.item_counts,
    )
    assert logs == {f"val_{key}": float(full[key]) for key in ("hit_rate@1", "hit_rate@10", "mrr")}
    assert full["num_test_users"] == 4
