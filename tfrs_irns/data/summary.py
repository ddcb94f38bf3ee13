"""What a user checks before a long training: the data as the model will see it.

``tfrs-irns data`` loads and splits the configured data exactly as ``train``
does and reports the numbers that decide whether training makes sense: how
many rows were read and skipped, users and items, interactions per split,
how sparse the training matrix is, how concentrated it is on the head (the
share of training interactions on the top 1% of items: popularity-heavy data
favours a popularity baseline and needs logQ correction), and the cold-test
share (test interactions whose user or item never occurs in training: those
are misses for any retrieval model, whatever its quality).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Optional, TypeVar

import numpy as np

from tfrs_irns.data.params import DataParams
from tfrs_irns.data.prepare import PreparedData, prepare_from_raw, split_warnings
from tfrs_irns.data.progress import Progress
from tfrs_irns.data.sources import filter_min_rating, load_raw
from tfrs_irns.data.table import Interactions, RawDataset

T = TypeVar("T")


def _distinct(inter: Interactions, side: str) -> int:
    return int(np.count_nonzero(inter.coded(side).used_mask()))


def _known(index: np.ndarray, n: int) -> int:
    """Distinct known (non-OOV) indices, by counting instead of sorting."""
    return int(np.count_nonzero(np.bincount(index, minlength=n + 1)[1:]))


def _trained(index: np.ndarray, counts: np.ndarray) -> int:
    """Distinct indices with a training count (known to training), by counting instead of sorting."""
    return int(np.count_nonzero((np.bincount(index, minlength=len(counts)) > 0) & (counts > 0)))


def summarize(
    raw: RawDataset, data: PreparedData, duplicates: str = "keep_last", below_min_rating: int = 0,
    min_rating: Optional[float] = None, split: str = "random",
) -> dict[str, Any]:
    """The numbers ``tfrs-irns data`` prints, as a JSON-ready dict (``duplicates``: the
    ``data.duplicates`` policy ``raw`` was loaded with; ``below_min_rating``: the rows
    ``data.min_rating`` dropped from it)."""
    # keep_all leaves each repeat in the table; the other policies dropped them.
    keep_all = duplicates == "keep_all"
    splits = {}
    for name in ("train", "validation", "test"):
        part = getattr(data, name)
        splits[name] = {
            "interactions": len(part),
            "users": _known(part.user, data.num_users),
            "items": _trained(part.item, data.item_counts),
        }
    train = data.train
    # Items with a training count: data.split=cold_items keeps its cold items in the vocabulary, unseen.
    users, items = data.num_users, int(np.count_nonzero(data.item_counts[1:] > 0))
    if keep_all:  # distinct pairs by one sort (np.unique's hash path was 10x slower here)
        keys = np.sort(train.user.astype(np.int64) * (data.num_items + 1) + train.item)
        pairs = int(np.count_nonzero(np.diff(keys))) + 1 if len(keys) else 0
    else:  # repeats were collapsed at load: every training row is its own pair
        pairs = len(train)
    counts = np.sort(data.item_counts[1:])[::-1]
    top = max(1, math.ceil(0.01 * items))
    test = data.test
    # Unseen in training: OOV; a user past the vocabulary (data.split=cold_users' held-out users); an item
    # with no training count (OOV, or a cold item of data.split=cold_items, in the vocabulary with count 0).
    cold_user, cold_item = (test.user == 0) | (test.user > users), data.item_counts[test.item] <= 0
    share = lambda mask: float(mask.mean()) if len(mask) else 0.0  # noqa: E731
    return {
        "description": data.description,
        # Repeated pairs were dropped unless every copy was kept (data.duplicates=keep_all).
        "rows_read": len(raw.interactions) + raw.skipped_rows + (0 if keep_all else raw.duplicate_rows)
        + below_min_rating,
        "rows_skipped": raw.skipped_rows,
        "rows_below_min_rating": below_min_rating,
        "min_rating": min_rating,
        "duplicate_rows": raw.duplicate_rows,
        "duplicates_kept": keep_all,
        "interactions": len(raw.interactions),
        "users": _distinct(raw.interactions, "user"),
        "items": _distinct(raw.interactions, "item"),
        "catalogue": len(raw.items),
        "splits": splits,
        "train_users": users,
        "train_items": items,
        "train_distinct_pairs": pairs,
        "sparsity": 1.0 - pairs / (users * items) if users and items else 1.0,
        "top1pct_items": top,
        "top1pct_share": float(counts[:top].sum() / counts.sum()) if counts.sum() else 0.0,
        "cold_test_user_share": share(cold_user),
        "cold_test_item_share": share(cold_item),
        "cold_test_share": share(cold_user | cold_item),
        "warnings": split_warnings(data, split),
    }


def _stage(seconds: dict[str, float], name: str, label: Optional[str], fn: Callable[[], T]) -> T:
    start = time.perf_counter()
    if label is None:  # the stage reports its own progress
        result = fn()
    else:
        with Progress(label):
            result = fn()
    seconds[name] = time.perf_counter() - start
    return result


def data_report(cfg: DataParams) -> dict[str, Any]:
    """Load, split and encode ``cfg``'s data as ``train`` would; the summary with
    per-stage wall times (``seconds``: load, split+encode, summary, total)."""
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    # Loaded without the rating filter, then filtered as load_raw does: the rows it drops are counted.
    raw = _stage(seconds, "load", None, lambda: load_raw(dataclasses.replace(cfg, min_rating=None)))
    below = 0
    if cfg.min_rating is not None:
        unfiltered = len(raw.interactions)
        raw = filter_min_rating(raw, cfg.min_rating, cfg.source)
        below = unfiltered - len(raw.interactions)
    data = _stage(seconds, "split+encode", "splitting and encoding", lambda: prepare_from_raw(raw, cfg))
    report = _stage(
        seconds, "summary", "summarising", lambda: summarize(raw, data, cfg.duplicates, below, cfg.min_rating, cfg.split)
    )
    seconds["total"] = time.perf_counter() - start
    report["seconds"] = seconds
    return report
