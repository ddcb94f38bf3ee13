"""Negative samplers: the distribution they draw from, seeds, serialization, errors."""

import tfrs_irns  # noqa: F401,I001  (first: pins Keras 2 before anything touches tf.keras)

import itertools
import json

import numpy as np
import pytest
import tensorflow as tf

from tfrs_irns.sampling import UniformSampler, UnigramSampler

COUNTS = np.array([7, 5, 0, 1, 20, 3, 0, 9, 2], dtype=np.int64)  # index 0 (OOV) ignored


def seed(step, base=0):
    return tf.constant([base, step], tf.int64)


def many_draws(sampler, num, repeats):
    """``repeats`` independent draws of ``num`` items, ``[repeats, num]``."""

    @tf.function
    def draw(seeds):
        return tf.map_fn(lambda s: sampler.sample(num, s)[0], seeds, fn_output_signature=tf.int32)

    seeds = tf.stack([tf.fill([repeats], tf.constant(11, tf.int64)), tf.range(repeats, dtype=tf.int64)], axis=1)
    return draw(seeds).numpy()


def total_variation(freq, target):
    return 0.5 * np.abs(np.asarray(freq) - np.asarray(target)).sum()


def unigram_target(counts, alpha):
    w = np.where(counts > 0, counts.astype(float) ** alpha, 0.0)
    w[0] = 0.0
    return w / w.sum()


# ------------------------------------------------------------ distributions


def test_uniform_with_replacement_matches_uniform_frequencies():
    n = 50
    ids, probs = UniformSampler(n).sample(200_000, seed(3))
    ids = ids.numpy()
    assert ids.dtype == np.int32 and ids.min() >= 1 and ids.max() <= n
    freq = np.bincount(ids, minlength=n + 1)[1:] / ids.size
    # 200k draws over 50 cells: TV is ~0.006 for a fair sampler.
    assert total_variation(freq, np.full(n, 1 / n)) < 0.015
    np.testing.assert_allclose(probs.numpy(), 1 / n, rtol=1e-6)


@pytest.mark.parametrize("alpha", [0.75, 1.0, 0.0])
def test_unigram_with_replacement_matches_count_power_alpha(alpha):
    sampler = UnigramSampler(COUNTS, alpha=alpha)
    ids, probs = sampler.sample(200_000, seed(5))
    ids = ids.numpy()
    target = unigram_target(COUNTS, alpha)
    freq = np.bincount(ids, minlength=len(COUNTS)) / ids.size
    assert total_variation(freq, target) < 0.01
    # Zero-count items and OOV are never drawn, even with alpha = 0.
    assert freq[0] == 0 and freq[2] == 0 and freq[6] == 0
    np.testing.assert_allclose(probs.numpy(), target[ids], rtol=1e-6)


def test_uniform_without_replacement_is_a_uniform_subset():
    n, m, repeats = 12, 5, 3000
    draws = many_draws(UniformSampler(n, replacement=False), m, repeats)
    assert all(len(set(row)) == m for row in draws)
    assert draws.min() >= 1 and draws.max() <= n
    inclusion = np.bincount(draws.ravel(), minlength=n + 1)[1:] / repeats
    np.testing.assert_allclose(inclusion, m / n, atol=0.04)  # sd ~0.009
    first = np.bincount(draws[:, 0], minlength=n + 1)[1:] / repeats
    assert total_variation(first, np.full(n, 1 / n)) < 0.06


def successive_sampling_inclusion(q, m):
    """Exact inclusion probabilities of drawing ``m`` items without
    replacement, each draw proportional to ``q`` among the items left."""
    n = len(q)
    incl = np.zeros(n)
    for seq in itertools.permutations(range(n), m):
        prob, left = 1.0, 1.0
        for j in seq:
            prob *= q[j] / left
            left -= q[j]
        for j in seq:
            incl[j] += prob
    return incl


def test_unigram_without_replacement_is_successive_sampling():
    counts = np.array([0, 1, 2, 4, 8, 0, 3])
    sampler = UnigramSampler(counts, alpha=1.0, replacement=False)
    m, repeats = 3, 4000
    draws = many_draws(sampler, m, repeats)
    assert all(len(set(row)) == m for row in draws)
    assert not np.isin(draws, [0, 5]).any()
    q = unigram_target(counts, 1.0)[1:]
    expected = successive_sampling_inclusion(q, m)
    inclusion = np.bincount(draws.ravel() - 1, minlength=len(q)) / repeats
    np.testing.assert_allclose(inclusion, expected, atol=0.04)
    # The first draw follows q exactly (Gumbel-max).
    first = np.bincount(draws[:, 0] - 1, minlength=len(q)) / repeats
    assert total_variation(first, q) < 0.04


def test_probability_of_given_indices():
    uni = UniformSampler(8)
    np.testing.assert_allclose(uni.probability(tf.constant([0, 1, 8, 9])).numpy(), [0, 1 / 8, 1 / 8, 0])
    gram = UnigramSampler(COUNTS, alpha=0.5)
    idx = np.arange(len(COUNTS))
    np.testing.assert_allclose(gram.probability(tf.constant(idx)).numpy(), unigram_target(COUNTS, 0.5), rtol=1e-6)
    assert gram.probability(tf.constant([len(COUNTS)])).numpy()[0] == 0.0


# ------------------------------------------------- seeds, shapes, in-graph


@pytest.mark.parametrize(
    "sampler",
    [UniformSampler(1000), UniformSampler(1000, False), UnigramSampler(COUNTS), UnigramSampler(COUNTS, 0.75, False)],
    ids=["uniform", "uniform-norepl", "unigram", "unigram-norepl"],
)
def test_same_seed_same_draws_and_new_step_new_draws(sampler):
    m = 5 if sampler.num_items < 100 else 300
    a, qa = sampler.sample(m, seed(1))
    b, _ = sampler.sample(m, seed(1))
    c, _ = sampler.sample(m, seed(2))
    d, _ = sampler.sample(m, seed(1, base=7))
    assert a.shape == (m,) and a.dtype == tf.int32 and qa.shape == (m,) and qa.dtype == tf.float32
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    assert not np.array_equal(a.numpy(), d.numpy())
    # Identical inside a compiled function: no host round trip, same draws.
    graph = tf.function(lambda s: sampler.sample(m, s))(seed(1))[0]
    np.testing.assert_array_equal(graph.numpy(), a.numpy())


def test_large_catalogue_with_replacement_draws_in_graph():
    sampler = UnigramSampler(np.arange(1_000_001) % 7)
    ids, probs = tf.function(lambda s: sampler.sample(3000, s))(seed(0))
    assert ids.shape == (3000,) and int(tf.reduce_min(ids)) >= 1
    assert np.all(np.asarray(ids) % 7 != 0)  # count-0 items never drawn
    assert float(tf.reduce_min(probs)) > 0


# ------------------------------------------------------------ serialization


def rebuilt(sampler):
    """``sampler`` through Keras serialization and JSON, then its weights."""
    config = json.loads(json.dumps(tf.keras.layers.serialize(sampler)))
    again = tf.keras.layers.deserialize(config)
    assert type(again) is type(sampler) and again is not sampler
    again.set_weights(sampler.get_weights())
    return again


@pytest.mark.parametrize(
    "sampler",
    [UniformSampler(10), UniformSampler(10, False), UnigramSampler(COUNTS, 0.5), UnigramSampler(COUNTS, 0.75, False)],
    ids=["uniform", "uniform-norepl", "unigram", "unigram-norepl"],
)
def test_config_and_weights_round_trip_to_identical_draws(sampler):
    again = rebuilt(sampler)
    assert again.get_config() == sampler.get_config()
    assert again.num_available == sampler.num_available
    for step in range(3):
        ours, theirs = sampler.sample(5, seed(step)), again.sample(5, seed(step))
        for a, b in zip(ours, theirs):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    idx = tf.range(sampler.num_items + 2)
    np.testing.assert_array_equal(again.probability(idx).numpy(), sampler.probability(idx).numpy())


def test_unigram_counts_are_weights_not_config():
    sampler = UnigramSampler(np.arange(5001) % 7, alpha=0.5, replacement=False)
    config = sampler.get_config()
    assert {k: config[k] for k in ("num_items", "alpha", "replacement")} == {
        "num_items": 5000, "alpha": 0.5, "replacement": False,
    }
    assert "counts" not in config and len(json.dumps(config)) < 300  # no 5001-long list
    assert [w.shape for w in sampler.non_trainable_weights] == [(5001,)] * 4 and not sampler.trainable_weights
    np.testing.assert_array_equal(sampler.counts, np.arange(5001) % 7)
    np.testing.assert_allclose(sampler.probabilities, unigram_target(np.arange(5001) % 7, 0.5))
    # Built from the config alone, every item counts once until weights are set.
    fresh = UnigramSampler.from_config(config)
    assert fresh.num_available == 5000
    np.testing.assert_allclose(fresh.probabilities, np.concatenate([[0.0], np.full(5000, 1 / 5000)]))
    fresh.set_weights(sampler.get_weights())
    assert fresh.num_available == sampler.num_available == 5000 - 5000 // 7
    np.testing.assert_array_equal(fresh.probabilities, sampler.probabilities)


def test_a_checkpoint_carries_the_counts(tmp_path):
    sampler = UnigramSampler(COUNTS, alpha=1.0)
    again = UnigramSampler.from_config(sampler.get_config())
    path = tf.train.Checkpoint(sampler=sampler).write(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(sampler=again).read(path).assert_consumed()
    np.testing.assert_array_equal(again.counts, COUNTS)
    np.testing.assert_array_equal(again.sample(50, seed(4))[0].numpy(), sampler.sample(50, seed(4))[0].numpy())


# ------------------------------------------------------------------ errors


def test_without_replacement_more_than_catalogue_names_both_numbers():
    with pytest.raises(ValueError) as err:
        UniformSampler(1682, replacement=False).sample(5000, seed(0))
    assert str(err.value).startswith("num=5000 exceeds the 1682 items in the catalogue with replacement=False")


def test_unigram_without_replacement_counts_only_drawable_items():
    sampler = UnigramSampler(COUNTS, replacement=False)  # 6 items with count > 0
    sampler.check_num(6)
    message = r"num_negatives=7 exceeds the 6 items with a non-zero training count with replacement=False"
    with pytest.raises(ValueError, match=message):
        sampler.check_num(7, "num_negatives")
    UnigramSampler(COUNTS, replacement=True).check_num(10_000)  # with replacement any number is fine


def test_bad_arguments():
    with pytest.raises(ValueError, match="alpha must be >= 0, got -1"):
        UnigramSampler(COUNTS, alpha=-1)
    with pytest.raises(ValueError, match="no item with a non-zero count"):
        UnigramSampler([3, 0, 0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        UnigramSampler([0, 1, -2])
    with pytest.raises(ValueError, match="num_items must be > 0"):
        UniformSampler(0)
    with pytest.raises(ValueError, match="counts covers 8 items, expected num_items=3"):
        UnigramSampler(COUNTS, num_items=3)
    with pytest.raises(ValueError, match="give counts, or num_items > 0"):
        UnigramSampler()
