"""Champion versus challenger: the served version and a new run, scored on the same data.

A run trained on other data than the served version cannot be judged by the
numbers each recorded on its own data: a small experiment scores well on its
small catalogue, and a model that never saw most of the served users would
still replace them all with the unknown-user answer. TFX's Evaluator settles
this by scoring both models on the same examples; so does this module.

Each model is scored through its own vocabularies, as it would serve: a user
or item it does not know is a miss (not the OOV embedding), and each ranks its
own whole catalogue. Both are scored on

* the challenger's validation split (what it was selected on), and
* the champion's validation split, when the data it was trained on can still
  be read and has the fingerprint recorded with it,

with one protocol (``eval.ks``, ``eval.exclude_seen``, the early-stopping
sample of ``train.early_stopping.max_queries`` users), on the metric that
selects epochs (``train.early_stopping.monitor``; the largest ``hit_rate@K``
when it monitors the loss, which a served model cannot be scored on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

from tfrs_irns.config import Config, from_dict
from tfrs_irns.data.prepare import PreparedData, prepare_data
from tfrs_irns.errors import UserError
from tfrs_irns.evaluation.evaluate import evaluate_embeddings

# Users embedded per signature call when a SavedModel is scored.
_BATCH = 8192


@dataclass
class ModelSide:
    """A model seen from outside: raw ids → embeddings, as it would serve."""

    label: str
    user_ids: np.ndarray  # str, the known users (index i + 1)
    item_ids: np.ndarray  # str, the catalogue (index i + 1)
    item_embeddings: np.ndarray  # float32 [len(item_ids) + 1, d], row 0 unused
    embed_users: Callable[[np.ndarray], np.ndarray]  # user indices (1-based) → [n, d]


def run_side(label: str, model: Any, data: PreparedData) -> ModelSide:
    """A trained :class:`~tfrs_irns.models.two_tower.TwoTowerModel` with its run's vocabularies."""
    users = np.asarray(model.user_embeddings(), np.float32)
    return ModelSide(
        label,
        np.asarray(data.user_vocab.ids).astype(str),
        np.asarray(data.item_vocab.ids).astype(str),
        np.asarray(model.item_embeddings(), np.float32),
        lambda index: users[index],
    )


def version_side(label: str, version_dir: str) -> ModelSide:
    """A published SavedModel version, through its ``query_embedding`` and
    ``candidate_embedding`` signatures and its id assets."""
    import os

    import tensorflow as tf

    from tfrs_irns.export.saved_model import ITEMS_FILE, USERS_FILE

    try:
        module = tf.saved_model.load(version_dir)
        with open(os.path.join(version_dir, "assets", USERS_FILE), encoding="utf-8") as fh:
            users = np.array(fh.read().splitlines(), dtype=str)
        with open(os.path.join(version_dir, "assets", ITEMS_FILE), encoding="utf-8") as fh:
            items = np.array([line.split("\t", 1)[0] for line in fh.read().splitlines()], dtype=str)
    except (OSError, ValueError) as exc:
        raise UserError(f"{version_dir}: cannot be read as a SavedModel version ({str(exc).splitlines()[0]})") from None

    def embed(signature: str, name: str, ids: np.ndarray) -> np.ndarray:
        parts = [
            module.signatures[signature](**{name: tf.constant(ids[i:i + _BATCH])})["embedding"].numpy()
            for i in range(0, len(ids), _BATCH)
        ]
        return np.concatenate(parts).astype(np.float32)

    item_emb = embed("candidate_embedding", "item_id", items)
    item_emb = np.concatenate([np.zeros((1, item_emb.shape[1]), np.float32), item_emb])
    return ModelSide(label, users, items, item_emb, lambda index: embed("query_embedding", "user_id", users[index - 1]))


def _lookup(known: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """1-based index of each raw id in the sorted-or-not ``known`` ids; 0 when unknown (or '')."""
    order = np.argsort(known, kind="stable")
    sorted_ids = known[order]
    if not len(known):
        return np.zeros(raw.shape, np.int64)
    pos = np.minimum(np.searchsorted(sorted_ids, raw), len(known) - 1)
    found = (sorted_ids[pos] == raw) & (raw != "")
    return np.where(found, order[pos] + 1, 0).astype(np.int64)


def _raw(vocab_ids: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Raw ids of 1-based indices; '' for OOV and indices past the vocabulary (cold users)."""
    table = np.concatenate([np.array([""]), np.asarray(vocab_ids).astype(str)])
    index = np.asarray(index, np.int64)
    return np.where(index < len(table), table[np.minimum(index, len(table) - 1)], "")


@dataclass
class RawSplit:
    """A split as raw ids, with the training pairs ``exclude_seen`` removes."""

    label: str
    users: np.ndarray
    items: np.ndarray
    train_users: np.ndarray
    train_items: np.ndarray


def validation_split(label: str, data: PreparedData) -> Optional[RawSplit]:
    """``data``'s validation split as raw ids (None when it is empty)."""
    if not len(data.validation):
        return None
    u, i = data.user_vocab.ids, data.item_vocab.ids
    return RawSplit(
        label,
        _raw(u, data.validation.user), _raw(i, data.validation.item),
        _raw(u, data.train.user), _raw(i, data.train.item),
    )


@dataclass(frozen=True)
class Protocol:
    """How both models are scored: the metric and the evaluation settings."""

    monitor: str  # what the reason names, e.g. "val_hit_rate@100"
    metric: str  # the evaluate_embeddings key, e.g. "hit_rate@100"
    k: int
    exclude_seen: bool
    max_queries: Optional[int]
    seed: int


def protocol_of(config: Config) -> Protocol:
    """The comparison protocol of a run's config (see the module doc)."""
    monitor = config.train.early_stopping.monitor
    k = max(config.eval.ks)
    if monitor == "loss" or not monitor.startswith("val_"):
        monitor, metric = f"val_hit_rate@{k}", f"hit_rate@{k}"
    else:
        metric = monitor[len("val_"):]
        if "@" in metric:
            k = int(metric.rsplit("@", 1)[1])
    return Protocol(
        monitor, metric, k, config.eval.exclude_seen, config.train.early_stopping.max_queries, config.train.seed
    )


def score(side: ModelSide, split: RawSplit, protocol: Protocol) -> float:
    """``protocol.metric`` of ``side`` on ``split``; unknown users and items are misses."""
    users = _lookup(side.user_ids, split.users)
    items = _lookup(side.item_ids, split.items)
    items = np.where(users > 0, items, 0)  # an unknown user gets no answer from this model: a miss
    queries = np.unique(users[users > 0])
    # Rows: 0 = unused (every unknown user's targets are misses), then each known test user.
    rows = np.zeros_like(users)
    rows[users > 0] = np.searchsorted(queries, users[users > 0]) + 1
    dim = side.item_embeddings.shape[1]
    query_emb = np.zeros((len(queries) + 1, dim), np.float32)
    if len(queries):
        query_emb[1:] = side.embed_users(queries)
    train_u = _lookup(side.user_ids, split.train_users)
    train_i = _lookup(side.item_ids, split.train_items)
    pos = np.searchsorted(queries, train_u) if len(queries) else np.zeros_like(train_u)
    pos = np.minimum(pos, max(len(queries) - 1, 0))
    keep = (train_u > 0) & (train_i > 0) & (len(queries) > 0)
    if len(queries):
        keep &= queries[pos] == train_u
    metrics = evaluate_embeddings(
        query_emb, side.item_embeddings, rows, items,
        ks=(protocol.k,),
        train_users=(pos + 1)[keep], train_items=train_i[keep],
        exclude_seen=protocol.exclude_seen,
        max_queries=protocol.max_queries,
        seed=protocol.seed,
    )
    value = metrics.get(protocol.metric)
    return 0.0 if value is None else float(value)


def served_data(metadata: dict[str, Any]) -> Optional[PreparedData]:
    """The data the served version was trained on, if it can still be read
    unchanged (its fingerprint matches the recorded one); else None."""
    try:
        config = from_dict(metadata["config"])
        data = prepare_data(config.data)
    except Exception:  # noqa: BLE001 - moved, changed or unreadable: that split is skipped, as documented
        return None
    return data if data.fingerprint and data.fingerprint == metadata.get("data_fingerprint") else None


@dataclass
class Comparison:
    """The two models' scores on each split both were scored on."""

    monitor: str
    rows: list[tuple[str, float, float]]  # (split label, challenger, champion)

    def better(self, tolerance: float) -> bool:
        """The challenger is at least as good (within ``tolerance``) on every split."""
        return bool(self.rows) and all(mine >= theirs - tolerance for _, mine, theirs in self.rows)

    def describe(self, champion: str) -> str:
        parts = [f"{mine:.4f} vs {theirs:.4f} {label}" for label, mine, theirs in self.rows]
        return f"{self.monitor} of this run vs {champion}, trained on other data: " + ", ".join(parts)


def compare(
    challenger: ModelSide,
    challenger_data: PreparedData,
    champion: ModelSide,
    champion_metadata: dict[str, Any],
    protocol: Protocol,
) -> Comparison:
    """Score both models on the challenger's validation split and, when it can
    be read, on the champion's (see the module doc)."""
    rows = []
    splits = [validation_split("on this run's validation split", challenger_data)]
    theirs = served_data(champion_metadata)
    if theirs is not None:
        splits.append(validation_split("on the served version's validation split", theirs))
    for split in splits:
        if split is not None:
            rows.append((split.label, score(challenger, split, protocol), score(champion, split, protocol)))
    return Comparison(protocol.monitor, rows)
