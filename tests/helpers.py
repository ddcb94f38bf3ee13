"""Shared test helpers: tiny settings and hand-made data that several test files use.

Test files import them from here (``from helpers import with_tiny``), never from ``conftest`` or from
another test file: conftest holds fixtures only, and a test file is not a library
(``tests/test_suite_rules.py`` checks both rules).
"""

import json
import math
import os
import subprocess
import sys
from typing import Optional

import numpy as np
import yaml

import tfrs_irns  # noqa: F401  (pins Keras 2 before any helper touches tf.keras)
from tfrs_irns.data.prepare import Catalogue, EncodedSplit, PreparedData
from tfrs_irns.data.vocab import Vocabulary

# A synthetic dataset small enough to train in seconds, with the quickstart's structure.
TINY_OVERRIDES = [
    "data.synthetic.num_users=200",
    "data.synthetic.num_items=400",
    "data.synthetic.num_interactions=6000",
    "data.synthetic.num_clusters=4",
    "train.batch_size=128",
    "negatives.num_negatives=200",
    "export.enabled=false",
]


def with_tiny(*extra: str) -> list[str]:
    """``TINY_OVERRIDES`` then ``extra`` ``key=value`` pairs, a later pair replacing an earlier one
    of the same key (``--set`` refuses a key given twice)."""
    merged: dict[str, str] = {}
    for pair in list(TINY_OVERRIDES) + list(extra):
        key = pair.split("=", 1)[0]
        merged.pop(key, None)
        merged[key] = pair
    return list(merged.values())


def encoded_split(users, items) -> EncodedSplit:
    """A split of the given user and item indices (timestamps all 0)."""
    return EncodedSplit(np.asarray(users, np.int32), np.asarray(items, np.int32), np.zeros(len(users), np.int64))


def vocabulary(prefix: str, size: int) -> Vocabulary:
    """``size`` known ids whose sorted order is their index: ``f"{prefix}00001"`` is index 1."""
    return Vocabulary(np.array([f"{prefix}{i:05d}" for i in range(1, size + 1)]))


def prepared_data(
    train: EncodedSplit,
    validation: EncodedSplit,
    test: EncodedSplit,
    num_users: int,
    num_items: int,
    item_counts: Optional[np.ndarray] = None,
) -> PreparedData:
    """Real ``PreparedData`` around hand-made splits; ``item_counts`` defaults,
    as in ``prepare_data``, to the training counts with OOV 0 at 0."""
    if item_counts is None:
        item_counts = np.bincount(train.item, minlength=num_items + 1).astype(np.float64)
        item_counts[0] = 0.0
    catalogue = Catalogue(
        user_vocab=vocabulary("user", num_users),
        item_vocab=vocabulary("item", num_items),
        item_counts=np.asarray(item_counts, np.float64),
        item_titles=np.full(num_items + 1, "", dtype=str),
        item_genres=None,
        genre_names=[],
    )
    return PreparedData(
        catalogue, train=train, validation=validation, test=test, description="hand-made test data", skipped_rows=0
    )


def write_tiny_csv(path, repeat: int = 1) -> list[str]:
    """The tiny synthetic interactions as a CSV (``user_id,item_id,timestamp``),
    every row written ``repeat`` times in a row; returns the lines (header first)."""
    from tfrs_irns.config import SyntheticConfig
    from tfrs_irns.data.synthetic import make_synthetic

    cfg = SyntheticConfig(num_users=200, num_items=400, num_interactions=6000, num_clusters=4)
    inter = make_synthetic(cfg, 42).interactions
    rows = [f"{u},{i},{t}" for u, i, t in zip(inter.user_id, inter.item_id, inter.timestamp)]
    lines = ["user_id,item_id,timestamp"] + [row for row in rows for _ in range(repeat)]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    return lines


# The tiny model settings on a CSV written by write_tiny_csv.
TINY_CSV_OVERRIDES = [pair for pair in TINY_OVERRIDES if not pair.startswith("data.synthetic.")] + ["data.source=csv"]


# The tiny IRNS setting of tests/test_irns.py: a catalogue of 12 items, so duplicates and hits happen.
IRNS_NUM_ITEMS, IRNS_DIM = 12, 5


def make_tower(seed: int = 0, num_items: int = IRNS_NUM_ITEMS, dim: int = IRNS_DIM):
    """A built seeded ``Embedding`` candidate tower with rows 0..num_items."""
    import tensorflow as tf

    tower = tf.keras.layers.Embedding(
        num_items + 1, dim, embeddings_initializer=tf.keras.initializers.RandomNormal(seed=seed)
    )
    tower.build((None,))
    return tower


def make_counts():
    """Training counts of the 12 tiny items (index 0, OOV, at 0) and their probabilities."""
    counts = np.array([0, 9, 4, 1, 0, 7, 2, 3, 12, 1, 5, 2, 6], np.float64)
    return counts, counts / counts.sum()


def metrics(**extra):
    """A finished run's ``metrics.json`` content, hand-made (report and listing tests)."""
    base = {
        "hit_rate@10": 0.5, "recall@10": 0.4, "ndcg@10": 0.3, "hit_rate@100": 0.9, "recall@100": 0.8,
        "ndcg@100": 0.35, "mrr": 0.2,
        "head": {"hit_rate@100": 0.95}, "tail": {"hit_rate@100": 0.6},
        "popular_baseline": {"hit_rate@10": 0.25, "hit_rate@100": 0.3, "mrr": 0.05,
                             "head": {"hit_rate@100": 0.99}, "tail": {"hit_rate@100": 0.0}},
        "num_users": 20, "num_items": 40, "num_train": 300, "num_validation": 50, "num_test": 60,
        "epochs_run": 3, "best_epoch": 2, "train_seconds": 1.5,
        "history": {"loss": [3.0, 2.0, 1.5], "val_hit_rate@100": [0.5, 0.9, 0.8], "val_mrr": [0.1, 0.2, 0.15]},
        "validation": {"monitor": "val_hit_rate@100", "value": 0.9, "epoch": 2, "higher_is_better": True},
    }
    base.update(extra)
    return base


def make_run(folder, m=None):
    """A run folder with a config and, given ``m``, its ``metrics.json``."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.yaml"), "w") as fh:
        yaml.safe_dump({"data": {"source": "synthetic", "split": "random"}}, fh)
    if m is not None:
        with open(os.path.join(folder, "metrics.json"), "w") as fh:
            json.dump(m, fh)
    return str(folder)


def fresh_process_result(script: str, args: list, cwd, drop_env: tuple = ("TF_USE_LEGACY_KERAS",)) -> dict:
    """Run ``python -c script *args`` in a fresh process, without the variables ``drop_env``
    (a plain-TensorFlow process: no Keras 2 pin), and return the JSON it prints after ``RESULT ``."""
    env = {k: v for k, v in os.environ.items() if k not in drop_env}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    proc = subprocess.run([sys.executable, "-c", script, *args], cwd=str(cwd), env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))[len("RESULT "):])


def assert_same_metrics(one, combined):
    """Evaluation results of one process (``one``) and of workers or passes combined (``combined``, which
    may add ``users_ranked_by_worker``): counts, hit rates, coverage and the protocol exactly; per-user
    means (recall, NDCG, MRR) to float round-off."""
    assert set(combined) - {"users_ranked_by_worker"} == set(one)
    for key, value in one.items():
        if isinstance(value, dict) and key != "protocol":
            assert_same_metrics(value, dict(combined[key], users_ranked_by_worker=None))
        elif key.startswith(("recall", "ndcg", "mrr")) and value is not None:
            assert math.isclose(combined[key], value, rel_tol=1e-12), key
        else:
            assert combined[key] == value, key


def free_ports(n: int) -> list[int]:
    """``n`` TCP ports free on 127.0.0.1 now (for a local cluster's TF_CONFIG)."""
    import socket

    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports
