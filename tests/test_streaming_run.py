"""A whole run with data.streaming: train from shards, evaluate from the cache, the same numbers as in memory."""

import json
import os

import numpy as np
import pytest

import tfrs_irns  # noqa: F401
from tfrs_irns.config import from_dict
from tfrs_irns.errors import UserError
from tfrs_irns.runs.evaluating import evaluate_saved_run
from tfrs_irns.runs.training import evaluate_run, load_run, train

# Each test here trains or starts a process (a module fixture trains once): the full suite's tier.
pytestmark = pytest.mark.slow


def _config(path, streaming, **data):
    return from_dict({
        "name": "streamed",
        "data": {
            "source": "csv", "path": str(path), "split": "leave_last_out", "duplicates": "keep_all",
            "streaming": streaming, "csv": {"user_column": "u", "item_column": "i", "timestamp_column": "t"}, **data,
        },
        "model": {"embedding_dim": 8},
        "train": {"epochs": 2, "batch_size": 64, "early_stopping": {"enabled": False}},
        "negatives": {"num_negatives": 20},
        "eval": {"ks": [20, 100]},
        "export": {"enabled": False},
    })


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("streamed")
    rng = np.random.default_rng(0)
    pairs = rng.choice(60 * 80, 1500, replace=False)
    path = root / "log.csv"
    with open(path, "w") as fh:
        fh.write("u,i,t\n")
        for p, t in zip(pairs, rng.integers(0, 100, len(pairs))):
            fh.write(f"u{p // 80},i{p % 80},{t}\n")
    streamed = train(_config(path, True), str(root / "runs" / "s"), verbose=0)
    memory = train(_config(path, False), str(root / "runs" / "m"), verbose=0)
    return root, path, streamed, memory


def test_a_streamed_run_trains_on_the_in_memory_runs_data(runs):
    root, _, streamed, memory = runs
    m = json.loads(open(os.path.join(streamed.directory, "metrics.json")).read())
    assert m["num_train"] == memory.metrics["num_train"] > 0
    assert m["num_test"] == memory.metrics["num_test"] and m["num_users"] == memory.metrics["num_users"]
    assert m["epochs_run"] == 2 and m["train_examples_per_second"] > 0
    assert m["data_streaming"]["cache"].startswith(str(root / "runs" / ".tfrs-irns-cache"))
    # Same split, same most-popular baseline: it depends on the data only.
    assert m["popular_baseline"]["hit_rate@20"] == memory.metrics["popular_baseline"]["hit_rate@20"]
    # And a model that learned something (above the popular baseline's floor of 0 at worst).
    assert 0.0 <= m["hit_rate@20"] <= 1.0


def test_evaluate_reuses_the_cache_and_gives_the_training_numbers(runs):
    _, _, streamed, _ = runs
    again = load_run(streamed.directory)
    assert len(again.data.train) == 0 and len(again.data.test) == streamed.metrics["num_test"]
    metrics = evaluate_run(again.config, again.data, again.model)
    # Training evaluated the test split from its shards, a group of users at a time; evaluate
    # loads it whole: every metric agrees, the model's and the most-popular baseline's.
    for mine, theirs in ((metrics, streamed.metrics), (metrics["popular_baseline"], streamed.metrics["popular_baseline"])):
        numbers = [k for k, v in mine.items() if isinstance(v, float) and "@" in k or k == "mrr"]
        assert len(numbers) >= 5
        for key in numbers:
            assert theirs[key] == pytest.approx(mine[key], rel=1e-9, abs=1e-12), key
    assert streamed.metrics["num_test"] == len(again.data.test) > 0
    # exclude_seen reads the training shards back: the same numbers as the in-memory path's data.
    run, excluded, _ = evaluate_saved_run(streamed.directory, ["eval.exclude_seen=true"])
    assert len(run.data.train) == streamed.metrics["num_train"]
    assert excluded["protocol"]["exclude_seen"] is True
    assert excluded["hit_rate@20"] >= metrics["hit_rate@20"] - 1e-9


def test_evaluate_refuses_streamed_data_that_changed(runs):
    root, path, streamed, _ = runs
    with open(path, "a") as fh:
        fh.write("u0,i79,999\n")
    with pytest.raises(UserError, match="changed since the run was trained"):
        load_run(streamed.directory)
