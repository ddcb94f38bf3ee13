"""The IRNS loss's numerical kernels against TensorFlow's dense formulation and numpy."""

import tfrs_irns  # noqa: F401,I001  (first: pins Keras 2 before anything touches tf.keras)

import numpy as np
import pytest
import tensorflow as tf

from tfrs_irns.tasks.kernels import (
    MASK_VALUE,
    MIN_EXPECTED_COUNT,
    hit_mask,
    log_count,
    masked_logsumexp,
    rowwise_dot,
    softmax_terms,
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


def cross_entropy_oracle(logits, shift, mask, labels):
    """float64 numpy: per row, logsumexp of ``logits - shift`` over the unmasked
    columns, and the label's raw logit."""
    x = logits.astype(np.float64) - shift[None, :]
    x = np.where(mask, -np.inf, x)
    top = x.max(axis=1, keepdims=True)
    lse = np.log(np.exp(x - top).sum(axis=1)) + top[:, 0]
    return lse, logits[np.arange(len(labels)), labels].astype(np.float64)


def test_softmax_terms_match_a_float64_oracle_and_tensorflow_gradients():
    rng = np.random.default_rng(6)
    logits = rng.normal(size=(5, 7)).astype(np.float32) * 4
    shift = rng.normal(size=7).astype(np.float32)
    mask = rng.random((5, 7)) < 0.3
    labels = np.array([0, 3, 6, 2, 2], np.int32)
    x = tf.constant(logits)
    weights = tf.constant(rng.uniform(size=5), tf.float32)
    label_weights = tf.constant(rng.uniform(size=5), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        lse, picked = softmax_terms(x, tf.constant(shift), tf.constant(mask), tf.constant(labels))
        ours = tf.reduce_sum(lse * weights) + tf.reduce_sum(picked * label_weights)
        ref_lse = tf.reduce_logsumexp(tf.where(mask, -np.inf, x - shift[None, :]), axis=1)
        ref_picked = tf.gather(x, labels[:, None], batch_dims=1)[:, 0]
        ref = tf.reduce_sum(ref_lse * weights) + tf.reduce_sum(ref_picked * label_weights)
    want_lse, want_picked = cross_entropy_oracle(logits, shift, mask, labels)
    np.testing.assert_allclose(lse.numpy(), want_lse, rtol=1e-6)
    np.testing.assert_array_equal(picked.numpy(), want_picked)  # the same float, not a recomputation
    grad = tape.gradient(ours, x).numpy()
    np.testing.assert_allclose(grad, tape.gradient(ref, x).numpy(), atol=1e-6)
    # Masked entries get no gradient, except a masked label through the pick.
    label_cells = np.zeros_like(mask)
    label_cells[np.arange(5), labels] = True
    np.testing.assert_array_equal(grad[mask & ~label_cells], 0.0)


def test_softmax_terms_without_options_is_the_plain_logsumexp():
    logits = tf.constant(np.random.default_rng(8).normal(size=(3, 4)).astype(np.float32))
    lse, picked = softmax_terms(logits)
    assert picked is None
    np.testing.assert_allclose(lse.numpy(), tf.reduce_logsumexp(logits, axis=1).numpy(), rtol=1e-6)


def test_softmax_terms_compile_with_xla_and_give_the_same_values_and_gradients():
    rng = np.random.default_rng(9)
    logits = tf.constant(rng.normal(size=(6, 11)).astype(np.float32) * 3)
    shift = tf.constant(rng.normal(size=11).astype(np.float32))
    ids = tf.constant(rng.integers(0, 4, 6).astype(np.int32))
    cols = tf.constant(rng.integers(0, 4, 11).astype(np.int32))
    labels = tf.constant(rng.integers(0, 11, 6).astype(np.int32))

    def fn(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            lse, picked = softmax_terms(x, shift, hit_mask(ids, cols), labels)
            loss = tf.reduce_sum(tf.nn.softplus(lse - picked))
        return loss, tape.gradient(loss, x)

    plain = tf.function(fn)(logits)
    compiled = tf.function(fn, jit_compile=True)(logits)
    for a, b in zip(plain, compiled):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-7)


# -------------------------------------------------------------- hit mask


@pytest.mark.parametrize(
    "rows,cols",
    [
        ([], [1, 2]),
        ([1, 2], []),
        ([3, 1, 3], [1, 3, 3, 2, 1]),
        ([5, 5, 5], [5, 5]),
        ([1, 2, 3], [4, 5, 6, 7]),  # no matches
    ],
)
def test_hit_mask_is_the_double_loop(rows, cols):
    want = np.array([[r == c for c in cols] for r in rows], bool).reshape(len(rows), len(cols))
    got = hit_mask(tf.constant(rows, tf.int32), tf.constant(cols, tf.int32)).numpy()
    np.testing.assert_array_equal(got, want)


def test_hit_mask_has_a_static_shape_in_a_compiled_function():
    spec = [tf.TensorSpec([4], tf.int64), tf.TensorSpec([9], tf.int64)]
    concrete = tf.function(hit_mask, input_signature=spec, jit_compile=True).get_concrete_function()
    assert concrete.structured_outputs.shape.as_list() == [4, 9]
    rows, cols = np.array([1, 2, 3, 1]), np.array([1, 1, 9, 3, 0, 2, 2, 7, 1])
    np.testing.assert_array_equal(concrete(tf.constant(rows), tf.constant(cols)).numpy(), rows[:, None] == cols[None])


# ------------------------------------------------------ small shared pieces


def test_rowwise_dot_is_the_diagonal_of_the_matmul():
    rng = np.random.default_rng(10)
    a, b = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(rowwise_dot(tf.constant(a), tf.constant(b)).numpy(), np.diag(a @ b.T), rtol=1e-6)


def test_log_count_floors_impossible_items():
    out = log_count(tf.constant([0.0, 1e-12, 2.5], tf.float32)).numpy()
    np.testing.assert_allclose(out, np.log([MIN_EXPECTED_COUNT, MIN_EXPECTED_COUNT, 2.5]), rtol=1e-6)
    assert np.all(np.isfinite(out))
