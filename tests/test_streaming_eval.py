"""Streamed evaluation: a split read from its shards a group of users at a time gives the in-memory numbers."""

import numpy as np
import pytest

import tfrs_irns  # noqa: F401
from tfrs_irns.config import CsvConfig, DataConfig
from tfrs_irns.data.streaming import iter_blocks, prepare_streamed
from tfrs_irns.errors import DataError
from tfrs_irns.evaluation.evaluate import evaluate_embeddings
from tfrs_irns.evaluation.streamed import evaluate_streamed

from helpers import assert_same_metrics


@pytest.fixture(scope="module")
def streamed(tmp_path_factory):
    root = tmp_path_factory.mktemp("streamed_eval")
    rng = np.random.default_rng(3)
    rows = [(f"u{rng.integers(0, 70)}", f"i{rng.integers(0, 90)}", int(t)) for t in rng.integers(0, 100, 2500)]
    path = root / "log.csv"
    with open(path, "w") as fh:
        fh.write("u,i,t\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows))
    cfg = DataConfig(
        source="csv", path=str(path), split="random", duplicates="keep_all", streaming=True, test_fraction=0.3,
        csv=CsvConfig(user_column="u", item_column="i", timestamp_column="t"),
    )
    return prepare_streamed(cfg, str(root / "cache"), load_train=True)


def _embeddings(streamed, seed=0):
    rng = np.random.default_rng(seed)
    data = streamed.data
    user_emb = rng.normal(size=(data.num_users + 1, 6)).astype(np.float32)
    item_emb = rng.normal(size=(data.num_items + 1, 6)).astype(np.float32)
    return user_emb, item_emb


@pytest.fixture(scope="module")
def records(streamed):
    """The test split's records read once (the passes then cost no file reads)."""
    blocks = list(iter_blocks(streamed.files["test"]))
    return lambda: iter(blocks)


@pytest.mark.parametrize("users_per_pass", [1, 7, 10**6])
@pytest.mark.parametrize("options", [{}, {"exclude_seen": True}, {"max_queries": 20, "seed": 5}])
def test_a_split_evaluated_in_passes_gives_the_in_memory_numbers(streamed, records, users_per_pass, options):
    data = streamed.data
    user_emb, item_emb = _embeddings(streamed)
    history = {"train_users": data.train.user, "train_items": data.train.item, "item_counts": data.item_counts}
    kwargs = dict(history, ks=[1, 10, 50], **options)
    one = evaluate_embeddings(user_emb, item_emb, data.test.user, data.test.item, **kwargs)
    assert len(streamed.files["test"]) > 1 and len(data.test) > 500
    passes = evaluate_streamed(user_emb, item_emb, records, users_per_pass=users_per_pass, **kwargs)
    assert_same_metrics(one, passes)


def test_a_pass_holds_only_its_groups_rows(streamed, monkeypatch):
    held = []
    from tfrs_irns.evaluation import streamed as module

    original = module._group_rows

    def recording(records, group):
        users, items = original(records, group)
        held.append(len(users))
        return users, items

    monkeypatch.setattr(module, "_group_rows", recording)
    user_emb, item_emb = _embeddings(streamed)
    # Read from the files themselves here: each pass a fresh read of the split's shards.
    result = evaluate_streamed(user_emb, item_emb, lambda: iter_blocks(streamed.files["test"]), users_per_pass=20, ks=[5])
    users = np.unique(streamed.data.test.user)
    assert len(held) == -(-len(users) // 20) and sum(held) == len(streamed.data.test) == result["num_test_interactions"]
    assert max(held) < len(streamed.data.test) / 2


def test_rows_per_pass_bounds_a_pass_whatever_the_users(streamed, monkeypatch):
    # Few users with many rows each: the row bound, not the user bound, cuts the passes.
    held = []
    from tfrs_irns.evaluation import streamed as module

    original = module._group_rows
    monkeypatch.setattr(module, "_group_rows", lambda r, g: held.append(len(original(r, g)[0])) or original(r, g))
    user_emb, item_emb = _embeddings(streamed)
    test = streamed.data.test
    bound = len(test) // 5
    result = evaluate_streamed(
        user_emb, item_emb, lambda: iter_blocks(streamed.files["test"]), users_per_pass=10**6, rows_per_pass=bound,
        ks=[5],
    )
    one = evaluate_embeddings(user_emb, item_emb, test.user, test.item, ks=[5])
    assert_same_metrics(one, result)
    assert len(held) >= 5 and sum(held) == len(test) and max(held) < 2 * bound


def test_streamed_evaluation_refuses_what_evaluate_embeddings_refuses(streamed, records):
    user_emb, item_emb = _embeddings(streamed)
    with pytest.raises(DataError, match="no test interactions"):
        evaluate_streamed(user_emb, item_emb, lambda: iter([]), ks=[5])
    with pytest.raises(DataError, match=r"test item index 999 is outside the item embedding table"):
        evaluate_streamed(user_emb, item_emb, lambda: iter([np.array([[1], [999]])]), ks=[5])
    with pytest.raises(ValueError, match="users_per_pass must be >= 1, got 0"):
        evaluate_streamed(user_emb, item_emb, records, users_per_pass=0)
    with pytest.raises(ValueError, match="rows_per_pass must be >= 1, got 0"):
        evaluate_streamed(user_emb, item_emb, records, rows_per_pass=0)
