"""Numerical kernels of the IRNS loss: row-wise logsumexp, hit masks, small pieces.

A step of :class:`~tfrs_irns.tasks.IRNSRetrieval` scores ``B`` queries
against ``C = B + M`` candidate columns (``[600, 3600]`` with the paper's
numbers). Beside the three matmuls, what the step spends is passes over that
``[B, C]`` matrix: the logQ shift, the mask, the softmax's ``exp``, and as
many again backwards. The kernels here keep those passes to one forward and
one backward, with shapes known when the step is traced, so the whole step
compiles with XLA (``jit_compile=True``), where they fuse into the matmul's
neighbours:

* :func:`softmax_terms` — per-row ``logsumexp`` of the shifted, masked logits
  and each row's label logit picked from the *same* matrix, with a
  hand-written gradient that reuses the forward ``exp``;
* :func:`hit_mask` — which (row, column) pairs share an item id: a dense
  compare of ids, so the mask never depends on score arithmetic (on a GPU
  the matmul may round in TF32, and only a mask from ids removes hits
  exactly then);
* :func:`masked_logsumexp`, :func:`rowwise_dot` and :func:`log_count` —
  small shared pieces.

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


def masked_logsumexp(logits: tf.Tensor, mask: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Per-row ``logsumexp`` of ``logits [B, C]`` over the columns where
    ``mask`` is False.

    The value of ``tf.reduce_logsumexp(tf.where(mask, -inf, logits), 1)``,
    with a hand-written gradient that reuses the forward pass's ``exp``: one
    pass over ``[B, C]`` backwards instead of several, and no gradient
    through the mask (:func:`softmax_terms` without shift or labels). Masked
    entries count as :data:`MASK_VALUE`, so a fully masked row gives a huge
    negative value, not ``-inf``.
    """
    return softmax_terms(logits, mask=mask)[0]


def hit_mask(row_ids: tf.Tensor, col_ids: tf.Tensor) -> tf.Tensor:
    """Bool ``[R, C]``: ``row_ids[i] == col_ids[j]``.

    A dense compare of ids, static in shape (XLA compiles it; a sort and a
    search for the few matches would give a data-dependent number of
    pairs). Under XLA it fuses into the softmax's pass over ``[R, C]`` and
    costs no memory of its own.
    """
    return tf.equal(row_ids[:, tf.newaxis], col_ids[tf.newaxis, :])


def softmax_terms(
    logits: tf.Tensor,
    shift: Optional[tf.Tensor] = None,
    mask: Optional[tf.Tensor] = None,
    labels: Optional[tf.Tensor] = None,
) -> tuple[tf.Tensor, Optional[tf.Tensor]]:
    """The two terms of a softmax cross-entropy, from one ``[B, C]`` matrix.

    Returns ``lse [B]``, the ``logsumexp`` over the columns where ``mask`` is
    False of ``logits - shift[None, :]`` (the logQ-corrected scores), and,
    when ``labels [B]`` is given, ``logits[i, labels[i]]`` — the label's
    *unshifted* score read from the same matrix, so it rounds exactly as the
    matmul rounded the columns it competes with (whatever the matmul's
    precision: TF32 on a GPU, bfloat16 under mixed precision). Without
    ``labels`` the second value is None.

    The gradient reuses the forward ``exp``: one pass over ``[B, C]`` for the
    ``logsumexp`` plus ``B`` scattered entries for the labels; nothing flows
    to ``shift`` or ``mask`` (constants of the step). Masked entries count as
    :data:`MASK_VALUE`, so a fully masked row gives a huge negative value,
    not ``-inf``.
    """
    if labels is None:
        return _softmax_terms(logits, shift, mask, None)(logits), None
    return _softmax_terms(logits, shift, mask, labels)(logits)


def _softmax_terms(logits: tf.Tensor, shift: Optional[tf.Tensor], mask: Optional[tf.Tensor],
                   labels: Optional[tf.Tensor]) -> Any:
    """The custom-gradient function of :func:`softmax_terms` for these
    options (a closure: ``shift``, ``mask`` and ``labels`` get no gradient)."""

    @tf.custom_gradient
    def terms(logits: tf.Tensor) -> tuple[Any, Any]:
        scores = logits if shift is None else logits - shift[tf.newaxis, :]
        if mask is not None:
            scores = tf.where(mask, MASK_VALUE, scores)
        top = tf.stop_gradient(tf.reduce_max(scores, axis=1, keepdims=True))
        exp = tf.exp(scores - top)
        total = tf.reduce_sum(exp, axis=1)
        lse = tf.math.log(total) + top[:, 0]
        if labels is None:
            def grad_lse(d_lse: tf.Tensor) -> tf.Tensor:
                # Masked entries have exp == 0: their gradient is zero, no `where`.
                return exp * (d_lse / total)[:, tf.newaxis]

            return lse, grad_lse
        index = tf.stack([tf.range(tf.shape(labels)[0], dtype=labels.dtype), labels], axis=1)

        def grad(d_lse: tf.Tensor, d_picked: tf.Tensor) -> tf.Tensor:
            # B scattered entries, not a [B, C] one-hot.
            return tf.tensor_scatter_nd_add(exp * (d_lse / total)[:, tf.newaxis], index, d_picked)

        return (lse, tf.gather_nd(logits, index)), grad

    return terms
