"""The metric-name grammar, written once: ``hit_rate@10``, ``val_ndcg@100``,
``val_mrr``, ``loss``. The evaluation names its results by it, the validation
callback logs by it, early stopping and the config's ``monitor`` check read
it. No TensorFlow: the config imports it (``*/params.py`` are layer 0).
"""

from __future__ import annotations

from typing import Sequence

#: Metrics cut at K (``name@K``); ``mrr`` has no cut-off.
AT_K = ("hit_rate", "recall", "ndcg", "coverage")
#: The prefix Keras gives validation metrics in the epoch logs.
VALIDATION = "val_"


def metric_names(ks: Sequence[int]) -> list[str]:
    """Every ranking metric name for cut-offs ``ks``: ``hit_rate@K`` ... ``coverage@K``, then ``mrr``."""
    return [f"{metric}@{k}" for metric in AT_K for k in ks] + ["mrr"]


def monitor_names(ks: Sequence[int]) -> list[str]:
    """What early stopping may watch: the training ``loss`` or a validation metric (``val_`` + a metric name)."""
    return ["loss"] + [VALIDATION + name for name in metric_names(ks)]


def validation_keys(ks: Sequence[int], monitor: str = "loss") -> list[str]:
    """Validation metrics logged each epoch (without the prefix): every
    ``hit_rate@K``, ``mrr``, and the ``monitor``-ed one."""
    keys = [f"hit_rate@{k}" for k in ks] + ["mrr"]
    if monitor.startswith(VALIDATION) and monitor[len(VALIDATION):] not in keys:
        keys.append(monitor[len(VALIDATION):])
    return keys


def monitor_mode(monitor: str) -> str:
    """``min`` for a loss, ``max`` for a ranking metric (higher is better)."""
    return "min" if monitor.endswith("loss") else "max"
