"""Champion vs challenger: both models scored through their own vocabularies on the same raw-id splits."""

import numpy as np
import pytest

from tfrs_irns.config import Config
from tfrs_irns.runs.champion import Comparison, ModelSide, Protocol, RawSplit, protocol_of, score, version_side

# Two users, three items, 2-d embeddings: a prefers x, b prefers y (x and z tie for b, x has the lower index).
USERS = np.array(["a", "b"])
ITEMS = np.array(["x", "y", "z"])
USER_EMB = np.array([[0, 0], [1, 0], [0, 1]], np.float32)  # row 0 = OOV
ITEM_EMB = np.array([[0, 0], [1, 0], [0, 1], [-1, 0]], np.float32)


def side():
    return ModelSide("m", USERS, ITEMS, ITEM_EMB, lambda index: USER_EMB[index])


def split():
    # (a, x): rank 1; (b, x): rank 2 behind y; (c, x): c is unknown; (a, w): w is unknown.
    return RawSplit("v", np.array(["a", "b", "c", "a"]), np.array(["x", "x", "x", "w"]),
                    train_users=np.array(["b", "c"]), train_items=np.array(["y", "x"]))


def protocol(metric, k, exclude_seen=False):
    return Protocol("val_" + metric, metric, k, exclude_seen, None, 0)


@pytest.mark.parametrize(
    "metric, k, exclude_seen, expected",
    [
        ("hit_rate@1", 1, False, 1 / 4),  # unknown users and unknown items are misses, in the denominator
        ("hit_rate@2", 2, False, 2 / 4),
        ("hit_rate@1", 1, True, 2 / 4),  # b saw y in training: excluded, x moves up to rank 1
    ],
)
def test_score_matches_a_hand_computed_ranking(metric, k, exclude_seen, expected):
    assert score(side(), split(), protocol(metric, k, exclude_seen)) == pytest.approx(expected)


def test_a_model_that_knows_nobody_scores_zero():
    stranger = ModelSide("s", np.array(["q"]), ITEMS, ITEM_EMB, lambda index: USER_EMB[index])
    assert score(stranger, split(), protocol("hit_rate@3", 3)) == 0.0


@pytest.mark.slow
def test_a_published_version_scores_as_its_arrays(tmp_path):
    from tfrs_irns.export.saved_model import export_embeddings

    rng = np.random.default_rng(0)
    users = np.array([f"u{i}" for i in range(30)])
    items = np.array([f"i{i}" for i in range(50)])
    user_emb, item_emb = rng.normal(size=(31, 4)).astype(np.float32), rng.normal(size=(51, 4)).astype(np.float32)
    version = export_embeddings(user_emb, item_emb, users, items, base_dir=str(tmp_path), name="m", k=5)
    test = RawSplit("v", rng.choice(np.append(users, "new"), 80), rng.choice(np.append(items, "gone"), 80),
                    rng.choice(users, 100), rng.choice(items, 100))
    arrays = ModelSide("arrays", users, items, item_emb, lambda index: user_emb[index])
    for p in (protocol("hit_rate@10", 10), protocol("mrr", 10, exclude_seen=True)):
        assert score(version_side("v", version), test, p) == pytest.approx(score(arrays, test, p), abs=1e-6)


def test_the_protocol_follows_the_monitor():
    config = Config()
    config.eval.ks = [1, 10, 50]
    config.train.early_stopping.monitor = "val_recall@10"
    p = protocol_of(config)
    assert (p.monitor, p.metric, p.k) == ("val_recall@10", "recall@10", 10)
    config.train.early_stopping.monitor = "loss"  # a served model has no loss: the largest hit rate instead
    p = protocol_of(config)
    assert (p.monitor, p.metric, p.k) == ("val_hit_rate@50", "hit_rate@50", 50)


def test_the_challenger_must_be_as_good_on_every_split():
    both = Comparison("val_mrr", [("one", 0.5, 0.4), ("two", 0.3, 0.31)])
    assert not both.better(0.0) and both.better(0.01)
    assert not Comparison("val_mrr", []).better(1.0)
    assert both.describe("v/3") == "val_mrr of this run vs v/3, trained on other data: 0.5000 vs 0.4000 one, 0.3000 vs 0.3100 two"
