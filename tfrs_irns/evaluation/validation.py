"""Full-corpus metrics at each epoch's end, for early stopping.

Retrieval models overfit fast: on MovieLens the test hit rate of an in-batch
model peaks after a few epochs and then falls below a most-popular list. The
metric users care about (hit rate over the whole catalogue) is not the
training loss, so this callback computes it on a held-out split at every
epoch's end and puts it in the Keras logs as ``val_<metric>`` — where
``tf.keras.callbacks.EarlyStopping``, ``TensorBoard`` and ``History`` find it.
Under multi-worker training each worker ranks its share of the users and the
workers' sums are combined (:mod:`~tfrs_irns.evaluation.shares`), so every
worker logs the same numbers and early stopping decides alike everywhere.
"""

from __future__ import annotations

from typing import Optional, Sequence

import tensorflow as tf

from tfrs_irns.data.prepare import PreparedData
from tfrs_irns.evaluation.evaluate import DEFAULT_KS, ProtocolArgs, evaluate_model
from tfrs_irns.evaluation.params import validation_keys
from tfrs_irns.evaluation.ranking import CHUNK_SIZE
from tfrs_irns.evaluation.shares import WorkerShare, worker_share


class EpochMetrics(tf.keras.callbacks.Callback):
    """Adds ``<prefix><metric>`` for every top-level metric to the epoch logs.

    Args:
      data: the ``PreparedData`` the model trains on.
      split: ``"validation"`` (early stopping) or ``"test"`` (benchmark curves
        only — never select a model on the test split).
      ks, exclude_seen, chunk_size, seed: as in
        :func:`~tfrs_irns.evaluation.evaluate.evaluate_embeddings`.
      max_queries: score at most this many users (seeded sample, the same
        users every epoch) so the callback stays cheap: only they go through
        the query tower.
      device: where the ranking runs (``"auto"``: TensorFlow when a GPU is
        visible, else numpy; the same numbers).
      prefix: key prefix in the logs, ``"val_"`` by default.
      keys: metrics to log (without prefix); default every ``hit_rate@K``
        and ``mrr`` — enough to stop on and short enough for the progress bar.
    """

    def __init__(
        self,
        data: PreparedData,
        split: str = "validation",
        ks: Sequence[int] = DEFAULT_KS,
        exclude_seen: bool = False,
        chunk_size: int = CHUNK_SIZE,
        max_queries: Optional[int] = None,
        prefix: str = "val_",
        seed: int = 0,
        keys: Optional[Sequence[str]] = None,
        device: str = "auto",
    ) -> None:
        super().__init__()
        self.data = data
        self.split = split
        # The same protocol every epoch (and the same sampled users).
        self.protocol = ProtocolArgs(
            ks=list(ks), exclude_seen=exclude_seen, chunk_size=chunk_size, max_queries=max_queries, seed=seed,
            device=device,
        )
        self.prefix = prefix
        self.keys = list(keys) if keys is not None else validation_keys(ks)
        self._share: Optional[WorkerShare] = None
        self._share_known = False

    def compute(self) -> dict[str, float]:
        """The metrics of the model's current weights, with the log prefix."""
        if not self._share_known:  # the model's strategy says which users this worker ranks
            self._share = worker_share(getattr(self.model, "distribute_strategy", None))
            self._share_known = True
        metrics = evaluate_model(self.model, self.data, self.split, share=self._share, **self.protocol)
        return {self.prefix + key: float(metrics[key]) for key in self.keys}

    def on_epoch_end(self, epoch: int, logs: Optional[dict] = None) -> None:
        if logs is not None:
            logs.update(self.compute())
