"""In-graph negative samplers: which catalogue items serve as random negatives.

IRNS draws ``M`` item indices from the whole catalogue once per training step
and shares them across the batch. The draw happens inside the compiled train
step with stateless random ops keyed by a per-step seed, so it costs no host
round trip, no ``tf.data`` stage, and the same (seed, step) always gives the
same negatives — runs are reproducible and every replica of a distributed
step can draw the identical set.

The catalogue is item indices ``1..num_items``; index ``0`` is the OOV bucket
and is never drawn. Every draw comes with its per-draw probability ``q_j``,
which the task needs for the logQ correction (``M * q_j`` is the expected
number of copies of item ``j`` among the ``M`` draws).

Samplers are Keras layers: the task tracks them, so checkpoints carry their
tables (a unigram sampler's counts and CDF are non-trainable weights), and
they round-trip through ``get_config`` / ``from_config`` plus
``set_weights`` (or a checkpoint restore). They hold no random state.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np
import tensorflow as tf


def stateless_unit(shape: Any, seed: tf.Tensor, dtype: tf.DType = tf.float32) -> tf.Tensor:
    """Stateless uniform draws in ``(0, 1)`` that are the same bits with and
    without XLA.

    ``tf.random.stateless_uniform`` gives other *floats* for the same seed
    once a step is compiled with XLA (its integers agree): a float draw would
    make ``jit_compile`` change which negatives a step samples. So draw
    integers and scale them: ``(k + 0.5) / 2^bits`` on a grid of ``2^-24``
    (float32) or ``2^-53`` (float64), never 0 or 1.
    """
    bits, int_dtype = (53, tf.int64) if dtype == tf.float64 else (24, tf.int32)
    k = tf.random.stateless_uniform(shape, seed, minval=0, maxval=2**bits, dtype=int_dtype)
    return (tf.cast(k, dtype) + 0.5) * (2.0 ** -bits)


class NegativeSampler(tf.keras.layers.Layer):
    """Interface of an in-graph sampler over item indices ``1..num_items``.

    Subclasses implement :meth:`sample` and :meth:`probability`; both run
    inside ``tf.function`` and are stateless: the draw depends only on the
    seed it is given.
    """

    num_items: int
    replacement: bool
    # Which items count as drawable, in words (error messages).
    available_phrase = "in the catalogue"

    def sample(self, num: int, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Draw ``num`` item indices with the stateless ``seed`` (int ``[2]``).

        Returns ``(indices int32 [num], probabilities float32 [num])``, where
        ``probabilities[k]`` is the per-draw probability ``q`` of
        ``indices[k]``.
        """
        raise NotImplementedError

    def probability(self, indices: tf.Tensor) -> tf.Tensor:
        """Per-draw probability ``q`` (float32) of each of ``indices``."""
        raise NotImplementedError

    @property
    def num_available(self) -> int:
        """How many distinct items can be drawn at all."""
        return self.num_items

    def check_num(self, num: int, name: str = "num") -> None:
        """Raise a ``ValueError`` (naming the argument ``name``) if ``num``
        draws without replacement are impossible."""
        if not self.replacement and num > self.num_available:
            raise ValueError(
                f"{name}={num} exceeds the {self.num_available} items {self.available_phrase} "
                f"with replacement=False; draw fewer or use replacement=True"
            )

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        """``probability(inputs)``: calling a sampler scores indices; draws
        go through :meth:`sample`."""
        return self.probability(inputs)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(num_items=self.num_items, replacement=self.replacement)
        return config


@tf.keras.utils.register_keras_serializable(package="tfrs_irns")
class UniformSampler(NegativeSampler):
    """Every catalogue item equally likely: ``q_j = 1 / num_items``.

    With replacement (the default) a draw is one ``stateless_uniform`` call,
    ``O(M)`` whatever the catalogue size. Without replacement it is a
    top-``M`` of stateless uniform keys over the whole catalogue (a random
    subset, as a shuffle's first ``M``), ``O(num_items)`` per step; each
    item is then included with probability ``M / num_items``, so ``q_j`` keeps
    its meaning (``M * q_j`` expected copies).

    Args:
      num_items: catalogue size ``N`` (items ``1..N``).
      replacement: draw with replacement (duplicates possible) or not.
    """

    def __init__(self, num_items: int, replacement: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if int(num_items) <= 0:
            raise ValueError(f"num_items must be > 0, got {num_items}")
        self.num_items = int(num_items)
        self.replacement = bool(replacement)

    def sample(self, num: int, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        self.check_num(num)
        if self.replacement:
            ids = tf.random.stateless_uniform([num], seed, minval=1, maxval=self.num_items + 1, dtype=tf.int32)
        else:
            # The top ``num`` of i.i.d. uniform keys are a uniform random subset
            # (a shuffle's first ``num``); TopK has a GPU kernel, StatelessShuffle none.
            keys = stateless_unit([self.num_items], seed)
            ids = tf.math.top_k(keys, k=num, sorted=True).indices + 1
        return ids, tf.fill([num], tf.constant(1.0 / self.num_items, tf.float32))

    def probability(self, indices: tf.Tensor) -> tf.Tensor:
        indices = tf.convert_to_tensor(indices)
        inside = (indices >= 1) & (indices <= self.num_items)
        return tf.where(inside, tf.constant(1.0 / self.num_items, tf.float32), 0.0)


@tf.keras.utils.register_keras_serializable(package="tfrs_irns")
class UnigramSampler(NegativeSampler):
    """Popular items more likely: ``q_j ∝ count_j ** alpha``.

    ``alpha = 1`` samples like the training data, ``alpha = 0`` uniformly over
    the items seen in training, and the word2vec-style default ``0.75`` in
    between, so popular items are seen often as negatives without drowning out
    the tail. Items with ``count == 0`` (never in the training split) get
    probability 0 and are never drawn, whatever ``alpha`` (``0 ** 0`` is taken
    as 0 here, not 1).

    With replacement a draw is a binary search of ``M`` stateless uniforms in a
    precomputed float64 CDF: ``O(M log N)`` per step. Without replacement it is
    Gumbel-top-k over the catalogue, ``O(N)`` per step; the first draw then
    follows ``q`` exactly, later draws are conditioned on the earlier ones, and
    the reported ``q_j`` stays the per-draw (first-draw) probability, so
    ``M * q_j`` overstates the inclusion of items with ``M * q_j`` near or
    above 1 — the logQ correction is an approximation in that one case.

    The counts and what is precomputed from them (probabilities, CDF, log
    probabilities) are non-trainable weights, not config: ``get_config`` holds
    ``num_items``, ``alpha`` and ``replacement``, and ``from_config`` builds a
    sampler whose tables count every item once (a uniform sampler) until
    ``set_weights`` or a checkpoint restore fills them.

    Args:
      counts: training interaction counts indexed by item index, length
        ``num_items + 1`` (``counts[0]``, the OOV bucket, is ignored).
      alpha: exponent applied to the counts, ``>= 0``.
      replacement: draw with replacement (duplicates possible) or not.
      num_items: instead of ``counts``: the catalogue size of a sampler whose
        weights are set afterwards (until then every item counts once).
    """

    available_phrase = "with a non-zero training count"

    def __init__(
        self,
        counts: Any = None,
        alpha: float = 0.75,
        replacement: bool = True,
        num_items: Optional[int] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not alpha >= 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha = float(alpha)
        self.replacement = bool(replacement)
        if counts is None:
            if num_items is None or int(num_items) <= 0:
                raise ValueError(f"give counts, or num_items > 0 for weights set later; got num_items={num_items}")
            # A placeholder, every item counted once, until weights are set.
            tables = self._tables(np.concatenate([[0.0], np.ones(int(num_items))]))
        else:
            tables = self._tables(np.asarray(counts, dtype=np.float64))
            if num_items is not None and int(num_items) != tables[0].shape[0] - 1:
                raise ValueError(f"counts covers {tables[0].shape[0] - 1} items, expected num_items={num_items}")
        self.num_items = tables[0].shape[0] - 1
        names = ("counts", "probabilities", "cdf", "log_probs")
        self._counts, self._probabilities, self._cdf, self._log_probs = (
            self._table_weight(name, table) for name, table in zip(names, tables)
        )

    def _tables(self, counts: np.ndarray) -> list[np.ndarray]:
        """Counts, probabilities and CDF (float64), log probabilities (float32)."""
        if counts.ndim != 1 or counts.shape[0] < 2:
            raise ValueError(f"counts must be a vector of length num_items + 1 >= 2, got shape {counts.shape}")
        if np.any(counts < 0) or not np.all(np.isfinite(counts)):
            raise ValueError("counts must be finite and >= 0")
        weights = np.where(counts > 0, np.power(np.maximum(counts, 1e-300), self.alpha), 0.0)
        weights[0] = 0.0  # OOV is never a negative
        total = weights.sum()
        if total <= 0:
            raise ValueError("counts has no item with a non-zero count: nothing to sample")
        probs = weights / total
        cdf = np.cumsum(probs)
        # Pin the CDF's top to exactly 1 from the last drawable item on, so a
        # uniform in [0, 1) can never fall past the end through rounding.
        cdf[int(np.flatnonzero(weights)[-1]) :] = 1.0
        with np.errstate(divide="ignore"):
            log_probs = np.log(probs).astype(np.float32)
        return [counts, probs, cdf, log_probs]

    def _table_weight(self, name: str, values: np.ndarray) -> tf.Variable:
        return self.add_weight(
            name=name,
            shape=values.shape,
            dtype=tf.as_dtype(values.dtype),
            initializer=tf.constant_initializer(values),
            trainable=False,
        )

    @property
    def counts(self) -> np.ndarray:
        """The training counts (float64, by item index)."""
        return self._counts.numpy()

    @property
    def probabilities(self) -> np.ndarray:
        """Per-draw probability ``q`` (float64, by item index)."""
        return self._probabilities.numpy()

    @property
    def num_available(self) -> int:
        # Read eagerly even while a tf.function traces: a Python number,
        # always that of the current weights.
        with tf.init_scope():
            return int(tf.math.count_nonzero(self._probabilities))

    def sample(self, num: int, seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        self.check_num(num)
        if self.replacement:
            u = stateless_unit([num], seed, tf.float64)
            ids = tf.searchsorted(self._cdf, u, side="right", out_type=tf.int32)
        else:
            # Gumbel-top-k: the top ``num`` of log q + Gumbel noise are a draw
            # without replacement (successive sampling proportional to q).
            u = stateless_unit([self.num_items + 1], seed)
            _, ids = tf.math.top_k(self._log_probs - tf.math.log(-tf.math.log(u)), k=num)
        return ids, self._gather_q(ids)

    def probability(self, indices: tf.Tensor) -> tf.Tensor:
        indices = tf.convert_to_tensor(indices)
        inside = (indices >= 0) & (indices <= self.num_items)
        return tf.where(inside, self._gather_q(tf.clip_by_value(indices, 0, self.num_items)), 0.0)

    def _gather_q(self, indices: tf.Tensor) -> tf.Tensor:
        # Cast after the gather: O(M), and the same float32 as casting the table.
        return tf.cast(tf.gather(self._probabilities, indices), tf.float32)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(alpha=self.alpha)
        return config
