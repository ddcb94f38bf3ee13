"""The IRNS retrieval loss: in-batch positives plus shared random negatives.

eBay's "Personalized Embedding-based e-Commerce Recommendations" (arXiv
2102.06156) trains its two towers with "3000 negatives for each positive
item, and 600 as our batch size". The efficient reading implemented here: a
step takes ``B`` (user, positive item) pairs, draws ``M`` item indices from
the whole catalogue once, embeds them with the same candidate tower, and
shares them across all ``B`` rows. With the ``B`` in-batch positives they
form one candidate set, so each positive meets ``B - 1`` in-batch negatives
and ``M`` random ones for the price of embedding ``B + M`` items per step —
not the ``B * M`` (1.8M for the paper's numbers) of giving every positive its
own negatives.

This module is the layer: the candidate set of each mode, the logQ term and
the masks. The numerical kernels it runs on (custom-gradient logsumexp, the
sparse search for accidental hits) are in :mod:`tfrs_irns.tasks.kernels`.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional, Sequence

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs

from tfrs_irns.sampling.samplers import NegativeSampler, UniformSampler
from tfrs_irns.tasks.kernels import MASK_VALUE, hit_mask, log_count, rowwise_dot, softmax_terms
from tfrs_irns.tasks.params import FULL_MAX_ITEMS, LOGQ_VARIANTS, MODES, default_logq, full_softmax_fits, logq_on

__all__ = ["IRNSRetrieval", "LOGQ_VARIANTS", "MODES", "default_logq"]


@tf.keras.utils.register_keras_serializable(package="tfrs_irns")
class IRNSRetrieval(tf.keras.layers.Layer):
    """Softmax retrieval loss over in-batch positives plus shared sampled items.

    **The idea.** eBay's "Personalized Embedding-based e-Commerce
    Recommendations" (arXiv 2102.06156) trains with "3000 negatives for each
    positive item, and 600 as our batch size". Read efficiently: each step
    takes ``B = 600`` (user, positive item) pairs; ``M = 3000`` item indices
    are drawn from the whole catalogue *once per step*, inside the compiled
    train step, embedded by the same candidate tower and *shared* by all
    ``B`` rows. Together with the ``B`` in-batch positives they form the
    candidate set: the logits are ``[B, B + M]`` and row ``i``'s label is
    column ``i``. Each positive meets ``B - 1`` in-batch negatives (popular
    items, since positives follow the data) plus ``M`` random ones (the long
    tail the batch never shows) while the step embeds only ``B + M`` items —
    the per-positive reading (``B * M = 1.8M`` distinct negatives) is ~60x
    slower and needs ~1.7 GB of activations.

    **Modes** (``mode``):

    * ``in_batch`` — TFRS's classic in-batch softmax, logits ``[B, B]``.
    * ``random`` — the positive and the ``M`` sampled items only,
      ``[B, 1 + M]`` (label column 0).
    * ``mixed`` (default) — IRNS, ``[B, B + M]``.
    * ``full`` — the exact softmax over the whole catalogue, ``[B, N]``
      (label column ``item - 1``); an oracle for small catalogues, refused
      above ``full_max_items``.

    **Loss.** Softmax cross-entropy with temperature ``T`` (logits are
    ``q·c / T``), the **mean** over rows. TFRS's ``Retrieval`` *sums* over
    the batch instead, so its gradients are ``B`` times larger: a learning
    rate tuned for TFRS is ~``B`` times too small here. Under a
    ``tf.distribute`` strategy each replica returns its rows' sum divided by
    the *global* batch size, so the all-reduced gradients are those of the
    global mean (Keras sums replica gradients).

    **logQ correction for a mixture of sources.** The softmax over the whole
    catalogue needs ``Z_i = sum_j exp(s_ij)`` over all items. The candidate
    set is a multiset drawn from two sources: ``B`` in-batch positives, each
    an item drawn (roughly) from the training distribution ``p`` (``p_j`` =
    item ``j``'s share of training interactions), and ``M`` sampled items,
    each drawn from the sampler's ``q``. The expected number of copies of
    item ``j`` in the candidate set is therefore::

        E_j = B * p_j + M * q_j

    and ``sum_{c in set} exp(s_ic) / E_c`` is an unbiased estimate of
    ``Z_i`` (each item's term is counted ``E_j`` times on average, then
    divided by ``E_j``). Dividing inside the exponent is subtracting from the
    logit, so every column — the label column too — becomes::

        s_ij - log(B * p_j + M * q_j)

    On the label column the shift is a constant of the loss (no gradient);
    what it changes is that column's share of the estimated ``Z_i``, which is
    what consistency needs. Without it popular items, over-represented among
    in-batch negatives, are pushed down too hard (popularity bias), and with
    only the ``M * q`` term the in-batch columns would be corrected as if
    they came from ``q``. Per mode:

    * ``mixed``: ``s - log(B p_j + M q_j)``.
    * ``in_batch``: ``M = 0``, so ``s - log(B p_j)`` (TFRS's correction with
      ``candidate_sampling_probability = p``, up to the constant ``log B``).
    * ``random``: ``B = 0``, so ``s - log(M q_j)``: the classic sampled
      softmax correction (as ``tf.nn.sampled_softmax_loss`` applies it, to the
      true class too); a no-op for a uniform sampler, where it is a constant.
    * ``full``: nothing is sampled, the softmax is exact: ``logq`` has no
      effect.

    TFRS's ``Retrieval`` takes a single probability vector and clips it at
    ``1e-6`` (too coarse for catalogues above ~1M items); Merlin refuses logQ
    with more than one sampler. With ``B`` and ``M`` > 0 here, ``E_j`` needs
    ``p`` (``item_probabilities``) and ``q`` (the sampler's
    ``probability``). In cross-replica mode ``B`` is the global batch.

    **Refined logQ** (``logq_variant="refined"``). Khrylchenko et al.,
    "Correcting the LogQ Correction" (RecSys 2025, arXiv 2507.09331) observe
    that the standard correction treats the positive as if it were sampled,
    while it is in its row's candidate set with probability 1. Write the
    full-softmax gradient of row ``i`` with ``P_j = exp(s_ij) / Z_i``::

        grad = -(1 - P_pos) grad s_pos + sum_{j != pos} P_j grad s_ij
             = (1 - P_pos) [ -grad s_pos + E_{j ~ P'}[grad s_ij] ]

    where ``P'`` is the softmax over the catalogue *without* the positive.
    Only the expectation needs sampling: the positive's term is exact. The
    expectation is estimated by self-normalised importance sampling over the
    row's negatives, and ``1 - P_pos`` (the model's probability of
    misclassifying the row — the paper's interpretable sample weight) by the
    same estimate of ``Z_i``. The paper's loss is
    ``sg(1 - P^_pos) * (lse_neg - s_pos)`` with ``lse_neg = log sum_{c in
    negatives} exp(s_ic - log E_c)`` and ``P^_pos = sigmoid(s_pos - lse_neg)``.
    (Only the paper's abstract was available to us, not its equations, so no
    equation numbers are cited: the form is derived here from the idea the
    abstract states; ``tests/test_irns.py`` checks it against a numpy oracle
    and, over the whole catalogue, against the exact softmax.) Its gradient is exactly that of
    ``softplus(lse_neg - s_pos) = -log P^_pos``, which is what the layer
    computes: the same update, and a loss value that is the estimated full
    softmax cross-entropy (positive, comparable with ``standard``) instead of
    a weighted quantity that may be negative. In words: the positive's logit
    is *not* logQ-shifted, and every copy of the positive leaves the
    negatives.

    *With the mixture.* ``sum_c exp(s_ic) / E_c`` is unbiased for
    ``sum_{j != pos} exp(s_ij)`` when ``E_c`` is the expected number of copies
    of item ``c`` among row ``i``'s *negatives*: its row's own column is not a
    draw, so the other in-batch columns are ``B - 1`` draws of ``p`` and the
    sampled ones ``M`` draws of ``q``, ``E_j = (B - 1) p_j + M q_j`` (the
    mixture carries over unchanged: a mixture proposal is still a proposal;
    in ``in_batch`` the ``B - 1`` only rescales ``P^_pos``, in ``random`` it
    is ``M q_j`` as before). *With accidental hits.* Copies of the positive
    must leave the negatives for the estimate to be of ``j != pos``, which
    is what ``remove_accidental_hits`` does; with it off, the label column
    alone leaves the softmax (its term is the exact one) and other copies stay
    negatives, biased as in ``standard``. ``full`` has nothing to correct.

    **Masking.** ``remove_accidental_hits`` (default on) removes from row
    ``i``'s softmax every column other than the label column whose item *is*
    row ``i``'s positive — an in-batch duplicate or a sampled copy — since
    treating the positive as its own negative is a contradictory signal.
    ``mask_same_user`` also removes the in-batch columns that are another
    positive of the same user (``in_batch`` and ``mixed``; there are no
    in-batch columns in ``random`` and ``full``). Masking happens after the
    logQ shift, before hard-negative mining. :meth:`logits_and_labels` shows
    the definition densely (masked logits at a huge negative value). The
    mask comes from a dense compare of item ids
    (:func:`~tfrs_irns.tasks.kernels.hit_mask`), never from score
    arithmetic, so hits leave the softmax exactly whatever the matmul's
    precision (TF32 on a GPU included), and every shape in the step is known
    when it is traced: the step compiles with XLA, where the compare fuses
    into the softmax's one pass (:func:`~tfrs_irns.tasks.kernels.softmax_terms`).

    **Hard negatives.** ``num_hard_negatives=k`` keeps, per row, the label and
    the ``k`` highest negative logits (TFRS's ``HardNegativeMining``).

    **Sampling and seeds.** Negatives come from ``sampler`` (uniform over
    ``1..num_items`` with replacement by default) with the stateless seed
    ``(seed, step)``: ``step`` is a counter kept in the layer (a non-trainable
    weight, so checkpoints carry it) and advanced by every ``training=True``
    call; evaluation calls reuse the current step's draw without advancing.
    Same seed, same draws; every step a new draw; every replica the same draw.

    **Distribution.** Works under ``tf.distribute.MirroredStrategy``. With
    ``cross_replica=True`` (``in_batch`` and ``mixed``) every replica's
    positives are gathered with a differentiable ``all_gather``, so each
    query sees the global batch as in-batch negatives; the sampled negatives
    are shared by all replicas through the common seed. One replica with
    ``B`` rows and ``R`` replicas with ``B / R`` rows then give the same loss
    and gradients.

    **Metrics.** Training is not slowed by metrics: ``metrics`` (TFRS
    ``FactorizedTopK``, full-corpus) are updated only when
    ``compute_metrics=True`` and are given only the ``B`` positives and their
    ids, never the sampled rows (TFRS 0.7.7 crashes when extra negatives,
    ``candidate_ids`` and ``compute_metrics=True`` meet); ``batch_metrics``
    get the one-hot labels and the final logits.

    **Mixed precision.** Under a Keras ``mixed_bfloat16`` / ``mixed_float16``
    policy the towers hand over low-precision embeddings. The task itself is
    float32 and does not cast its inputs: the ``[B, C]`` logit matmul runs in
    the embeddings' dtype (the step's big product, where bf16 pays), and its
    output is cast to float32 at once; the label's logit is read from that
    output (in ``random``, where the positive is not a column, it is computed
    in float32 and rounded as the matmul rounds); logQ, masking, logsumexp
    and the loss are float32.

    **Serialization.** ``get_config`` / ``from_config`` round-trip the layer
    as Keras does: the candidate tower and the sampler as nested layers,
    ``item_probabilities`` and ``candidate_ids_table`` as non-trainable
    weights (beside the step and the sampler's tables), so ``from_config``
    followed by ``set_weights`` (or a checkpoint restore) rebuilds the same
    task. Metrics are objects, not config: pass them again. The raw-id lookup
    of ``candidate_ids_table`` is built from its weight at the first call.

    Args:
      candidate_tower: maps item indices (or raw ids, see
        ``candidate_ids_table``) to ``[n, d]`` embeddings; the same tower that
        embeds the positives.
      num_items: catalogue size ``N`` (items ``1..N``; 0 is OOV).
      mode: one of ``in_batch``, ``random``, ``mixed``, ``full``.
      num_negatives: ``M``, sampled items per step (``random`` and ``mixed``).
      sampler: a :class:`~tfrs_irns.sampling.NegativeSampler`; default
        ``UniformSampler(num_items)``.
      item_probabilities: training unigram ``p``, ``[num_items + 1]`` by item
        index, for the logQ term of in-batch columns (needed when ``logq`` is
        on in ``in_batch`` and ``mixed``).
      logq: apply the correction; ``None`` means on for ``mixed`` and
        ``in_batch``, off otherwise (:func:`default_logq`); always off in
        ``full``.
      remove_accidental_hits, mask_same_user: see **Masking**.
      temperature: softmax temperature ``T > 0``.
      num_hard_negatives: keep only the ``k > 0`` hardest negatives per row.
      full_max_items: the largest ``num_items`` that ``full`` accepts.
      cross_replica: gather positives across replicas (see above).
      seed: the sampling seed.
      candidate_ids_table: optional ``[num_items + 1]`` tensor whose entry
        ``k`` is the raw id of item index ``k`` (entry 0: any OOV value), for
        towers that take raw ids (a TFRS-tutorial ``StringLookup`` tower):
        sampled indices are gathered to ids before the tower is called, and
        ``candidate_ids`` given to ``call`` may be raw ids of that dtype.
      logq_variant: ``standard`` or ``refined`` (see **Refined logQ**; needs
        ``logq`` on).
      metrics, batch_metrics: see **Metrics**.

    Call: ``task(query_embeddings [B, d], candidate_embeddings [B, d],
    candidate_ids=int32 [B] (or raw ids), query_ids=[B] (for
    mask_same_user), training=..., compute_metrics=True)`` → scalar loss.
    """

    def __init__(
        self,
        candidate_tower: tf.keras.layers.Layer,
        num_items: int,
        mode: str = "mixed",
        num_negatives: int = 3000,
        sampler: Optional[NegativeSampler] = None,
        item_probabilities: Optional[Any] = None,
        logq: Optional[bool] = None,
        remove_accidental_hits: bool = True,
        mask_same_user: bool = False,
        temperature: float = 1.0,
        num_hard_negatives: Optional[int] = None,
        full_max_items: int = FULL_MAX_ITEMS,
        cross_replica: bool = False,
        seed: int = 0,
        candidate_ids_table: Optional[Any] = None,
        logq_variant: str = "standard",
        metrics: Optional[Sequence[tf.keras.metrics.Metric]] = None,
        batch_metrics: Optional[Sequence[tf.keras.metrics.Metric]] = None,
        name: str = "irns_retrieval",
        **kwargs: Any,
    ) -> None:
        # float32 whatever the global policy, and no input autocast: the
        # embeddings arrive in the towers' (maybe low) precision, the logits
        # leave the matmul as float32 (see **Mixed precision**).
        kwargs.setdefault("dtype", "float32")
        kwargs.setdefault("autocast", False)
        super().__init__(name=name, **kwargs)
        if mode not in MODES:
            raise ValueError(f"mode={mode!r}: expected one of {', '.join(repr(m) for m in MODES)}")
        num_items = int(num_items)
        if num_items <= 0:
            raise ValueError(f"num_items must be > 0, got {num_items}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if num_hard_negatives is not None and num_hard_negatives <= 0:
            raise ValueError(f"num_hard_negatives must be > 0, got {num_hard_negatives}")
        if not full_softmax_fits(mode, num_items, full_max_items):
            raise ValueError(
                f"num_items={num_items} exceeds full_max_items={full_max_items}: mode='full' computes the "
                "exact softmax over every item; use mode='mixed', or raise full_max_items if the "
                "[batch, num_items] logits fit in memory"
            )
        self.candidate_tower = candidate_tower
        self.num_items = num_items
        self.mode = mode
        self.num_negatives = int(num_negatives)
        self.logq = logq_on(mode, logq)
        self.remove_accidental_hits = bool(remove_accidental_hits)
        self.mask_same_user = bool(mask_same_user)
        self.temperature = float(temperature)
        self.num_hard_negatives = num_hard_negatives
        self.full_max_items = int(full_max_items)
        self.cross_replica = bool(cross_replica)
        self.seed = int(seed)
        if logq_variant not in LOGQ_VARIANTS:
            raise ValueError(f"logq_variant={logq_variant!r}: expected 'standard' or 'refined'")
        if logq_variant == "refined" and not self.logq:
            raise ValueError(f"logq_variant='refined' needs the logQ correction on (mode {mode!r}, logq={logq!r})")
        self.logq_variant = logq_variant
        self._refined = logq_variant == "refined"
        self._factorized_metrics = list(metrics or [])
        self._batch_metrics = list(batch_metrics or [])

        self.sampler: Optional[NegativeSampler] = None
        if mode in ("random", "mixed"):
            if self.num_negatives <= 0:
                raise ValueError(f"num_negatives must be > 0, got {num_negatives}")
            self.sampler = sampler if sampler is not None else UniformSampler(num_items)
            if self.sampler.num_items != num_items:
                raise ValueError(f"the sampler covers {self.sampler.num_items} items, expected num_items={num_items}")
            self.sampler.check_num(self.num_negatives, "num_negatives")

        self._item_probabilities = None
        if item_probabilities is not None:
            p = np.asarray(item_probabilities, np.float32)
            if p.shape != (num_items + 1,):
                raise ValueError(f"item_probabilities must have shape ({num_items + 1},), got {p.shape}")
            self._item_probabilities = self._table_weight("item_probabilities", p)
        if self.logq and mode in ("in_batch", "mixed") and self._item_probabilities is None:
            raise ValueError(
                f"logq in mode {mode!r} needs item_probabilities (the training share of each item) "
                "for the in-batch columns"
            )

        self._ids_table = None
        self._id_to_index = None  # built from the weight at the first call
        if candidate_ids_table is not None:
            table = tf.convert_to_tensor(candidate_ids_table)
            if table.shape.rank != 1 or table.shape[0] != num_items + 1:
                raise ValueError(f"candidate_ids_table must have shape ({num_items + 1},), got {table.shape}")
            self._ids_table = self._table_weight("candidate_ids_table", table)

        # The sampling step; ONLY_FIRST_REPLICA keeps it in sync across replicas.
        self._step = self.add_weight(
            name="sample_step",
            shape=(),
            dtype=tf.int64,
            initializer="zeros",
            trainable=False,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )

    def _table_weight(self, name: str, values: Any) -> tf.Variable:
        values = tf.convert_to_tensor(values)
        return self.add_weight(
            name=name,
            shape=values.shape,
            dtype=values.dtype,
            initializer=lambda shape, dtype: values,
            trainable=False,
        )

    # ------------------------------------------------------------------ API

    @property
    def step(self) -> tf.Variable:
        """The sampling step the next ``training=True`` call will use."""
        return self._step

    def sample_negatives(self, step: Any) -> tuple[tf.Tensor, tf.Tensor]:
        """The ``(item indices int32 [M], q float32 [M])`` drawn at ``step``."""
        if self.sampler is None:
            raise ValueError(f"mode {self.mode!r} samples no negatives")
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        return self.sampler.sample(self.num_negatives, seed)

    def call(
        self,
        query_embeddings: tf.Tensor,
        candidate_embeddings: tf.Tensor,
        candidate_ids: Optional[tf.Tensor] = None,
        query_ids: Optional[tf.Tensor] = None,
        training: Any = None,
        compute_metrics: bool = True,
        compute_batch_metrics: bool = True,
    ) -> tf.Tensor:
        scores = self._scores(self._batch(query_embeddings, candidate_embeddings, candidate_ids, query_ids, training))
        dense = None
        if self.num_hard_negatives is not None or (compute_batch_metrics and self._batch_metrics):
            logits, labels = self._dense(scores)
            one_hot = tf.one_hot(labels, tf.shape(logits)[1], dtype=logits.dtype)
            dense = (logits, one_hot)
        if self.num_hard_negatives is not None:
            logits, one_hot = tfrs.layers.loss.HardNegativeMining(self.num_hard_negatives)(*dense)
            row_losses = tf.nn.softmax_cross_entropy_with_logits(one_hot, logits)
        else:
            # The fast path: one kernel shifts, masks, sums and picks the
            # label from the raw logits; no [B, C] copy for the label or its
            # gradient (see `softmax_terms`).
            lse, picked = softmax_terms(scores.logits, scores.shift, scores.mask, scores.labels)
            label_logit = _label_logit(scores, picked)
            if scores.label_outside:
                # log(exp(label) + sum of the other columns), stably.
                row_losses = tf.nn.softplus(lse - label_logit)
            else:
                row_losses = lse - label_logit
        loss = tf.reduce_sum(row_losses) / scores.global_rows

        updates = []
        if compute_metrics:
            for metric in self._factorized_metrics:
                # Only the batch's own positives: never the sampled rows.
                updates.append(
                    metric.update_state(query_embeddings, candidate_embeddings, true_candidate_ids=candidate_ids)
                )
        if compute_batch_metrics:
            for metric in self._batch_metrics:
                updates.append(metric.update_state(dense[1], dense[0]))
        with tf.control_dependencies([u for u in updates if u is not None]):
            return tf.identity(loss)

    def logits_and_labels(self, *inputs: Any, **named: Any) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """The definition, densely: corrected logits with masked columns at a
        huge negative value (``[B, B]``, ``[B, 1 + M]``, ``[B, B + M]`` or
        ``[B, N]`` per mode), each row's label column ``[B]``, and the global
        number of rows the loss is divided by. The loss is the mean softmax
        cross-entropy of these (what :meth:`call` computes, faster).

        Takes :meth:`call`'s inputs: ``query_embeddings, candidate_embeddings,
        candidate_ids=None, query_ids=None, training=None``."""
        scores = self._scores(self._batch(*inputs, **named))
        logits, labels = self._dense(scores)
        return logits, labels, scores.global_rows

    def _dense(self, scores: "_Scores") -> tuple[tf.Tensor, tf.Tensor]:
        logits, mask = scores.logits, scores.mask
        if scores.shift is not None:
            logits = logits - scores.shift[tf.newaxis, :]
        picked = None
        if scores.labels is not None:
            picked = tf.gather(scores.logits, scores.labels[:, tf.newaxis], batch_dims=1)[:, 0]
        label_logit = _label_logit(scores, picked)
        if scores.labels is None:  # random: the label is column 0
            if mask is not None:
                logits = tf.where(mask, MASK_VALUE, logits)
            logits = tf.concat([label_logit[:, tf.newaxis], logits], axis=1)
            return logits, tf.zeros_like(label_logit, tf.int32)
        if mask is not None:
            if scores.label_outside:  # the label column is masked as a hit: keep it
                columns = tf.range(tf.shape(logits)[1], dtype=tf.int32)
                mask &= tf.not_equal(columns[tf.newaxis, :], scores.labels[:, tf.newaxis])
            logits = tf.where(mask, MASK_VALUE, logits)
        if self._refined:  # the label column holds the unshifted positive
            rows = tf.range(tf.shape(scores.labels)[0], dtype=tf.int32)
            logits = tf.tensor_scatter_nd_update(logits, tf.stack([rows, scores.labels], 1), label_logit)
        return logits, scores.labels

    # ------------------------------------------------------------- scoring

    def _scores(self, batch: "_Batch") -> "_Scores":
        """One step's scores: the candidate set of the mode, scored."""
        if self.mode == "full":
            return self._full_scores(batch)
        columns = {"in_batch": self._in_batch_columns, "random": self._random_columns, "mixed": self._mixed_columns}
        return self._score_columns(batch, columns[self.mode](batch))

    def _batch(self, query_embeddings: tf.Tensor, candidate_embeddings: tf.Tensor, candidate_ids: Any = None,
               query_ids: Any = None, training: Any = None) -> "_Batch":
        """Check and prepare the inputs, read (and advance) the step, and
        gather the in-batch columns across replicas if asked to."""
        mode = self.mode
        ids = self._to_indices(candidate_ids)
        needs_ids = mode != "in_batch" or self.logq or self.remove_accidental_hits
        if ids is None and needs_ids:
            raise ValueError(f"mode {mode!r} with these options needs candidate_ids (the positives' item indices)")
        same_user = self.mask_same_user and mode in ("in_batch", "mixed")
        if same_user and query_ids is None:
            raise ValueError("mask_same_user needs query_ids (the rows' user indices)")
        users = tf.cast(query_ids, tf.int32) if same_user else None

        # Temperature folded into the queries: one [B, d] scaling, not [B, C].
        queries = query_embeddings / self.temperature if self.temperature != 1.0 else query_embeddings
        rows = tf.shape(queries)[0]
        replica = tf.distribute.get_replica_context()
        num_replicas = replica.num_replicas_in_sync if replica is not None else 1

        # Read the step before advancing it: this call draws with `step`.
        step = self._step.read_value()
        if training is not None and training is not False:
            self._step.assign_add(tf.cast(training, tf.int64))

        # In-batch columns: this replica's positives, or every replica's.
        positives, pos_ids, pos_users, offset = candidate_embeddings, ids, users, 0
        global_rows = tf.cast(rows, tf.float32)
        if num_replicas > 1:
            if self.cross_replica and mode in ("in_batch", "mixed"):
                positives, pos_ids, pos_users, offset, global_rows = _gather_replicas(
                    replica, candidate_embeddings, ids, users
                )
            else:
                global_rows = replica.all_reduce(tf.distribute.ReduceOp.SUM, on_replica_device(global_rows))
        labels = offset + tf.range(rows, dtype=tf.int32)
        return _Batch(
            queries, candidate_embeddings, ids, users, positives, pos_ids, pos_users, labels, global_rows, step,
            training,
        )

    def _full_scores(self, batch: "_Batch") -> "_Scores":
        """``full``: the exact softmax over the whole catalogue; nothing to
        correct or mask."""
        catalogue = self._embed(tf.range(1, self.num_items + 1, dtype=tf.int32), batch.training)
        logits = _logits(batch.queries, catalogue)
        return _Scores(logits, None, None, batch.ids - 1, None, None, False, batch.global_rows)

    def _in_batch_columns(self, batch: "_Batch") -> "_Columns":
        """``in_batch``: the (global) positives; logQ ``log(B p_j)``."""
        correction = None
        if self.logq:
            correction = log_count(self._in_batch_draws(batch) * tf.gather(self._item_probabilities, batch.pos_ids))
        return _Columns(batch.positives, batch.pos_ids, batch.pos_users, batch.labels, correction, None)

    def _random_columns(self, batch: "_Batch") -> "_Columns":
        """``random``: the ``M`` sampled items only, the positive outside the
        columns; logQ ``log(M q_j)``, for the positive too."""
        neg_ids, neg_q, negatives = self._negatives(batch)
        correction, label_correction = None, None
        if self.logq:
            m = float(self.num_negatives)
            correction = log_count(m * neg_q)
            label_correction = log_count(m * self.sampler.probability(batch.ids))
        return _Columns(negatives, neg_ids, None, None, correction, label_correction)

    def _mixed_columns(self, batch: "_Batch") -> "_Columns":
        """``mixed`` (IRNS): the positives, then the ``M`` sampled items;
        logQ ``log(B p_j + M q_j)``."""
        neg_ids, neg_q, negatives = self._negatives(batch)
        col_ids = tf.concat([batch.pos_ids, neg_ids], axis=0)
        correction = None
        if self.logq:
            p = tf.gather(self._item_probabilities, col_ids)
            q = tf.concat([self.sampler.probability(batch.pos_ids), neg_q], axis=0)
            correction = log_count(self._in_batch_draws(batch) * p + float(self.num_negatives) * q)
        users = None
        if batch.pos_users is not None:  # sampled columns belong to no user
            users = tf.pad(batch.pos_users, [[0, self.num_negatives]], constant_values=-1)
        columns = tf.concat([batch.positives, negatives], axis=0)
        return _Columns(columns, col_ids, users, batch.labels, correction, None)

    def _score_columns(self, batch: "_Batch", columns: "_Columns") -> "_Scores":
        """Logits of the candidate columns, logQ-corrected, and what each
        row's softmax leaves out."""
        logits = _logits(batch.queries, columns.embeddings)
        label_logit = None
        if columns.labels is None:  # random: the positive is not a column, score it alone
            label_logit = _row_logits(batch.queries, batch.candidate_embeddings)
        shift, label_shift = None, None
        if self.logq:
            shift = columns.correction
            if not self._refined:  # refined: the positive is not a draw, no shift
                label_shift = columns.label_correction
                if label_shift is None:  # the label is a column: its own term
                    label_shift = tf.gather(columns.correction, columns.labels)

        # Accidental hits, masked by comparing ids (never by score arithmetic:
        # exact whatever the matmul's rounding). With hit removal the label
        # column is a hit too (same item): every copy of the positive leaves
        # the softmax, and the loss adds the label's term back exactly once.
        mask = None
        if batch.users is not None:
            mask = self._same_user_mask(batch, columns)
        elif self.remove_accidental_hits:
            mask = hit_mask(batch.ids, columns.ids)
        elif self._refined and columns.labels is not None:
            # Refined without hit removal: the label column alone leaves the
            # negatives (its exact term is added back unshifted).
            mask = hit_mask(columns.labels, tf.range(tf.shape(logits)[1], dtype=columns.labels.dtype))
        label_outside = columns.labels is None or self.remove_accidental_hits or self._refined
        return _Scores(
            logits, shift, mask, columns.labels, label_logit, label_shift, label_outside, batch.global_rows
        )

    def _same_user_mask(self, batch: "_Batch", columns: "_Columns") -> tf.Tensor:
        """The rare option: one dense ``[B, C]`` mask of the columns that are
        another positive of the row's user, and of the hits if removed."""
        users = tf.equal(batch.users[:, tf.newaxis], columns.users[tf.newaxis, :])
        if self.remove_accidental_hits:
            return tf.equal(batch.ids[:, tf.newaxis], columns.ids[tf.newaxis, :]) | users
        if self._refined:  # the label column too: the loss adds it back
            return users
        # Keep the label column: it is the row's own user.
        num_columns = tf.shape(columns.users)[0]
        return users & tf.not_equal(tf.range(num_columns)[tf.newaxis, :], columns.labels[:, tf.newaxis])

    # ------------------------------------------------------------- helpers

    def _in_batch_draws(self, batch: "_Batch") -> tf.Tensor:
        """How many draws of ``p`` the in-batch columns are: ``B``, or with the
        refined correction ``B - 1`` (a row's own column is not a draw)."""
        size = _batch_size(batch)
        return size - 1.0 if self._refined else size

    def _negatives(self, batch: "_Batch") -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """This step's sampled indices, their ``q`` and their embeddings."""
        neg_ids, neg_q = self.sample_negatives(batch.step)
        return neg_ids, neg_q, self._embed(neg_ids, batch.training)

    def _to_indices(self, candidate_ids: Optional[tf.Tensor]) -> Optional[tf.Tensor]:
        if candidate_ids is None:
            return None
        candidate_ids = tf.convert_to_tensor(candidate_ids)
        if self._ids_table is not None and candidate_ids.dtype == self._ids_table.dtype:
            return self._id_lookup().lookup(candidate_ids)
        return tf.cast(candidate_ids, tf.int32)

    def _id_lookup(self) -> tf.lookup.StaticHashTable:
        """Raw id → item index, from the ``candidate_ids_table`` weight as it
        is at the first call (after any ``set_weights`` or restore)."""
        if self._id_to_index is None:
            with tf.init_scope():  # eagerly, even while a tf.function traces
                keys = tf.convert_to_tensor(self._ids_table)[1:]
                self._id_to_index = tf.lookup.StaticHashTable(
                    tf.lookup.KeyValueTensorInitializer(keys, tf.range(1, self.num_items + 1, dtype=tf.int32)),
                    default_value=0,
                )
        return self._id_to_index

    def _embed(self, indices: tf.Tensor, training: Any) -> tf.Tensor:
        if self._ids_table is not None:
            indices = tf.gather(self._ids_table, indices)
        return self.candidate_tower(indices, training=training)

    def get_config(self) -> dict[str, Any]:
        """Settings and nested layers; tables are weights (see
        **Serialization**), metrics are not kept."""
        config = super().get_config()
        config.update(
            candidate_tower=tf.keras.layers.serialize(self.candidate_tower),
            num_items=self.num_items,
            mode=self.mode,
            num_negatives=self.num_negatives,
            sampler=None if self.sampler is None else tf.keras.layers.serialize(self.sampler),
            with_item_probabilities=self._item_probabilities is not None,
            logq=self.logq,
            remove_accidental_hits=self.remove_accidental_hits,
            mask_same_user=self.mask_same_user,
            temperature=self.temperature,
            num_hard_negatives=self.num_hard_negatives,
            full_max_items=self.full_max_items,
            cross_replica=self.cross_replica,
            seed=self.seed,
            candidate_ids_dtype=None if self._ids_table is None else self._ids_table.dtype.name,
            logq_variant=self.logq_variant,
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Optional[dict[str, Any]] = None) -> "IRNSRetrieval":
        """The task ``config`` describes; its tables (and the tower's and
        sampler's) are placeholders until ``set_weights`` or a checkpoint
        restore fills them."""
        config = dict(config)
        tower = tf.keras.layers.deserialize(config.pop("candidate_tower"), custom_objects=custom_objects)
        sampler = config.pop("sampler")
        if sampler is not None:
            sampler = tf.keras.layers.deserialize(sampler, custom_objects=custom_objects)
        rows = config["num_items"] + 1
        if config.pop("with_item_probabilities"):
            config["item_probabilities"] = np.zeros(rows, np.float32)
        ids_dtype = config.pop("candidate_ids_dtype")
        if ids_dtype is not None:
            config["candidate_ids_table"] = tf.zeros([rows], tf.as_dtype(ids_dtype))
        return cls(tower, sampler=sampler, **config)


class _Batch(NamedTuple):
    """One call's inputs, ready to score.

    ``queries [B, d]`` are divided by the temperature; ``ids [B]`` are the
    positives' item indices and ``users [B]`` their users (int32, only with
    the same-user mask). ``positives``, ``pos_ids``, ``pos_users`` are the
    in-batch columns — this replica's rows, or every replica's with
    ``cross_replica`` — and ``labels [B]`` each row's column among them.
    ``global_rows`` is what the loss divides by; ``step`` the sampling step.
    """

    queries: tf.Tensor
    candidate_embeddings: tf.Tensor
    ids: Optional[tf.Tensor]
    users: Optional[tf.Tensor]
    positives: tf.Tensor
    pos_ids: Optional[tf.Tensor]
    pos_users: Optional[tf.Tensor]
    labels: tf.Tensor
    global_rows: tf.Tensor
    step: tf.Tensor
    training: Any


class _Columns(NamedTuple):
    """A mode's candidate set: the columns' ``embeddings [C, d]``, item
    ``ids [C]`` and ``users [C]`` (-1 for sampled columns; only with the
    same-user mask), each row's label column (None when the positive is not
    a column), and the logQ terms (None without logQ): ``correction [C]`` of
    the columns and, when the positive is not a column, ``label_correction
    [B]`` of the positives."""

    embeddings: tf.Tensor
    ids: tf.Tensor
    users: Optional[tf.Tensor]
    labels: Optional[tf.Tensor]
    correction: Optional[tf.Tensor]
    label_correction: Optional[tf.Tensor]


class _Scores(NamedTuple):
    """The pieces of one step's loss.

    ``logits [B, C]`` are the raw scores of the candidate columns (the
    matmul's output), ``shift [C]`` (or None) their logQ terms, ``mask [B,
    C]`` (or None) marks columns removed from each row's softmax (from ids),
    ``labels [B]`` each row's label column (None in ``random``, where the
    positive is not a column and ``label_logit [B]`` is its raw score),
    ``label_shift [B]`` (or None) what the label's score loses to logQ, and
    ``label_outside`` says the label's term is not (or no longer, being
    masked as a hit) inside the softmax and must be added.
    """

    logits: tf.Tensor
    shift: Optional[tf.Tensor]
    mask: Optional[tf.Tensor]
    labels: Optional[tf.Tensor]
    label_logit: Optional[tf.Tensor]
    label_shift: Optional[tf.Tensor]
    label_outside: bool
    global_rows: tf.Tensor


def _label_logit(scores: _Scores, picked: Optional[tf.Tensor]) -> tf.Tensor:
    """Each row's corrected positive score: ``picked`` (the label column's raw
    score) or, without a label column, ``scores.label_logit``, less its logQ
    term."""
    logit = picked if scores.labels is not None else scores.label_logit
    return logit if scores.label_shift is None else logit - scores.label_shift


def _batch_size(batch: _Batch) -> tf.Tensor:
    """``B`` of the logQ term: the number of in-batch columns (global with
    ``cross_replica``)."""
    return tf.cast(tf.shape(batch.positives)[0], tf.float32)


def on_replica_device(tensors: Any) -> Any:
    """``tensors`` placed on this worker's device, for a collective.

    Collectives name their destination by the tensor's device, and under
    ``MultiWorkerMirroredStrategy`` with one device per worker the replica
    function runs without a device scope (``destinations can not be empty``).
    """
    devices = tf.distribute.get_strategy().extended.worker_devices
    if len(devices) != 1:
        return tensors
    with tf.device(devices[0]):
        return tf.nest.map_structure(tf.identity, tensors)


def _logits(queries: tf.Tensor, columns: tf.Tensor) -> tf.Tensor:
    """The ``[B, C]`` logits, float32.

    Under a mixed-precision policy the towers' embeddings are bfloat16 (or
    float16): the matmul, the step's one big product, runs in that dtype
    (products accumulated in float32 by oneDNN / cuBLAS, the result rounded to
    the low precision) and is cast to float32 at once. Everything after it —
    logQ, masking, logsumexp, the loss — is float32.
    """
    return tf.cast(tf.matmul(queries, columns, transpose_b=True), tf.float32)


def _row_logits(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """``[n]`` logits of row pairs (``random``'s positives, which are no
    column of the matmul), float32, rounded as :func:`_logits` rounds its
    output, so they compete with the columns at the same precision."""
    dots = rowwise_dot(tf.cast(a, tf.float32), tf.cast(b, tf.float32))
    if a.dtype != tf.float32:
        dots = tf.cast(tf.cast(dots, a.dtype), tf.float32)
    return dots


def _gather_replicas(
    replica: tf.distribute.ReplicaContext,
    embeddings: tf.Tensor,
    ids: tf.Tensor,
    users: Optional[tf.Tensor],
) -> tuple[tf.Tensor, tf.Tensor, Optional[tf.Tensor], tf.Tensor, tf.Tensor]:
    """Every replica's positives (differentiable), their ids and users, this
    replica's row offset in the gathered batch, and the global batch size."""
    # One gather for the (differentiable) floats, one for the integers:
    # a batched collective needs its inputs on the same kind of device.
    # float32 on the wire: CPU collectives have no bfloat16/float16 kernels.
    floats = on_replica_device(tf.cast(embeddings, tf.float32))
    all_embeddings = tf.cast(replica.all_gather(floats, axis=0), embeddings.dtype)
    ints = [tf.cast(ids, tf.int32), tf.shape(embeddings, out_type=tf.int32)[:1]]
    if users is not None:
        ints.append(tf.cast(users, tf.int32))
    gathered = replica.all_gather(on_replica_device(ints), axis=0)
    sizes = gathered[1]
    offset = tf.reduce_sum(sizes[: replica.replica_id_in_sync_group])
    global_rows = tf.cast(tf.reduce_sum(sizes), tf.float32)
    all_users = gathered[2] if users is not None else None
    return all_embeddings, gathered[0], all_users, offset, global_rows
