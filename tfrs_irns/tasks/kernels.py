"""Numerical kernels of the IRNS loss: row-wise logsumexp and sparse matches.

A step of :class:`~tfrs_irns.tasks.IRNSRetrieval` scores ``B`` queries
against ``C = B + M`` candidate columns (``[600, 3600]`` with the paper's
numbers). Beside the three matmuls, what the step spends on a CPU is passes
over that ``[B, C]`` matrix: the softmax's ``exp``, a mask, a ``where``, and
as many again backwards. The kernels here keep those passes to one forward and
one backward:

* :func:`masked_logsumexp` — per-row ``logsumexp`` with a hand-written
  gradient that reuses the forward ``exp``;
* :func:`logsumexp_excluding` — the same without a few listed entries, by
  subtracting their terms instead of masking ``[B, C]``;
* :func:`equal_pairs` — which (row, column) pairs share a key (the accidental
  hits), by sorting instead of a ``[B, C]`` compare;
* :func:`rowwise_dot` and :func:`log_count` — small shared pieces.

Each is plain TensorFlow, usable on its own and tested against
``tf.reduce_logsumexp`` and numpy in ``tests/test_kernels.py``.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import tensorflow as tf

# Masked logits: TFRS's "minus infinity", finite so a row never becomes NaN.
MASK_VALUE = float(np.finfo(np.float32).min / 100.0)
# Floor of the expected count in the logQ term, so an item nobody could have
# drawn (an OOV positive at evaluation) gets a large, finite boost, not +inf.
MIN_EXPECTED_COUNT = 1e-10


def log_count(expected: tf.Tensor) -> tf.Tensor:
    """``log(expected)``, floored at ``log(MIN_EXPECTED_COUNT)``: the logQ term
    of items whose expected number of copies in the candidate set is
    ``expected``."""
    return tf.math.log(tf.maximum(expected, MIN_EXPECTED_COUNT))


def rowwise_dot(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """``[n]`` dot products of the rows of ``a [n, d]`` and ``b [n, d]``:
    ``n`` scores without a ``[n, n]`` matmul."""
    return tf.reduce_sum(a * b, axis=1)


def equal_pairs(row_keys: tf.Tensor, col_keys: tf.Tensor) -> tf.Tensor:
    """All ``(i, j)`` with ``row_keys[i] == col_keys[j]``, as int32 ``[K, 2]``.

    Sorted by ``i``, then by ``j`` (a stable sort keeps equal keys in column
    order); ``K`` may be 0. Sort + binary search, ``O((R + C) log C + K log
    R)``: matches are few, and a broadcast ``tf.equal`` over ``[R, C]`` costs
    as much as a matmul here. Every op has a GPU kernel, so a GPU step stays
    on the device.
    """
    order = tf.argsort(col_keys, stable=True)
    sorted_keys = tf.gather(col_keys, order)
    lo = tf.searchsorted(sorted_keys, row_keys, side="left", out_type=tf.int32)
    hi = tf.searchsorted(sorted_keys, row_keys, side="right", out_type=tf.int32)
    rows, positions = _concatenated_ranges(lo, hi)
    return tf.stack([rows, tf.gather(order, positions)], axis=1)


def _concatenated_ranges(starts: tf.Tensor, limits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``range(starts[i], limits[i])`` for every ``i``, concatenated: the
    ``i`` each value comes from, and the values (int32 ``[K]`` each).

    What ``tf.ragged.range`` gives as ``value_rowids`` and ``flat_values``,
    but ``RaggedRange`` has only a CPU kernel: on a GPU the train step would
    copy to the host and back. Here every op has a GPU kernel: output
    position ``k`` belongs to the first range whose cumulative end exceeds
    ``k`` (a binary search in the cumulative counts; empty ranges are never
    found) and holds that range's start plus ``k``'s offset into it.
    """
    counts = limits - starts
    ends = tf.cumsum(counts)
    # reduce_sum, not ends[-1]: no rows at all gives K = 0.
    k = tf.range(tf.reduce_sum(counts), dtype=tf.int32)
    rows = tf.searchsorted(ends, k, side="right", out_type=tf.int32)
    # Per range: its first value minus its first position in the output.
    shift = starts - (ends - counts)
    return rows, k + tf.gather(shift, rows)


@tf.custom_gradient
def _logsumexp(logits: tf.Tensor) -> tuple[tf.Tensor, Any]:
    top = tf.stop_gradient(tf.reduce_max(logits, axis=1, keepdims=True))
    exp = tf.exp(logits - top)
    total = tf.reduce_sum(exp, axis=1)

    def grad(upstream: tf.Tensor) -> tf.Tensor:
        return exp * (upstream / total)[:, tf.newaxis]

    return tf.math.log(total) + top[:, 0], grad


@tf.custom_gradient
def _masked_logsumexp(logits: tf.Tensor, mask: tf.Tensor) -> tuple[tf.Tensor, Any]:
    masked = tf.where(mask, MASK_VALUE, logits)
    top = tf.reduce_max(masked, axis=1, keepdims=True)
    exp = tf.exp(masked - top)
    total = tf.reduce_sum(exp, axis=1)

    def grad(upstream: tf.Tensor) -> tuple[tf.Tensor, None]:
        # Masked entries have exp == 0: their gradient is zero, no `where`.
        return exp * (upstream / total)[:, tf.newaxis], None

    return tf.math.log(total) + top[:, 0], grad


@tf.custom_gradient
def _sum_exp(logits: tf.Tensor, top: tf.Tensor) -> tuple[tf.Tensor, Any]:
    """``sum_j exp(logits[:, j] - top)``, its gradient from the forward ``exp``
    (none for ``top``, a stopped shift)."""
    exp = tf.exp(logits - top[:, tf.newaxis])

    def grad(upstream: tf.Tensor) -> tuple[tf.Tensor, None]:
        return exp * upstream[:, tf.newaxis], None

    return tf.reduce_sum(exp, axis=1), grad


def logsumexp_excluding(logits: tf.Tensor, pairs: tf.Tensor, excluded_logits: tf.Tensor) -> tf.Tensor:
    """Per-row ``logsumexp`` of ``logits [B, C]`` without the entries
    ``pairs [K, 2]`` (row, column), whose values are ``excluded_logits [K]``.

    Sums every entry, then subtracts the excluded ones' terms: no ``[B, C]``
    mask, no ``where``. When ``excluded_logits`` are recomputed from the
    embeddings (not gathered from ``logits``) their gradients cancel the
    dense ones through the embeddings, again without touching ``[B, C]``.
    The subtraction cancels badly only when the excluded terms dominate a
    row; for accidental hits, whose logit equals the label's, the loss then
    is ``softplus`` of a hugely negative number: ~0 either way. The
    remainder is floored at a tiny positive value so it never reaches
    ``log(0)``.
    """
    top = tf.stop_gradient(tf.reduce_max(logits, axis=1))
    total = _sum_exp(logits, top)
    rows = pairs[:, 0]
    removed = tf.math.unsorted_segment_sum(
        tf.exp(excluded_logits - tf.gather(top, rows)), rows, num_segments=tf.shape(logits)[0]
    )
    return tf.math.log(tf.maximum(total - removed, 1e-30)) + top


def masked_logsumexp(logits: tf.Tensor, mask: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Per-row ``logsumexp`` of ``logits [B, C]`` over the columns where
    ``mask`` is False.

    The value of ``tf.reduce_logsumexp(tf.where(mask, -inf, logits), 1)``,
    with a hand-written gradient that reuses the forward pass's ``exp``: one
    pass over ``[B, C]`` backwards instead of several, and no gradient
    through the mask. With the wide ``[600, 3600]`` IRNS logits on a CPU,
    these passes are what the step spends beside its three matmuls. Masked
    entries count as :data:`MASK_VALUE`, so a fully masked row gives a huge
    negative value, not ``-inf``.
    """
    if mask is None:
        return _logsumexp(logits)
    return _masked_logsumexp(logits, mask)
