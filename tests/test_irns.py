"""IRNSRetrieval against a numpy oracle, for every mode and option."""

import tfrs_irns  # noqa: F401,I001  (first: pins Keras 2 before anything touches tf.keras)

import itertools
import json
import zlib

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrs_irns.sampling import UniformSampler, UnigramSampler
from tfrs_irns.tasks import IRNSRetrieval, default_logq

from helpers import IRNS_DIM, IRNS_NUM_ITEMS, make_counts, make_tower

N, D, B, M = IRNS_NUM_ITEMS, IRNS_DIM, 8, 10  # a tiny catalogue so duplicates and hits happen


def oracle(
    table, q, pos, users, neg, mode, p, qprob, logq, hits, same_user, temperature, hard=None
):
    """Loss by definition: one row at a time, one column at a time (float64)."""
    table, q = table.astype(np.float64), q.astype(np.float64)
    b, m = len(pos), len(neg)
    losses = []
    for i in range(b):
        if mode == "full":
            cols = [(j, "item", None) for j in range(1, N + 1)]
            label = pos[i] - 1
        else:
            batch_cols = [(pos[k], "batch", users[k]) for k in range(b)]
            sampled = [(j, "sampled", None) for j in neg]
            cols = {
                "in_batch": batch_cols,
                "mixed": batch_cols + sampled,
                "random": [(pos[i], "batch", users[i])] + sampled,
            }[mode]
            label = 0 if mode == "random" else i
        logits = []
        for c, (item, kind, user) in enumerate(cols):
            s = q[i] @ table[item] / temperature
            if logq and mode != "full":
                from_batch = b * p[item] if mode != "random" else 0.0
                from_sampler = m * qprob[item] if mode != "in_batch" else 0.0
                expected = from_batch + from_sampler
                s -= np.log(max(expected, 1e-10))
            masked = c != label and (
                (hits and item == pos[i]) or (same_user and kind == "batch" and mode != "random" and user == users[i])
            )
            logits.append(-np.inf if masked else s)
        logits = np.array(logits)
        if hard is not None:
            negatives = np.sort(np.delete(logits, label))[::-1][:hard]
            logits = np.concatenate([[logits[label]], negatives])
            label = 0
        top = logits.max()
        losses.append(np.log(np.exp(logits - top).sum()) + top - logits[label])
    return float(np.mean(losses))


def _seed(*case) -> int:
    """A seed per test case that is the same in every process (``hash`` of a str is salted per process)."""
    return zlib.crc32(repr(case).encode())


def random_batch(rng):
    pos = rng.choice([1, 2, 3, 5, 5, 8, 8, 8, 10, 12], size=B)  # duplicates on purpose
    users = rng.integers(1, 4, size=B)  # few users: same-user pairs on purpose
    q = rng.normal(size=(B, D)).astype(np.float32)
    return pos.astype(np.int32), users.astype(np.int32), q


CASES = list(
    itertools.product(["in_batch", "random", "mixed", "full"], [False, True], [False, True], [False, True], [1.0, 0.3])
)


@pytest.mark.parametrize("mode,logq,hits,same_user,temperature", CASES)
def test_loss_matches_numpy_oracle(mode, logq, hits, same_user, temperature):
    rng = np.random.default_rng(_seed(mode, logq, hits, same_user, temperature))
    tower = make_tower()
    counts, p = make_counts()
    sampler = UnigramSampler(counts, alpha=0.75) if (hits + same_user) % 2 else UniformSampler(N)
    task = IRNSRetrieval(
        tower, N, mode=mode, num_negatives=M, sampler=sampler, item_probabilities=p, logq=logq,
        remove_accidental_hits=hits, mask_same_user=same_user, temperature=temperature, seed=3,
    )
    pos, users, q = random_batch(rng)
    step = int(task.step.numpy())
    loss = task(q, tower(pos), candidate_ids=pos, query_ids=users, training=True)
    if mode in ("random", "mixed"):
        neg, neg_q = (t.numpy() for t in task.sample_negatives(step))
        qprob = sampler.probability(tf.range(N + 1)).numpy()
        np.testing.assert_allclose(neg_q, qprob[neg], rtol=1e-6)
    else:
        neg, qprob = np.zeros(0, np.int32), None
    expected = oracle(tower.embeddings.numpy(), q, pos, users, neg, mode, p, qprob, logq, hits, same_user, temperature)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=2e-5, atol=2e-5)
    assert int(task.step.numpy()) == step + 1


@pytest.mark.parametrize("mode", ["in_batch", "random", "mixed"])
def test_hard_negative_mining_matches_oracle(mode):
    rng = np.random.default_rng(1)
    tower = make_tower()
    counts, p = make_counts()
    task = IRNSRetrieval(tower, N, mode=mode, num_negatives=M, item_probabilities=p, num_hard_negatives=3)
    pos, users, q = random_batch(rng)
    loss = task(q, tower(pos), candidate_ids=pos, query_ids=users, training=False)
    neg = task.sample_negatives(0)[0].numpy() if mode != "in_batch" else np.zeros(0, np.int32)
    qprob = np.full(N + 1, 1 / N)
    logq = mode != "random"
    expected = oracle(tower.embeddings.numpy(), q, pos, users, neg, mode, p, qprob, logq, True, False, 1.0, hard=3)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=2e-5)


def test_logq_mixture_on_a_hand_computed_2x4_example():
    # B = 2 positives (items 1, 2) and M = 2 sampled items (3, 1); all scores
    # are 0, so the logits are exactly the correction -log(B p_j + M q_j).
    # p = [0, .5, .25, .25] (training shares), q uniform over 3 items.
    #   item 1: 2*.5  + 2/3 = 5/3   item 2: 2*.25 + 2/3 = 7/6   item 3: 2*.25 + 2/3 = 7/6
    class FixedSampler(UniformSampler):
        def sample(self, num, seed):
            return tf.constant([3, 1], tf.int32), tf.fill([2], 1 / 3)

    tower = tf.keras.layers.Embedding(4, 2, embeddings_initializer="zeros")
    task = IRNSRetrieval(
        tower, 3, mode="mixed", num_negatives=2, sampler=FixedSampler(3), item_probabilities=[0, 0.5, 0.25, 0.25],
        remove_accidental_hits=False,
    )
    ids = tf.constant([1, 2])
    logits, labels, _ = task.logits_and_labels(tf.zeros([2, 2]), tower(ids), ids)
    row = -np.log([5 / 3, 7 / 6, 7 / 6, 5 / 3])
    np.testing.assert_allclose(logits.numpy(), [row, row], rtol=1e-6)
    # Sign: the popular item 1 is pushed down relative to the rarer ones.
    assert logits.numpy()[0, 0] < logits.numpy()[0, 1]
    np.testing.assert_array_equal(labels.numpy(), [0, 1])
    # Loss of row 0: logsumexp(row) - row[0]; row 1: logsumexp(row) - row[1].
    lse = np.log(np.exp(row).sum())
    expected = np.mean([lse - row[0], lse - row[1]])
    np.testing.assert_allclose(task(tf.zeros([2, 2]), tower(ids), candidate_ids=ids).numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("logq", [False, True])
def test_random_with_the_whole_catalogue_equals_full(logq):
    # Uniform, M = N without replacement and hit masking: the random mode's
    # candidate set is exactly the catalogue, so it is the exact softmax.
    rng = np.random.default_rng(2)
    tower = make_tower(1)
    pos, users, q = random_batch(rng)
    sampler = UniformSampler(N, replacement=False)
    rand = IRNSRetrieval(tower, N, mode="random", num_negatives=N, sampler=sampler, logq=logq)
    full = IRNSRetrieval(tower, N, mode="full")
    a = rand(q, tower(pos), candidate_ids=pos, training=True)
    b = full(q, tower(pos), candidate_ids=pos, training=True)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5)


@pytest.mark.parametrize("same_user", [False, True], ids=["hit-mask", "hit-and-user-mask"])
def test_gradients_match_the_dense_formulation(same_user):
    # The fast path (the mask fused into the softmax kernel, the label picked
    # from the logits, the hand-written gradients) gives the gradients of the
    # plain definition: dense mask, TensorFlow's cross-entropy.
    rng = np.random.default_rng(5)
    tower = make_tower()
    counts, p = make_counts()
    task = IRNSRetrieval(tower, N, mode="mixed", num_negatives=M, item_probabilities=p, mask_same_user=same_user)
    pos, users, q = random_batch(rng)
    q = tf.constant(q)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(q)
        loss = task(q, tower(pos), candidate_ids=pos, query_ids=users, training=False)
        neg, neg_q = task.sample_negatives(0)
        cols = tf.concat([pos, neg], 0)
        logits = tf.matmul(q, tower(cols), transpose_b=True)
        expected = B * tf.gather(p.astype(np.float32), cols) + M * tf.concat([tf.fill([B], 1 / N), neg_q], 0)
        logits -= tf.math.log(expected)[None, :]
        users_mask = np.equal.outer(users, users) & same_user
        hits = np.equal.outer(pos, cols.numpy())
        mask = (hits | np.pad(users_mask, [(0, 0), (0, M)])) & ~np.eye(B, B + M, dtype=bool)
        logits = tf.where(mask, -1e30, logits)
        ref = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.range(B), logits))
    np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1e-5)
    for ours, theirs in zip(tape.gradient(loss, [q, tower.embeddings]), tape.gradient(ref, [q, tower.embeddings])):
        np.testing.assert_allclose(tf.convert_to_tensor(ours).numpy(), tf.convert_to_tensor(theirs).numpy(), atol=1e-5)


@pytest.mark.parametrize("mode", ["in_batch", "random", "mixed"])
def test_dominant_accidental_hits_stay_finite_and_exact(mode):
    # The positive (item 3) scores ~60 above everything and also appears as
    # in-batch duplicates and sampled copies: subtracting the hits' terms
    # cancels almost everything, and the loss must still be ~0, not NaN.
    table = np.zeros((N + 1, D), np.float32)
    table[3, 0] = 30.0
    tower = tf.keras.layers.Embedding(N + 1, D, embeddings_initializer=tf.keras.initializers.Constant(table))
    tower.build((None,))

    class Threes(UniformSampler):
        def sample(self, num, seed):
            return tf.constant([3] * 4 + [5] * (num - 4), tf.int32), tf.fill([num], 1 / N)

    task = IRNSRetrieval(tower, N, mode=mode, num_negatives=M, sampler=Threes(N), logq=False)
    pos = tf.constant([3, 3, 3, 7], tf.int32)
    q = tf.constant(np.tile(np.eye(1, D, dtype=np.float32) * 2, (4, 1)))
    with tf.GradientTape() as tape:
        tape.watch(q)
        loss = task(q, tower(pos), candidate_ids=pos, training=False)
    grad = tape.gradient(loss, q)
    neg = task.sample_negatives(0)[0].numpy() if mode != "in_batch" else np.zeros(0, np.int32)
    expected = oracle(table, q.numpy(), pos.numpy(), np.arange(4), neg, mode, None, None, False, True, False, 1.0)
    assert np.isfinite(loss.numpy()) and np.all(np.isfinite(grad.numpy()))
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-4, atol=1e-6)


def tf32(x):
    """``x`` (float32) rounded to TF32's 10-bit mantissa, to nearest, as a GPU
    rounds a float32 matmul's inputs by default (the exponent is kept)."""
    bits = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x1000) & ~np.uint64(0x1FFF)
    return bits.astype(np.uint32).view(np.float32)


def test_tf32_rounding_test_helper_keeps_ten_mantissa_bits():
    assert tf32(np.float32(1.0 + 2.0**-10)) == np.float32(1.0 + 2.0**-10)  # representable: kept
    assert tf32(np.float32(1.0 + 2.0**-12)) == np.float32(1.0)  # below half a unit: down
    assert tf32(np.float32(1.0 + 3 * 2.0**-12)) == np.float32(1.0 + 2.0**-10)  # above half: up


def test_hits_are_removed_exactly_when_the_matmul_rounds_like_tf32(monkeypatch):
    # On a GPU the [B, C] logit matmul rounds its inputs to TF32, and nothing
    # else does: a hit removed by subtracting its recomputed float32 logit
    # would leave a residue. The mask comes from ids and the label is read
    # from the matmul's output, so the loss is exactly the masked softmax of
    # the rounded logits (a float64 oracle from the same rounded inputs).
    from tfrs_irns.tasks import irns

    plain_logits = irns._logits
    monkeypatch.setattr(irns, "_logits", lambda a, b: plain_logits(
        tf.numpy_function(tf32, [a], tf.float32, stateful=False),
        tf.numpy_function(tf32, [b], tf.float32, stateful=False),
    ))
    rng = np.random.default_rng(21)
    table = (rng.normal(size=(N + 1, D)) * 2.5).astype(np.float32)  # logits ~10: TF32 errors ~1e-2
    tower = tf.keras.layers.Embedding(N + 1, D, embeddings_initializer=tf.keras.initializers.Constant(table))
    tower.build((None,))
    counts, p = make_counts()
    task = IRNSRetrieval(tower, N, mode="mixed", num_negatives=M, item_probabilities=p, seed=4)
    pos, users, q = random_batch(rng)
    q = q * 2.5
    loss = float(task(q, tower(pos), candidate_ids=pos, training=False))

    neg, neg_q = (t.numpy() for t in task.sample_negatives(0))
    cols = np.concatenate([pos, neg])
    rounded = tf32(q).astype(np.float64) @ tf32(table[cols]).astype(np.float64).T
    qprob = np.concatenate([np.full(B, 1.0 / N), neg_q])
    shifted = rounded - np.log(B * p[cols] + M * qprob)[None, :]
    hits = (pos[:, None] == cols[None, :]) & ~np.eye(B, B + M, dtype=bool)
    assert hits.sum() >= 4  # duplicates in the batch and among the sampled items
    masked = np.where(hits, -np.inf, shifted)
    top = masked.max(axis=1)
    lse = np.log(np.exp(masked - top[:, None]).sum(axis=1)) + top
    expected = np.mean(lse - shifted[np.arange(B), np.arange(B)])
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    # The rounding matters at this tolerance: unrounded float32 logits give another loss.
    monkeypatch.setattr(irns, "_logits", plain_logits)
    unrounded = float(task(q, tower(pos), candidate_ids=pos, training=False))
    assert abs(unrounded - expected) > 3 * 1e-5 * abs(expected)


# ----------------------------------------------------------- seeds, steps


@pytest.mark.slow
def test_steps_draw_new_negatives_reproducibly_and_eval_does_not_advance():
    tower = make_tower()
    a = IRNSRetrieval(tower, N, mode="random", num_negatives=M, seed=9)
    b = IRNSRetrieval(tower, N, mode="random", num_negatives=M, seed=9)
    pos, users, q = random_batch(np.random.default_rng(0))
    step = tf.function(lambda t: t(q, tower(pos), candidate_ids=pos, training=True))
    losses_a = [float(step(a)) for _ in range(3)]
    losses_b = [float(step(b)) for _ in range(3)]
    assert losses_a == losses_b  # same seed, same draws, step after step
    assert len(set(losses_a)) == 3  # a new draw every step
    assert int(a.step.numpy()) == 3
    eval_loss = [float(a(q, tower(pos), candidate_ids=pos, training=False)) for _ in range(2)]
    assert eval_loss[0] == eval_loss[1] and int(a.step.numpy()) == 3
    draws = {s: a.sample_negatives(s)[0].numpy().tolist() for s in range(3)}
    assert draws[0] != draws[1] != draws[2]
    c = IRNSRetrieval(tower, N, mode="random", num_negatives=M, seed=10)
    assert c.sample_negatives(0)[0].numpy().tolist() != draws[0]


@pytest.mark.parametrize("mode,width", [("in_batch", B), ("random", 1 + M), ("mixed", B + M), ("full", N)])
def test_logit_shapes_and_labels(mode, width):
    tower = make_tower()
    task = IRNSRetrieval(tower, N, mode=mode, num_negatives=M, item_probabilities=make_counts()[1])
    pos, users, q = random_batch(np.random.default_rng(0))
    logits, labels, rows = task.logits_and_labels(q, tower(pos), pos, users)
    assert logits.shape == (B, width)
    expected = {"in_batch": np.arange(B), "mixed": np.arange(B), "random": np.zeros(B), "full": pos - 1}[mode]
    np.testing.assert_array_equal(labels.numpy(), expected)
    assert float(rows) == B


def test_loss_is_a_mean_not_tfrs_sum():
    tower = make_tower()
    pos, users, q = random_batch(np.random.default_rng(0))
    ours = IRNSRetrieval(tower, N, mode="in_batch", logq=False, remove_accidental_hits=False)
    theirs = tfrs.tasks.Retrieval()
    c = tower(pos)
    np.testing.assert_allclose(ours(q, c, candidate_ids=pos).numpy() * B, theirs(q, c).numpy(), rtol=1e-5)


# -------------------------------------------------------- tutorial-style use


def string_tower(ids):
    return tf.keras.Sequential(
        [tf.keras.layers.StringLookup(vocabulary=ids, mask_token=None), tf.keras.layers.Embedding(len(ids) + 1, D)]
    )


def test_raw_id_tower_with_candidate_ids_table():
    ids = np.array([f"m{k}" for k in range(1, N + 1)])
    tower = string_tower(ids)
    table = np.concatenate([["[UNK]"], ids])
    task = IRNSRetrieval(tower, N, mode="mixed", num_negatives=M, candidate_ids_table=table, logq=False)
    index_task = IRNSRetrieval(tower.layers[1], N, mode="mixed", num_negatives=M, logq=False)
    pos, users, q = random_batch(np.random.default_rng(0))
    raw = tf.constant(table[pos])
    a = task(q, tower(raw), candidate_ids=raw, training=True)
    b = index_task(q, tower.layers[1](pos), candidate_ids=pos, training=True)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    full = IRNSRetrieval(tower, N, mode="full", candidate_ids_table=table)
    full_index = IRNSRetrieval(tower.layers[1], N, mode="full")
    np.testing.assert_allclose(
        full(q, tower(raw), candidate_ids=raw).numpy(), full_index(q, tower.layers[1](pos), candidate_ids=pos).numpy()
    )


@pytest.mark.slow
def test_factorized_metrics_never_meet_the_sampled_negatives():
    # TFRS 0.7.7 crashes when extra negatives, candidate_ids and
    # compute_metrics=True meet; IRNSRetrieval hands metrics the positives only.
    ids = np.array([f"m{k}" for k in range(1, N + 1)])
    tower = string_tower(ids)
    table = np.concatenate([["[UNK]"], ids])
    candidates = tf.data.Dataset.from_tensor_slices(ids).batch(4).map(lambda x: (x, tower(x)))
    pos, users, q = random_batch(np.random.default_rng(0))
    raw = tf.constant(table[pos])
    c = tower(raw)

    negatives = tower(tf.constant(ids[:M]))
    crashing = tfrs.tasks.Retrieval(metrics=tfrs.metrics.FactorizedTopK(candidates, ks=(1, 5)))
    with pytest.raises(tf.errors.InvalidArgumentError):
        crashing(q, tf.concat([c, negatives], 0), candidate_ids=tf.concat([raw, ids[:M]], 0), compute_metrics=True)

    metric = tfrs.metrics.FactorizedTopK(candidates, ks=(1, 5))
    task = IRNSRetrieval(tower, N, num_negatives=M, candidate_ids_table=table, logq=False, metrics=[metric])
    step = tf.function(lambda: task(q, c, candidate_ids=raw, training=True, compute_metrics=True))
    step()
    reference = tfrs.metrics.FactorizedTopK(candidates, ks=(1, 5))
    reference.update_state(q, c, true_candidate_ids=raw)
    ours, theirs = ([m.result().numpy() for m in x.metrics] for x in (metric, reference))
    np.testing.assert_allclose(ours, theirs)
    for m in metric.metrics:
        m.reset_state()
    task(q, c, candidate_ids=raw, training=True, compute_metrics=False)
    assert all(m.result().numpy() == 0 for m in metric.metrics)


def test_batch_metrics_see_the_final_logits():
    tower = make_tower()
    acc = tf.keras.metrics.CategoricalAccuracy()
    task = IRNSRetrieval(tower, N, mode="in_batch", logq=False, remove_accidental_hits=False, batch_metrics=[acc])
    pos, users, q = random_batch(np.random.default_rng(0))
    task(q, tower(pos), candidate_ids=pos)
    scores = q @ tower.embeddings.numpy()[pos].T
    assert acc.result().numpy() == pytest.approx(np.mean(scores.argmax(1) == np.arange(B)))


def test_default_logq():
    assert [default_logq(m) for m in ("in_batch", "random", "mixed", "full")] == [True, False, True, False]
    assert IRNSRetrieval(make_tower(), N, mode="random", num_negatives=M).logq is False
    assert IRNSRetrieval(make_tower(), N, mode="full", logq=True).logq is False  # the exact softmax


# ----------------------------------------------------------- serialization


def rebuilt(task):
    """``task`` through Keras serialization and JSON, then its weights."""
    config = json.loads(json.dumps(tf.keras.layers.serialize(task)))
    again = tf.keras.layers.deserialize(config)
    assert type(again) is IRNSRetrieval and again.candidate_tower is not task.candidate_tower
    again.candidate_tower.build((None,))  # a deserialized layer is built on first use
    again.set_weights(task.get_weights())
    return again


SERIAL_CASES = [
    ("in_batch", None, dict(logq=True, mask_same_user=True)),
    ("random", "unigram", dict(logq=True, temperature=0.5)),
    ("random", "uniform-norepl", dict(logq=False, num_hard_negatives=3)),
    ("mixed", "unigram", dict(logq=True)),
    ("mixed", "unigram-norepl", dict(logq=True, remove_accidental_hits=False, mask_same_user=True)),
    ("mixed", None, dict(logq=False)),
    ("full", None, dict()),
]


@pytest.mark.parametrize("mode,sampler,options", SERIAL_CASES)
def test_config_and_weights_round_trip_to_the_same_loss(mode, sampler, options):
    counts, p = make_counts()
    samplers = {
        None: None,
        "unigram": UnigramSampler(counts, alpha=0.5),
        "unigram-norepl": UnigramSampler(counts, alpha=0.75, replacement=False),
        "uniform-norepl": UniformSampler(N, replacement=False),
    }
    task = IRNSRetrieval(
        make_tower(), N, mode=mode, num_negatives=M, sampler=samplers[sampler], item_probabilities=p, seed=5, **options
    )
    pos, users, q = random_batch(np.random.default_rng(3))
    losses = [float(task(q, task.candidate_tower(pos), pos, users, training=True)) for _ in range(2)]
    again = rebuilt(task)
    assert again.get_config() == task.get_config()
    assert int(again.step.numpy()) == int(task.step.numpy()) == 2
    assert type(again.sampler) is type(task.sampler)
    for _ in range(2):  # the same draws at the same steps
        ours = task(q, task.candidate_tower(pos), pos, users, training=True)
        theirs = again(q, again.candidate_tower(pos), pos, users, training=True)
        assert float(theirs) == float(ours)
        assert task.sampler is None or float(ours) not in losses  # not a stale draw
    if task.sampler is not None:
        for a, b in zip(task.sample_negatives(7), again.sample_negatives(7)):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_item_probabilities_are_a_weight_not_config():
    counts = np.arange(5001) % 5
    task = IRNSRetrieval(
        tf.keras.layers.Embedding(5001, D), 5000, num_negatives=M, sampler=UnigramSampler(counts),
        item_probabilities=counts / counts.sum(),
    )
    text = json.dumps(tf.keras.layers.serialize(task))
    assert len(text) < 3000  # no 5001-long list of probabilities or counts
    config = json.loads(text)["config"]
    assert config["with_item_probabilities"] and config["sampler"]["config"]["num_items"] == 5000
    weights = {w.name.split("/")[-1].split(":")[0]: w for w in task.non_trainable_weights}
    np.testing.assert_allclose(weights["item_probabilities"].numpy(), counts / counts.sum(), rtol=1e-6)
    np.testing.assert_array_equal(weights["counts"].numpy(), counts)


def test_raw_id_table_round_trips_as_a_weight():
    ids = np.array([f"m{k}" for k in range(1, N + 1)])
    table = np.concatenate([["[UNK]"], ids])
    tower = tf.keras.layers.Embedding(N + 1, D, embeddings_initializer=tf.keras.initializers.RandomNormal(seed=0))
    lookup = tf.keras.layers.StringLookup(vocabulary=ids, mask_token=None)
    raw_tower = tf.keras.Sequential([lookup, tower])
    task = IRNSRetrieval(raw_tower, N, mode="mixed", num_negatives=M, candidate_ids_table=table, logq=False)
    pos, users, q = random_batch(np.random.default_rng(4))
    raw = tf.constant(table[pos])
    ours = task(q, raw_tower(raw), candidate_ids=raw, training=False)
    config = json.loads(json.dumps(tf.keras.layers.serialize(task)))
    assert config["config"]["candidate_ids_dtype"] == "string"
    again = tf.keras.layers.deserialize(config)
    again.candidate_tower(raw)  # build
    again.set_weights(task.get_weights())
    theirs = again(q, again.candidate_tower(raw), candidate_ids=raw, training=False)
    assert float(theirs) == float(ours)


# ------------------------------------------------------------------ errors


def test_errors_name_arguments_and_values():
    tower = make_tower()
    with pytest.raises(ValueError, match=r"^num_items=1000000 exceeds full_max_items=200000"):
        IRNSRetrieval(tower, 1_000_000, mode="full")
    with pytest.raises(
        ValueError, match="^num_negatives=5000 exceeds the 1682 items in the catalogue with replacement=False"
    ):
        IRNSRetrieval(tower, 1682, num_negatives=5000, sampler=UniformSampler(1682, replacement=False), logq=False)
    with pytest.raises(ValueError, match="^mode='hard': expected one of 'in_batch', 'random', 'mixed', 'full'"):
        IRNSRetrieval(tower, N, mode="hard")
    with pytest.raises(ValueError, match=r"^temperature must be > 0, got 0\.0$"):
        IRNSRetrieval(tower, 10, mode="random", temperature=0.0)
    with pytest.raises(ValueError, match="^num_hard_negatives must be > 0, got 0"):
        IRNSRetrieval(tower, N, num_hard_negatives=0, logq=False)
    with pytest.raises(ValueError, match="^num_negatives must be > 0, got 0"):
        IRNSRetrieval(tower, N, num_negatives=0, logq=False)
    with pytest.raises(ValueError, match="needs item_probabilities"):
        IRNSRetrieval(tower, N, mode="mixed")
    with pytest.raises(ValueError, match=r"item_probabilities must have shape \(13,\)"):
        IRNSRetrieval(tower, N, item_probabilities=[0.5, 0.5])
    with pytest.raises(ValueError, match="expected num_items=12"):
        IRNSRetrieval(tower, N, sampler=UniformSampler(5), logq=False)
    task = IRNSRetrieval(tower, N, mode="mixed", num_negatives=M, logq=False)
    with pytest.raises(ValueError, match="needs candidate_ids"):
        task(tf.zeros([2, D]), tf.zeros([2, D]))
    same_user = IRNSRetrieval(tower, N, mode="in_batch", logq=False, mask_same_user=True)
    with pytest.raises(ValueError, match="needs query_ids"):
        same_user(tf.zeros([2, D]), tf.zeros([2, D]), candidate_ids=tf.constant([1, 2]))


# ---------------------------------------------------------- refined logQ


def refined_oracle(table, q, pos, users, neg, mode, p, qprob, hits, same_user, temperature, hard=None):
    """The refined correction by definition (float64): per row, the negatives
    (every column but the label, minus masked ones) shifted by
    ``log((B - 1) p + M q)``, the positive unshifted. Returns the mean of
    ``-log P^_pos`` and the gradient of the paper's weighted form
    ``sg(1 - P^_pos) * (lse_neg - s_pos)`` with respect to the queries."""
    table, q = table.astype(np.float64), q.astype(np.float64)
    b, m = len(pos), len(neg)
    losses, grads = [], np.zeros_like(q)
    for i in range(b):
        batch_cols = [(pos[k], "batch", users[k]) for k in range(b) if k != i]
        sampled = [(j, "sampled", None) for j in neg]
        cols = {"in_batch": batch_cols, "mixed": batch_cols + sampled, "random": sampled}[mode]
        keep = [
            (item, kind) for item, kind, user in cols
            if not ((hits and item == pos[i]) or (same_user and kind == "batch" and user == users[i]))
        ]
        if not keep:  # every column masked: no negative, softplus(-inf) = 0 and no gradient
            losses.append(0.0)
            continue
        vectors = np.array([table[item] for item, _ in keep])
        expected = np.array([
            (b - 1) * p[item] * (mode != "random") + m * qprob[item] * (mode != "in_batch") if qprob is not None
            else (b - 1) * p[item]
            for item, _ in keep
        ])
        logits = vectors @ q[i] / temperature - np.log(np.maximum(expected, 1e-10))
        if hard is not None:
            top = np.argsort(-logits)[:hard]
            logits, vectors = logits[top], vectors[top]
        s_pos = table[pos[i]] @ q[i] / temperature
        lse = np.log(np.exp(logits - logits.max()).sum()) + logits.max()
        weight = 1.0 / (1.0 + np.exp(s_pos - lse))  # 1 - P^_pos
        losses.append(np.logaddexp(0.0, lse - s_pos))
        share = np.exp(logits - lse)
        grads[i] = weight * (share @ vectors - table[pos[i]]) / temperature / b
    return float(np.mean(losses)), grads


REFINED_CASES = [
    (mode, hits, same_user, temperature, hard)
    for mode in ("in_batch", "random", "mixed")
    for hits, same_user in ((True, False), (False, False), (True, True), (False, True))
    for temperature, hard in ((1.0, None), (0.3, None), (1.0, 3))
    if not (mode == "random" and same_user)
]


@pytest.mark.parametrize("mode,hits,same_user,temperature,hard", REFINED_CASES)
def test_refined_logq_matches_numpy_oracle_loss_and_gradient(mode, hits, same_user, temperature, hard):
    rng = np.random.default_rng(_seed(mode, hits, same_user, temperature, hard))
    tower = make_tower()
    counts, p = make_counts()
    sampler = UnigramSampler(counts, alpha=0.75)
    task = IRNSRetrieval(
        tower, N, mode=mode, num_negatives=M, sampler=sampler, item_probabilities=p, logq=True,
        logq_variant="refined", remove_accidental_hits=hits, mask_same_user=same_user, temperature=temperature,
        num_hard_negatives=hard, seed=3,
    )
    pos, users, q = random_batch(rng)
    q = tf.constant(q)
    with tf.GradientTape() as tape:
        tape.watch(q)
        loss = task(q, tower(pos), candidate_ids=pos, query_ids=users, training=False)
    if mode != "in_batch":
        neg = task.sample_negatives(0)[0].numpy()
        qprob = sampler.probability(tf.range(N + 1)).numpy().astype(np.float64)
    else:
        neg, qprob = np.zeros(0, np.int32), None
    expected, grads = refined_oracle(
        tower.embeddings.numpy(), q.numpy(), pos, users, neg, mode, p, qprob, hits, same_user, temperature, hard
    )
    np.testing.assert_allclose(loss.numpy(), expected, rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(tape.gradient(loss, q).numpy(), grads, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("hard", [None, 3])
def test_refined_logq_row_whose_every_negative_is_masked_adds_zero_loss_and_no_gradient(hard):
    # Row 3 (user 3, item 5): every other column is item 5 (an accidental hit) or user 3's (same user).
    pos = np.array([5, 5, 1, 5, 5, 5, 3, 5], np.int32)
    users = np.array([2, 2, 3, 3, 1, 3, 3, 2], np.int32)
    q = tf.constant(np.random.default_rng(0).normal(size=(B, D)).astype(np.float32))
    tower = make_tower()
    counts, p = make_counts()
    task = IRNSRetrieval(
        tower, N, mode="in_batch", num_negatives=M, sampler=UnigramSampler(counts, alpha=0.75), item_probabilities=p,
        logq=True, logq_variant="refined", remove_accidental_hits=True, mask_same_user=True, num_hard_negatives=hard,
    )
    with tf.GradientTape() as tape:
        tape.watch(q)
        loss = task(q, tower(pos), candidate_ids=pos, query_ids=users, training=False)
    grad = tape.gradient(loss, q).numpy()
    expected, grads = refined_oracle(
        tower.embeddings.numpy(), q.numpy(), pos, users, np.zeros(0, np.int32), "in_batch", p, None, True, True, 1.0, hard
    )
    assert np.isfinite(float(loss)) and not grad[3].any()
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    np.testing.assert_allclose(grad, grads, rtol=1e-4, atol=1e-6)


def test_refined_logq_on_a_hand_computed_in_batch_example():
    # B = 2 positives, items 1 and 2, p = [0, .75, .25], all scores 0.
    # Refined: row 0's one negative is item 2, drawn B - 1 = 1 time with
    # probability .25: logit -log(.25) = log 4; the positive stays at 0, so
    # the loss is log(1 + 4) = log 5 (weight 1 - P^ = 4/5). Row 1: item 1,
    # logit log(4/3), loss log(7/3).
    # Standard shifts the positive too, by log(B p): row 0 logits
    # [-log 1.5, -log .5] give log 4; row 1 gives log(4/3).
    tower = tf.keras.layers.Embedding(3, 2, embeddings_initializer="zeros")
    ids = tf.constant([1, 2])
    losses = {}
    for variant in ("standard", "refined"):
        task = IRNSRetrieval(tower, 2, mode="in_batch", item_probabilities=[0, 0.75, 0.25], logq_variant=variant)
        losses[variant] = float(task(tf.zeros([2, 2]), tower(ids), candidate_ids=ids))
        logits, labels, _ = task.logits_and_labels(tf.zeros([2, 2]), tower(ids), ids)
        if variant == "refined":
            np.testing.assert_allclose(logits.numpy(), [[0, np.log(4)], [np.log(4 / 3), 0]], rtol=1e-6)
    np.testing.assert_allclose(losses["refined"], np.mean([np.log(5), np.log(7 / 3)]), rtol=1e-6)
    np.testing.assert_allclose(losses["standard"], np.mean([np.log(4), np.log(4 / 3)]), rtol=1e-6)


def test_refined_logq_round_trips_and_refuses_without_logq():
    counts, p = make_counts()
    task = IRNSRetrieval(make_tower(), N, mode="mixed", num_negatives=M, item_probabilities=p, logq_variant="refined")
    pos, users, q = random_batch(np.random.default_rng(3))
    again = rebuilt(task)
    assert again.get_config()["logq_variant"] == "refined"
    assert float(again(q, again.candidate_tower(pos), pos)) == float(task(q, task.candidate_tower(pos), pos))
    with pytest.raises(ValueError, match=r"^logq_variant='refined' needs the logQ correction on \(mode 'full'"):
        IRNSRetrieval(make_tower(), N, mode="full", logq_variant="refined")
    with pytest.raises(ValueError, match=r"^logq_variant='exact': expected 'standard' or 'refined'"):
        IRNSRetrieval(make_tower(), N, mode="mixed", item_probabilities=p, logq_variant="exact")


def test_refined_logq_over_the_whole_catalogue_is_the_full_softmax():
    # Uniform, M = N without replacement, hits removed: every item but the
    # positive is a negative exactly once (E = M q = 1), so the refined loss and
    # its gradients are the exact full softmax's (the standard correction shifts
    # the positive by log(M q) = 0 too, so here the two agree: the check is the scale).
    rng = np.random.default_rng(7)
    tower = make_tower(2)
    pos, users, q = random_batch(rng)
    q = tf.constant(q)
    refined = IRNSRetrieval(tower, N, mode="random", num_negatives=N, sampler=UniformSampler(N, replacement=False),
                            logq=True, logq_variant="refined", temperature=0.5)
    full = IRNSRetrieval(tower, N, mode="full", temperature=0.5)
    results = []
    for task in (refined, full):
        with tf.GradientTape() as tape:
            tape.watch(q)
            loss = task(q, tower(pos), candidate_ids=pos, training=True)
        grads = tape.gradient(loss, [q, tower.embeddings])
        results.append([loss.numpy()] + [tf.convert_to_tensor(g).numpy() for g in grads])
    for ours, exact in zip(*results):
        np.testing.assert_allclose(ours, exact, rtol=1e-5, atol=1e-6)
