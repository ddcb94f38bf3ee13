"""The IRNS loss over whole sequences: every position of a user's sequence predicts the next item.

A sequential user tower (:class:`~tfrs_irns.layers.pooling.CausalTransformer`)
reads a user's items oldest first; its output at position ``t`` has seen items
``<= t`` only. Training every position at once — position ``t``'s query
against item ``t + 1`` — turns one causal pass over a sequence of ``L`` items
into ``L`` training examples (SASRec's training), where example-level training
would cut ``L`` windows and run ``L`` passes.

:func:`sequence_retrieval_loss` is that loss with IRNS's negatives. A batch is
``B`` sequences of ``L`` positions, ``P`` of them real (not padding). Row ``r``
(a real position) is scored against one shared candidate set:

* the ``B * L`` in-batch columns — every position's own positive (padding
  columns masked): each real row meets the other ``P - 1`` positives;
* ``M`` items sampled once per step (the task's sampler and step counter, so
  the draws are those of :class:`~tfrs_irns.tasks.irns.IRNSRetrieval`) and
  shared by every position.

**logQ for the mixture.** The candidate set holds ``P`` draws of the training
distribution ``p`` (the real positions' positives) and ``M`` draws of the
sampler's ``q``: item ``j``'s expected number of copies is
``E_j = P * p_j + M * q_j``, and every column — the label too — is shifted by
``-log E_j`` (the standard correction of :class:`IRNSRetrieval`, with ``P``,
the real positions, in place of the example count ``B``).

**Masks, all by item id or position (a dense ``[B L, B L + M]`` compare, static
shapes, no sort: XLA-friendly and cheap next to the logits it masks).**
Padding columns; with ``remove_accidental_hits``, every column holding the
row's own positive (an in-batch duplicate or a sampled copy), the label then
counted exactly once; padding rows add nothing. No position sees its own
future: that is the tower's causal mask, and the label of position ``t`` is
item ``t + 1``, never in its input.

The loss is the sum over real rows divided by the *global* ``P`` (summed over
replicas), so replica gradients add up to the global mean, as
:class:`IRNSRetrieval`'s do. In-batch columns are this replica's positions
(no cross-replica gather).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from tfrs_irns.tasks.irns import IRNSRetrieval, on_replica_device
from tfrs_irns.tasks.kernels import log_count, masked_logsumexp

#: The task modes sequence training supports (``full`` would be ``[B L, N]`` logits).
SEQUENCE_MODES = ("in_batch", "random", "mixed")


def sequence_retrieval_loss(
    task: IRNSRetrieval,
    queries: tf.Tensor,
    targets: tf.Tensor,
    target_embeddings: tf.Tensor,
    training: Any = False,
) -> tf.Tensor:
    """The sequence IRNS loss (see the module doc), a scalar.

    Args:
      task: the run's :class:`IRNSRetrieval`: its mode (``in_batch``, ``random``
        or ``mixed``), ``num_negatives``, sampler and step, ``item_probabilities``
        (``p``), ``logq``, ``remove_accidental_hits``, temperature and candidate
        tower are used (its ``standard`` logQ; ``refined`` and hard negatives are not supported).
      queries: ``[B, L, d]``, position ``t``'s query (causal).
      targets: int ``[B, L]``, position ``t``'s next item; 0 = padding.
      target_embeddings: ``[B, L, d]``, the candidate tower's embeddings of ``targets``.
      training: advance the task's sampling step (as its own ``call`` does).
    """
    if task.mode not in SEQUENCE_MODES:
        raise ValueError(f"sequence training needs task mode {' / '.join(SEQUENCE_MODES)}, got {task.mode!r}")
    dim = tf.shape(queries)[-1]
    ids = tf.reshape(tf.cast(targets, tf.int32), [-1])  # [R], R = B * L
    rows = tf.shape(ids)[0]
    valid = ids > 0
    q = tf.reshape(queries, tf.stack([rows, dim]))
    if task.temperature != 1.0:
        q = q / task.temperature
    positives = tf.reshape(target_embeddings, tf.stack([rows, dim]))
    real = tf.reduce_sum(tf.cast(valid, tf.float32))  # P, this replica's real positions

    # Read the step before advancing it: this call draws with `step` (as IRNSRetrieval).
    step = task.step.read_value()
    if training is not None and training is not False:
        task.step.assign_add(tf.cast(training, tf.int64))
    in_batch = task.mode in ("in_batch", "mixed")
    sampled = task.mode in ("random", "mixed")
    parts, col_ids, col_valid = [], [], []
    if in_batch:
        parts.append(positives)
        col_ids.append(ids)
        col_valid.append(valid)
    if sampled:
        neg_ids, _ = task.sample_negatives(step)
        parts.append(tf.cast(task._embed(neg_ids, training), positives.dtype))
        col_ids.append(neg_ids)
        col_valid.append(tf.ones_like(neg_ids, tf.bool))
    columns = tf.concat(parts, axis=0)
    col_ids = tf.concat(col_ids, axis=0)
    col_valid = tf.concat(col_valid, axis=0)

    # The big product in the embeddings' dtype, float32 from there on (as IRNSRetrieval).
    logits = tf.cast(tf.matmul(q, columns, transpose_b=True), tf.float32)  # [R, C]
    label = tf.reduce_sum(tf.cast(q, tf.float32) * tf.cast(positives, tf.float32), axis=-1)
    if q.dtype != tf.float32:  # rounded as the matmul rounds its output
        label = tf.cast(tf.cast(label, q.dtype), tf.float32)
    if task.logq:
        m = float(task.num_negatives) if sampled else 0.0
        p_draws = real if in_batch else tf.zeros([])
        p = task._item_probabilities
        sampler = task.sampler if sampled else None

        def expected(items: tf.Tensor) -> tf.Tensor:
            count = p_draws * tf.gather(p, items) if p is not None else tf.zeros(tf.shape(items))
            return count + m * sampler.probability(items) if sampler is not None else count

        logits -= log_count(expected(col_ids))[None, :]
        label -= log_count(expected(ids))

    # What leaves each row's softmax of negatives: padding columns, the row's own
    # column (its label, added once below) and, with hit removal, every copy of its
    # positive (the own column is one). Dense id compares: static shapes.
    if task.remove_accidental_hits:
        removed = tf.equal(ids[:, None], col_ids[None, :])
    else:
        removed = tf.zeros([rows, tf.shape(col_ids)[0]], tf.bool)
        if in_batch:
            removed = tf.pad(tf.eye(rows, dtype=tf.bool), [[0, 0], [0, tf.shape(col_ids)[0] - rows]])
    removed |= ~col_valid[None, :]
    # -log P(label) = log(exp(label) + sum_neg exp) - label = softplus(lse_neg - label);
    # masked_logsumexp reuses its forward exp for the gradient (one [R, C] pass back).
    row_loss = tf.nn.softplus(masked_logsumexp(logits, removed) - label)
    total = tf.reduce_sum(tf.where(valid, row_loss, tf.zeros_like(row_loss)))

    replica = tf.distribute.get_replica_context()
    global_real = real
    if replica is not None and replica.num_replicas_in_sync > 1:
        global_real = replica.all_reduce(tf.distribute.ReduceOp.SUM, on_replica_device(real))
    return total / tf.maximum(global_real, 1.0)
