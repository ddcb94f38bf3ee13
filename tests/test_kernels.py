"""The IRNS loss's numerical kernels against TensorFlow's dense formulation and numpy."""

import tfrs_irns  # noqa: F401,I001  (first: pins Keras 2 before anything touches tf.keras)

import numpy as np
import pytest
import tensorflow as tf

from tfrs_irns.tasks.kernels import (
    MASK_VALUE,
    MIN_EXPECTED_COUNT,
    _concatenated_ranges,
    equal_pairs,
    log_count,
    logsumexp_excluding,
    masked_logsumexp,
    rowwise_dot,
)


def value_and_gradient(fn, logits, weights):
    """``fn(logits)`` and the gradient of its weighted sum (a generic upstream)."""
    with tf.GradientTape() as tape:
        tape.watch(logits)
        out = fn(logits)
        total = tf.reduce_sum(out * weights)
    return out.numpy(), tape.gradient(total, logits).numpy()


# ------------------------------------------------------------ logsumexp


@pytest.mark.parametrize("with_mask", [False, True])
def test_masked_logsumexp_value_and_gradient_match_tensorflow(with_mask):
    rng = np.random.default_rng(4)
    logits = tf.constant(rng.normal(size=(6, 9)).astype(np.float32) * 3)
    mask = tf.constant(rng.random((6, 9)) < 0.3) if with_mask else None
    weights = tf.constant(rng.uniform(size=6), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(logits)
        ours = masked_logsumexp(logits, mask)
        ref = tf.reduce_logsumexp(logits if mask is None else tf.where(mask, -np.inf, logits), axis=1)
        lo, lr = tf.reduce_sum(ours * weights), tf.reduce_sum(ref * weights)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(lo, logits).numpy(), tape.gradient(lr, logits).numpy(), atol=1e-6)


def test_masked_logsumexp_matches_numpy_on_large_logits():
    # exp(300) overflows float32: the kernel must shift by the row maximum.
    logits = np.array([[300.0, 299.0, -5.0], [0.0, 1.0, 2.0]], np.float32)
    mask = np.array([[False, True, False], [False, False, False]])
    expected = [300.0 + np.log1p(np.exp(-305.0)), np.log(np.exp([0.0, 1.0, 2.0]).sum())]
    np.testing.assert_allclose(masked_logsumexp(tf.constant(logits), tf.constant(mask)).numpy(), expected, rtol=1e-6)


def test_a_fully_masked_row_is_huge_negative_not_nan():
    logits = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    mask = tf.constant([[True, True], [False, True]])
    value, grad = value_and_gradient(lambda x: masked_logsumexp(x, mask), logits, tf.ones([2]))
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(value, [MASK_VALUE + np.log(2.0), 3.0], rtol=1e-6)
    np.testing.assert_array_equal(grad[1], [1.0, 0.0])  # all of row 1's mass on its one column


def test_logsumexp_excluding_matches_the_masked_value():
    rng = np.random.default_rng(6)
    logits = tf.constant(rng.normal(size=(5, 7)).astype(np.float32) * 4)
    pairs = tf.constant([[0, 1], [0, 4], [2, 0], [4, 6], [4, 2]], tf.int32)
    mask = tf.scatter_nd(pairs, tf.ones([5], tf.bool), [5, 7])
    ours = logsumexp_excluding(logits, pairs, tf.gather_nd(logits, pairs))
    ref = tf.reduce_logsumexp(tf.where(mask, -np.inf, logits), axis=1)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-5)


def test_logsumexp_excluding_gradient_matches_the_dense_mask():
    # With the excluded logits gathered from `logits`, their two gradient
    # paths (the dense sum and the subtracted terms) cancel: the gradient is
    # the masked softmax, zero on the excluded entries.
    rng = np.random.default_rng(7)
    logits = tf.constant(rng.normal(size=(4, 6)).astype(np.float32) * 2)
    pairs = tf.constant([[0, 0], [1, 3], [1, 5], [3, 2]], tf.int32)
    mask = tf.scatter_nd(pairs, tf.ones([4], tf.bool), [4, 6])
    weights = tf.constant(rng.uniform(size=4), tf.float32)
    ours, ours_grad = value_and_gradient(
        lambda x: logsumexp_excluding(x, pairs, tf.gather_nd(x, pairs)), logits, weights
    )
    ref, ref_grad = value_and_gradient(
        lambda x: tf.reduce_logsumexp(tf.where(mask, -np.inf, x), axis=1), logits, weights
    )
    np.testing.assert_allclose(ours, ref, rtol=1e-5)
    np.testing.assert_allclose(ours_grad, ref_grad, atol=1e-6)
    np.testing.assert_allclose(ours_grad[mask.numpy()], 0.0, atol=1e-6)


def test_logsumexp_excluding_nothing_is_the_plain_logsumexp():
    logits = tf.constant(np.random.default_rng(8).normal(size=(3, 4)).astype(np.float32))
    none = tf.zeros([0, 2], tf.int32)
    ours = logsumexp_excluding(logits, none, tf.zeros([0]))
    np.testing.assert_allclose(ours.numpy(), tf.reduce_logsumexp(logits, axis=1).numpy(), rtol=1e-6)


# ----------------------------------------------------------- equal pairs


def brute_force_pairs(rows, cols):
    return [(i, j) for i in range(len(rows)) for j in range(len(cols)) if rows[i] == cols[j]]


@pytest.mark.parametrize(
    "rows,cols",
    [
        ([3, 1, 3, 7], [1, 3, 3, 5, 3, 1]),  # duplicates on both sides
        ([2, 4], [1, 3, 5]),  # no match at all
        ([5, 5, 5], [5]),
        ([], [1, 2]),
        ([1, 2], []),
    ],
    ids=["duplicates", "none", "one-column", "no-rows", "no-columns"],
)
def test_equal_pairs_matches_a_double_loop(rows, cols):
    pairs = equal_pairs(tf.constant(rows, tf.int32), tf.constant(cols, tf.int32)).numpy()
    assert pairs.dtype == np.int32 and pairs.shape == (len(brute_force_pairs(rows, cols)), 2)
    # Row-major order: by row, then by column.
    assert [tuple(p) for p in pairs] == brute_force_pairs(rows, cols)


def test_equal_pairs_on_random_keys_and_in_graph():
    rng = np.random.default_rng(9)
    rows, cols = rng.integers(0, 20, size=40), rng.integers(0, 20, size=70)
    graph = tf.function(equal_pairs)(tf.constant(rows), tf.constant(cols)).numpy()
    assert [tuple(p) for p in graph] == brute_force_pairs(rows.tolist(), cols.tolist())


def test_equal_pairs_with_unknown_shapes_and_rows_without_matches():
    # Rows without a match between, before and after rows with many, and
    # empty inputs, through one graph whose shapes are unknown at trace time.
    fn = tf.function(equal_pairs, input_signature=[tf.TensorSpec([None], tf.int32)] * 2)
    cases = [
        ([9, 4, 0, 4, 9, 2, 7], [4, 2, 4, 4, 8, 2, 4]),  # matches only in rows 1, 3, 5
        ([6, 6], [1, 2, 3]),  # rows but no match: K = 0
        ([], []),
        ([], [3, 3]),
        ([3, 3], []),
    ]
    for rows, cols in cases:
        pairs = fn(tf.constant(rows, tf.int32), tf.constant(cols, tf.int32)).numpy()
        assert pairs.shape == (len(brute_force_pairs(rows, cols)), 2)
        assert [tuple(p) for p in pairs] == brute_force_pairs(rows, cols)


def test_equal_pairs_on_many_duplicates():
    # Few distinct keys: long runs of equal columns, split across many rows.
    rng = np.random.default_rng(11)
    rows, cols = rng.integers(0, 3, size=50), rng.integers(0, 4, size=120)
    pairs = equal_pairs(tf.constant(rows), tf.constant(cols)).numpy()
    assert [tuple(p) for p in pairs] == brute_force_pairs(rows.tolist(), cols.tolist())


def test_concatenated_ranges_are_numpy_aranges_end_to_end():
    # The expansion behind equal_pairs: empty ranges, ranges not starting at 0.
    starts, limits = [0, 5, 5, 2, 7, 1], [3, 5, 8, 2, 9, 2]
    rows, values = _concatenated_ranges(tf.constant(starts), tf.constant(limits))
    np.testing.assert_array_equal(values.numpy(), np.concatenate([np.arange(a, b) for a, b in zip(starts, limits)]))
    np.testing.assert_array_equal(rows.numpy(), np.repeat(np.arange(6), np.subtract(limits, starts)))
    assert rows.dtype == values.dtype == tf.int32
    none = _concatenated_ranges(tf.zeros([0], tf.int32), tf.zeros([0], tf.int32))
    assert [t.shape.as_list() for t in none] == [[0], [0]]


# ------------------------------------------------------ small shared pieces


def test_rowwise_dot_is_the_diagonal_of_the_matmul():
    rng = np.random.default_rng(10)
    a, b = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(rowwise_dot(tf.constant(a), tf.constant(b)).numpy(), np.diag(a @ b.T), rtol=1e-6)


def test_log_count_floors_impossible_items():
    out = log_count(tf.constant([0.0, 1e-12, 2.5], tf.float32)).numpy()
    np.testing.assert_allclose(out, np.log([MIN_EXPECTED_COUNT, MIN_EXPECTED_COUNT, 2.5]), rtol=1e-6)
    assert np.all(np.isfinite(out))
