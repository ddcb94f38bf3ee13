"""Keras callback that gives the epochs GCBS is due for a GCBS batch order.

The order of an epoch must exist before Keras creates that epoch's iterator,
so the callback computes the order of epoch ``e`` at the end of epoch
``e - 1`` (or at the start of training for the first epoch), with the model
as training left it; see :mod:`tfrs_irns.batching.gcbs` for the method.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from tfrs_irns.batching.gcbs import embed_examples, gcbs_order
from tfrs_irns.batching.gcbs_ann import import_faiss
from tfrs_irns.batching.gcbs_diagnostics import compare_orders, links_in_batch
from tfrs_irns.batching.params import GcbsParams
from tfrs_irns.batching.pipeline import TrainPipeline
from tfrs_irns.data.progress import Progress

# Seconds a recompute may run silently before progress lines start (stderr).
PROGRESS_AFTER = 5.0

# Keys added to every epoch's Keras logs (NaN on epochs GCBS did not order,
# so History keeps one value per epoch for every key).
LOG_KEYS: tuple[str, ...] = (
    "gcbs_active",
    "gcbs_seconds",
    "gcbs_diagnostics_seconds",
    "gcbs_links_per_example",
    "gcbs_bandwidth",
    "gcbs_links_in_batch",
    "gcbs_neg_sim",
    "gcbs_neg_sim_random",
    "gcbs_hit_share",
    "gcbs_hit_share_random",
    "gcbs_same_user_share",
    "gcbs_same_user_share_random",
    "gcbs_gap",
    "gcbs_gap_random",
)

Tower = Union[tf.keras.layers.Layer, Callable[[tf.Tensor], Any]]


def _as_numpy_fn(tower: Tower) -> Callable[[np.ndarray], np.ndarray]:
    if isinstance(tower, tf.keras.layers.Layer):
        return lambda ids: tower(tf.constant(ids, tf.int32), training=False).numpy()
    return lambda ids: np.asarray(tower(tf.constant(ids, tf.int32)))


class GCBSCallback(tf.keras.callbacks.Callback):
    """Tail Batch Sampling: hard-negative batches on the epochs it is due.

    Epochs count from 1 as Keras prints them. GCBS orders epoch ``e`` when
    ``params.is_due(e)``: ``e >= start_epoch`` and ``(e - start_epoch) % every == 0``; the other
    epochs keep the pipeline's random order. Before a due epoch the callback
    embeds every training pair with the current towers (inference mode),
    builds the hard-negative graph, reorders it and hands the permutation to
    ``pipeline.set_epoch_order``.

    Each epoch's logs (hence ``History``) get the :data:`LOG_KEYS`: whether
    GCBS ordered the epoch, the seconds the order took (and the diagnostics
    after it), the links kept per example, the bandwidth of the reordered
    graph, the share of links inside a batch, and, for the new order and a
    random one, the mean in-batch negative similarity, the shares of
    accidental hits and same-user pairs, and the estimated
    ``L_global - L_train`` gap (:mod:`~tfrs_irns.batching.gcbs_diagnostics`).
    They are NaN on epochs GCBS did not order, so every key has one value per
    epoch. With ``log_dir`` they also go to TensorBoard under
    ``log_dir/gcbs`` (due epochs only).

    Args:
      pipeline: the :class:`TrainPipeline` the model trains on.
      towers: ``(query_tower, candidate_tower)`` (Keras layers or functions of
        int32 indices), a model with ``query_tower``/``candidate_tower``, or
        None for the model being fitted.
      params: the GCBS settings (:class:`~tfrs_irns.batching.params.GcbsParams`,
        checked when built): the due epochs, the order itself (see
        :func:`~tfrs_irns.batching.gcbs.gcbs_order`; ``seed`` and the epoch
        make each order reproducible), how the hard items are found and the
        bounds of a recompute (``graph_builder``: ``"ann"`` checks here that
        faiss is installed) and ``diagnostics``, the similarity /
        gap measures. Those are off by default: on ml-latest-small they took
        2.8 s of a 3.9 s recompute (``benchmarks/gcbs.py --overhead``), most
        of GCBS's share of a short run; turn them on to check that batches
        got harder.
      log_dir: TensorBoard directory, optional.
      temperature: divides scores in the loss-gap estimate (the model's
        softmax temperature).
      initial_epoch: the ``initial_epoch`` given to ``fit`` when resuming.
      resume_mid_epoch: training resumes inside epoch ``initial_epoch + 1``,
        whose order the pipeline already holds (restored from a backup):
        keep it rather than recompute it from mid-epoch weights.
      verbose: print one line per GCBS epoch.
      progress_after, progress_out: a recompute running longer than
        ``progress_after`` seconds prints "still working" lines (see
        :class:`~tfrs_irns.data.progress.Progress`) to ``progress_out``
        (default stderr).
    """

    def __init__(
        self,
        pipeline: TrainPipeline,
        towers: Union[None, tf.keras.Model, Sequence[Tower]] = None,
        params: Optional[GcbsParams] = None,
        *,
        log_dir: Optional[str] = None,
        temperature: float = 1.0,
        initial_epoch: int = 0,
        resume_mid_epoch: bool = False,
        verbose: int = 0,
        progress_after: float = PROGRESS_AFTER,
        progress_out: Optional[Any] = None,
    ) -> None:
        super().__init__()
        if params is not None and not isinstance(params, GcbsParams):
            raise TypeError(f"params: expected a GcbsParams, got {type(params).__name__}")
        self.pipeline = pipeline
        self.towers = towers
        self.gcbs = params if params is not None else GcbsParams()
        if self.gcbs.graph_builder == "ann":
            import_faiss()  # fail now, not after the first epoch
        self.log_dir = log_dir
        self.temperature = float(temperature)
        self.initial_epoch = int(initial_epoch)
        self.resume_mid_epoch = bool(resume_mid_epoch)
        self.verbose = verbose
        self.progress_after = float(progress_after)
        self.progress_out = progress_out
        self._planned: Optional[tuple[int, dict[str, float]]] = None
        self._writer: Optional[Any] = None

    # ----------------------------------------------------------- Keras hooks

    def on_train_begin(self, logs: Optional[dict] = None) -> None:
        if not self.resume_mid_epoch:
            self._plan(self.initial_epoch + 1)

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        done = epoch + 1  # 1-based
        stats = self._planned[1] if self._planned and self._planned[0] == done else {}
        if logs is not None:
            logs.update({key: float(stats.get(key, math.nan)) for key in LOG_KEYS})
            logs["gcbs_active"] = 1.0 if stats else 0.0
        last = done >= self.params.get("epochs", done + 1) if self.params else False
        if not last and not getattr(self.model, "stop_training", False):
            self._plan(done + 1)

    def on_train_end(self, logs: Optional[dict] = None) -> None:
        # Leave the pipeline random for whatever uses it next.
        self.pipeline.set_epoch_order(None)
        if self._writer is not None:
            self._writer.flush()

    # ------------------------------------------------------------- the work

    def order_for(self, epoch: int) -> tuple[np.ndarray, dict[str, float]]:
        """Compute (without applying) the GCBS order of 1-based ``epoch`` and its stats."""
        pipe = self.pipeline
        clock = time.perf_counter()
        query_fn, candidate_fn = self._tower_fns()
        emb = embed_examples(pipe.users, pipe.items, query_fn, candidate_fn)
        result = gcbs_order(emb, pipe.batch_size, self.gcbs, epoch=epoch)
        stats = {
            "gcbs_active": 1.0,
            "gcbs_seconds": time.perf_counter() - clock,
            "gcbs_links_per_example": float(result.links_per_example),
            "gcbs_bandwidth": float(result.bandwidth),
        }
        if self.gcbs.diagnostics:
            clock = time.perf_counter()
            stats["gcbs_links_in_batch"] = links_in_batch(result.src, result.dst, result.order, pipe.batch_size)
            rng = np.random.default_rng([self.gcbs.seed, epoch, 1])
            found = compare_orders(emb, result.order, pipe.batch_size, rng, self.temperature)
            stats.update({"gcbs_" + key: value for key, value in found.items()})
            stats["gcbs_diagnostics_seconds"] = time.perf_counter() - clock
        return result.order, stats

    def _plan(self, epoch: int) -> None:
        if not self.gcbs.is_due(epoch):
            self.pipeline.set_epoch_order(None)
            self._planned = None
            return
        label = f"GCBS: ordering {self.pipeline.num_examples:,} examples for epoch {epoch}"
        with Progress(label, after=self.progress_after, out=self.progress_out):
            order, stats = self.order_for(epoch)
        self.pipeline.set_epoch_order(order)
        self._planned = (epoch, stats)
        self._log(epoch, stats)

    def _tower_fns(self) -> tuple[Callable, Callable]:
        towers = self.towers if self.towers is not None else self.model
        if isinstance(towers, (tuple, list)):
            query, candidate = towers
        elif hasattr(towers, "query_tower") and hasattr(towers, "candidate_tower"):
            query, candidate = towers.query_tower, towers.candidate_tower
        else:
            raise TypeError(
                "GCBSCallback needs towers=(query_tower, candidate_tower) or a model with "
                f"query_tower and candidate_tower attributes, got {type(towers).__name__}"
            )
        return _as_numpy_fn(query), _as_numpy_fn(candidate)

    def _log(self, epoch: int, stats: dict[str, float]) -> None:
        if self.verbose:
            print(
                f"GCBS epoch {epoch}: {self.pipeline.num_examples} examples ordered in "
                f"{stats['gcbs_seconds']:.2f}s, in-batch negative similarity "
                f"{stats.get('gcbs_neg_sim', math.nan):.4f} (random "
                f"{stats.get('gcbs_neg_sim_random', math.nan):.4f})"
            )
        if self.log_dir is None:
            return
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(os.path.join(self.log_dir, "gcbs"))
        with self._writer.as_default():
            for key, value in stats.items():
                tf.summary.scalar(key, value, step=epoch)
