"""What an export writes beside its SavedModel: item embeddings and an ANN index.

``export.embeddings`` writes the item embeddings and ids next to the version
folder (see :mod:`tfrs_irns.export.embeddings` for the layout and why it is
beside, not inside); ``export.index: faiss`` also builds the index there and
measures it where it matters: its recall@100 against exact brute force for
(up to ``export.ann.recall_users``) test users, recorded in the run's
``metrics.json`` under ``ann`` with the build time and size (the export
returns that entry; :func:`~tfrs_irns.runs.exporting.record_export` writes it).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any, Optional

import numpy as np

from tfrs_irns.runs.rundir import RunDir
from tfrs_irns.runs.training import Run

RECALL_K = 100


def seen_items(run: Run) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """Each user's training (and validation) items as CSR, for the export to
    exclude: from the run's data when loaded, else from its snapshot
    (``tfrs-irns export --run`` loads no data); None for a run that has neither."""
    from tfrs_irns.data.prepare import seen_items as from_data
    from tfrs_irns.data.snapshot import load_seen

    if run.data is not None and len(run.data.train):
        return from_data(run.data)
    return load_seen(RunDir(run.directory).snapshot)


def popular_items(run: Run, k: int) -> list[str]:
    """The ``k`` items with the most training interactions, most first (ties
    to the lower index): the answer for a history of only unknown items."""
    counts = np.asarray(run.catalogue.item_counts, np.float64)[1:]
    if not len(counts) or not counts.any():
        return []
    order = np.argsort(-counts, kind="stable")[: min(k, int(np.count_nonzero(counts)))]
    return [str(run.catalogue.item_vocab.ids[i]) for i in order]


def serving_extras(run: Run) -> dict[str, Any]:
    """What :func:`~tfrs_irns.export.saved_model.export_model` takes from the
    run's data beyond the model: ``seen`` and ``popular``."""
    return {"seen": seen_items(run), "popular": popular_items(run, run.config.export.k), "catalogue": catalogue(run)}


def catalogue(run: Run) -> dict[str, int]:
    """How many items the export serves, and how many of them had no training interaction."""
    counts = np.asarray(run.catalogue.item_counts, np.float64)[1:]
    cold = len(run.catalogue.cold_items)
    return {
        "items": int(len(run.catalogue.item_vocab)),
        "with_interactions": int(np.count_nonzero(counts > 0)),
        "without_interactions": int(np.count_nonzero(counts <= 0)) - cold if len(counts) else 0,
        "cold_items": cold,
    }


def _test_queries(run: Run) -> np.ndarray:
    """Query embeddings of distinct known test users (a seeded sample); of
    known users when the run was loaded without its data (``tfrs-irns export``)."""
    size = run.catalogue.user_vocab.size
    test = run.data.test.user if run.data is not None else np.zeros(0, np.int32)
    # Known users only: cold_users' test users (past the vocabulary) have no row in the export.
    users = np.unique(test[(test > 0) & (test < size)])
    if not len(users):
        users = np.arange(1, size)
    limit = run.config.export.ann.recall_users
    if len(users) > limit:
        users = np.sort(np.random.default_rng(run.config.data.seed).choice(users, limit, replace=False))
    return np.asarray(run.model.user_embeddings(), np.float32)[users]


def _tuning_queries(run: Run) -> np.ndarray:
    """Query embeddings of a seeded sample of known users (another draw than the
    measured test users'), on which the index's search parameter is tuned."""
    users = np.arange(1, run.catalogue.user_vocab.size)
    limit = run.config.export.ann.recall_users
    if len(users) > limit:
        users = np.sort(np.random.default_rng(run.config.data.seed + 1).choice(users, limit, replace=False))
    return np.asarray(run.model.user_embeddings(), np.float32)[users]


def export_serving_files(run: Run, version_dir: str) -> dict[str, Any]:
    """Write the embeddings folder (and index) of ``version_dir``; returns what the run's
    ``metrics.json`` records of it: ``catalogue`` when some items had no training
    interaction, ``ann`` when an index was built."""
    cfg = run.config.export
    served = catalogue(run)
    recorded: dict[str, Any] = {"catalogue": served} if served["without_interactions"] > 0 else {}
    if not cfg.embeddings and cfg.index == "none":
        return recorded
    from tfrs_irns.export.embeddings import write_item_embeddings

    items = np.asarray(run.model.item_embeddings(), np.float32)[1:]
    ids = [str(i) for i in run.catalogue.item_vocab.ids]
    titles = [str(t) for t in run.catalogue.item_titles[1:]]
    ann: dict[str, Any] = {}

    def build_index(folder: str) -> None:
        if cfg.index != "faiss":
            return
        from tfrs_irns.export.ann import AnnIndex, exact_top_k, recall_at_k

        index = AnnIndex.build(items, run.config.export.ann, seed=run.config.data.seed)
        k = min(RECALL_K, len(items))
        tuning = index.tune(_tuning_queries(run), k, run.config.export.ann.target_recall)
        if not tuning["reached"]:
            print(f"note: the ANN index cannot reach recall@{k} {tuning['target_recall']}: {tuning['why']}")
        index.save(folder)
        queries = _test_queries(run)
        start = time.perf_counter()
        _, approx = index.search(queries, k)
        search_seconds = time.perf_counter() - start
        exact = exact_top_k(queries, items, k)
        ann.update(index.info)
        ann.update({
            f"recall@{k}": round(recall_at_k(approx, exact), 4),
            "recall_users": int(len(queries)),
            "search_ms_per_user": round(1000 * search_seconds / max(len(queries), 1), 4),
            "index_mb": round(os.path.getsize(os.path.join(folder, "faiss.index")) / 1e6, 2),
        })
        with open(os.path.join(folder, "index.json"), "w", encoding="utf-8") as fh:
            json.dump(ann, fh, indent=2)

    write_item_embeddings(version_dir, items, ids, titles, projector=cfg.projector, extra=build_index)
    if ann:
        recorded["ann"] = ann
    return recorded
