"""`tfrs-irns train` under tf.distribute: one device, mirrored over two logical
CPUs, and two TF_CONFIG workers on 127.0.0.1 train the same run.

Each run is a fresh CLI process: logical devices and collectives can only be
set up before TensorFlow initialises its devices. With cross-replica negatives
(the default with several replicas) every replica's rows meet the global
batch's positives and the same sampled items, and the replicas' gradients sum
to the one-device gradient; the runs differ only by float32 summation order
(all-reduce vs one matmul). So the loss curves agree to 1e-4 relative and the
test hit rate (ranks of 1,200 test pairs from near-identical embeddings) to
0.005 absolute — a few ties or near-ties may flip, no more.
"""

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from tfrs_irns.config import from_dict
from tfrs_irns.errors import ConfigError
from tfrs_irns.evaluation.evaluate import evaluate_embeddings
from tfrs_irns.evaluation.shares import WorkerShare
from tfrs_irns.evaluation.streamed import evaluate_streamed

from helpers import TINY_CSV_OVERRIDES, assert_same_metrics, free_ports, with_tiny, write_tiny_csv

TIMEOUT = 240
SETTINGS = ["train.epochs=2", "data.synthetic.num_interactions=4000"]
MIRRORED = ["train.distribution.strategy=mirrored", "train.distribution.logical_cpus=2"]


def cli(args):
    return [sys.executable, "-m", "tfrs_irns.cli.main", *args]


def start(out, extra=(), env=None, settings=SETTINGS):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    args = ["train", "--config", "configs/quickstart.yaml", "--output", str(out), "--set", *with_tiny(*settings, *extra)]
    return subprocess.Popen(
        cli(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )


def finish(procs):
    """Wait for every process (killing only these, on timeout); their (rc, stdout, stderr)."""
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=TIMEOUT)
            results.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def metrics(folder):
    with open(os.path.join(folder, "metrics.json"), encoding="utf-8") as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    one, two = root / "one", root / "two"
    results = finish([start(one), start(two, MIRRORED)])
    for rc, _, err in results:
        assert rc == 0, err[-3000:]
    return {"root": root, "one": metrics(one), "two": metrics(two)}


def assert_same_run(a, b):
    assert a["epochs_run"] == b["epochs_run"] == 2
    for key in ("loss", "val_hit_rate@100"):
        np.testing.assert_allclose(b["history"][key], a["history"][key], rtol=1e-4)
    assert abs(a["hit_rate@100"] - b["hit_rate@100"]) <= 0.005


@pytest.mark.slow
@pytest.mark.subprocess
def test_metrics_record_the_distribution(runs):
    assert runs["one"]["distribution"] == {
        "strategy": "one_device", "num_replicas": 1, "num_workers": 1, "global_batch_size": 128,
    }
    assert runs["two"]["distribution"] == {
        "strategy": "mirrored", "num_replicas": 2, "num_workers": 1, "global_batch_size": 128,
    }


@pytest.mark.slow
@pytest.mark.subprocess
def test_mirrored_on_two_logical_cpus_matches_one_device(runs):
    assert_same_run(runs["one"], runs["two"])


# Content item tower and id + history user tower: per replica, the content tables and the history
# windows are gathered in-graph and the window's distinct items encoded once (tf.unique).
TOWERS = ["model.item_features=[id,title,genres]", "model.user_features=[id,history]", "model.history.length=5"]


@pytest.mark.slow
@pytest.mark.subprocess
def test_mirrored_content_and_history_towers_match_one_device(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    results = finish([start(one, TOWERS), start(two, [*TOWERS, *MIRRORED])])
    for rc, _, err in results:
        assert rc == 0, err[-3000:]
    a, b = metrics(one), metrics(two)
    assert b["distribution"]["num_replicas"] == 2
    assert_same_run(a, b)


@pytest.mark.slow
@pytest.mark.subprocess
def test_two_workers_train_one_run_and_only_the_chief_writes(runs):
    root = runs["root"]
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        # Each worker names its own --output here so the test can see who wrote what;
        # on two machines both name the same (shared) path.
        out = root / f"worker{index}"
        procs.append(start(out, ["train.distribution.strategy=multi_worker", "export.enabled=true",
                                 f"export.base_dir={root / f'exports{index}'}"], env={"TF_CONFIG": tf_config}))
    results = finish(procs)
    for rc, _, err in results:
        assert rc == 0, err[-3000:]
    chief = metrics(root / "worker0")
    assert "data" not in chief  # in-memory data: every worker holds it all
    assert chief["distribution"] == {
        "strategy": "multi_worker", "num_replicas": 2, "num_workers": 2, "global_batch_size": 128,
    }
    assert_same_run(runs["two"], chief)
    assert sorted(os.listdir(root / "exports0" / "quickstart")) == ["1", "1.embeddings"]
    # The other worker wrote nothing: no run folder, no export.
    assert not (root / "worker1").exists() and not (root / "exports1").exists()
    assert "worker done" in results[1][1]
    assert not (root / "worker0" / "backup").exists()
    # Each worker ranked its share of the test users; the chief's numbers are one process's on the same weights.
    ranked = chief["users_ranked_by_worker"]
    assert len(ranked) == 2 and sum(ranked) == chief["num_test_users"] and abs(ranked[0] - ranked[1]) <= 1
    from tfrs_irns.runs.evaluating import evaluate_saved_run

    _, one, _ = evaluate_saved_run(str(root / "worker0"))
    assert_same_metrics(one, {key: chief[key] for key in [*one, "users_ranked_by_worker"]})


def streamed_csv(folder, *extra):
    """The tiny CSV written in ``folder`` and the settings that stream it (then ``extra``)."""
    path = folder / "log.csv"
    write_tiny_csv(path)
    return [*TINY_CSV_OVERRIDES, f"data.path={path}", "data.streaming=true", "data.duplicates=keep_all", *extra]


def worker_env(index, ports):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    return {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}


@pytest.mark.slow
@pytest.mark.subprocess
def test_two_workers_each_read_their_own_shards_and_train_as_well_as_one(tmp_path):
    streamed = streamed_csv(tmp_path, "train.epochs=3", "train.early_stopping.enabled=false")
    ports = free_ports(2)
    procs = [start(tmp_path / "one", settings=streamed)] + [
        start(tmp_path / f"worker{i}", ["train.distribution.strategy=multi_worker"], worker_env(i, ports), streamed)
        for i in range(2)
    ]
    results = finish(procs)
    for rc, _, err in results:
        assert rc == 0, err[-3000:]
    one, chief = metrics(tmp_path / "one"), metrics(tmp_path / "worker0")
    assert one["data"] == {"rows_read_by_worker": [one["num_train"]]}
    rows = chief["data"]["rows_read_by_worker"]
    assert len(rows) == 2 and all(0.4 <= r / chief["num_train"] <= 0.6 for r in rows), rows
    assert chief["distribution"]["num_workers"] == 2 and chief["epochs_run"] == 3
    # The two workers' model is as good as one process's (and both far above the most-popular list).
    assert abs(chief["hit_rate@100"] - one["hit_rate@100"]) <= 0.03
    assert chief["hit_rate@100"] > chief["popular_baseline"]["hit_rate@100"] + 0.1
    assert not (tmp_path / "worker1").exists()


@pytest.mark.slow
@pytest.mark.subprocess
def test_a_streamed_batch_that_does_not_split_over_the_workers_is_one_line(tmp_path):
    streamed = streamed_csv(tmp_path, "train.batch_size=127", "train.distribution.strategy=multi_worker")
    ports = free_ports(2)
    results = finish([start(tmp_path / f"worker{i}", (), worker_env(i, ports), streamed) for i in range(2)])
    for rc, _, err in results:
        assert rc == 2, err[-3000:]
        assert err.strip().splitlines()[-1] == (
            "tfrs-irns train: error: train.batch_size=127 with data.streaming under multi_worker must split "
            "evenly over the 2 replicas"
        )
    assert not (tmp_path / "worker0").exists()


@pytest.mark.slow
@pytest.mark.subprocess
def test_multi_worker_without_tf_config_is_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    args = ["train", "--config", "configs/quickstart.yaml", "--output", str(tmp_path / "run"),
            "--set", "train.distribution.strategy=multi_worker"]
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    done = subprocess.run(cli(args), capture_output=True, text=True, env=env, timeout=TIMEOUT,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "tfrs-irns train: error: train.distribution.strategy=multi_worker reads the cluster from the "
        "TF_CONFIG environment variable, which is not set"
    )
    assert not (tmp_path / "run").exists()


def test_logical_cpus_after_tensorflow_started_names_the_key():
    import tensorflow as tf

    from tfrs_irns.runs.build import set_logical_cpus

    have = len(tf.config.list_logical_devices("CPU"))  # initialises the devices
    set_logical_cpus(have)  # the count it has: fine
    with pytest.raises(ConfigError, match=rf"^train.distribution.logical_cpus={have + 1}: TensorFlow already "):
        set_logical_cpus(have + 1)


def test_distribution_keys_are_checked_at_load():
    with pytest.raises(ConfigError, match="train.distribution.logical_cpus: must be > 0, got 0"):
        from_dict({"train": {"distribution": {"logical_cpus": 0}}})
    with pytest.raises(ConfigError, match="train.distribution.strategy: expected one of"):
        from_dict({"train": {"distribution": {"strategy": "tpu"}}})


# --- each worker ranks its share of the users: the share/combine logic in one process -------------------------


class FakeCollective:
    """``num_workers`` threads stand for the workers: each call blocks until every worker gave its
    vector, then returns their sum (what the all-reduce does across machines)."""

    def __init__(self, num_workers):
        self.barrier = threading.Barrier(num_workers)
        self.vectors = [None] * num_workers

    def combine_for(self, index):
        def combine(vector):
            self.vectors[index] = vector
            self.barrier.wait(timeout=60)
            total = np.sum(self.vectors, axis=0)
            self.barrier.wait(timeout=60)  # every worker has summed before the next call overwrites
            return total

        return combine


def evaluate_on_workers(num_workers, *args, evaluate=evaluate_embeddings, **kwargs):
    """``evaluate`` run by ``num_workers`` simulated workers at once; their results."""
    collective = FakeCollective(num_workers)
    results, errors = [None] * num_workers, []

    def work(index):
        try:
            share = WorkerShare(num_workers, index, collective.combine_for(index))
            results[index] = evaluate(*args, share=share, **kwargs)
        except Exception as exc:  # surfaced below, in the test's thread
            errors.append(exc)
            collective.barrier.abort()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(num_workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results


def random_evaluation(seed, num_users=40, num_items=60):
    rng = np.random.default_rng(seed)
    n = 300
    users = rng.integers(0, num_users + 1, n)  # user 0: the OOV user
    items = rng.integers(0, num_items + 1, n)  # item 0: an unseen test item
    users[:3] = 5  # a repeated (user, item) pair
    items[:3] = 7
    train_users, train_items = rng.integers(1, num_users + 1, 500), rng.integers(1, num_items + 1, 500)
    user_emb = rng.normal(size=(num_users + 1, 8)).astype(np.float32)
    item_emb = rng.normal(size=(num_items + 1, 8)).astype(np.float32)
    item_emb[10] = item_emb[11]  # a tie: broken by the lower index on every worker alike
    return (user_emb, item_emb, users, items), {"train_users": train_users, "train_items": train_items}


@pytest.mark.parametrize("num_workers", [1, 2, 3])
@pytest.mark.parametrize("options", [{}, {"exclude_seen": True}, {"max_queries": 17, "seed": 4}])
def test_workers_ranking_their_shares_combine_to_the_one_process_metrics(num_workers, options):
    args, history = random_evaluation(num_workers)
    kwargs = dict(history, ks=[1, 5, 20, 100], **options)
    one = evaluate_embeddings(*args, **kwargs)
    results = evaluate_on_workers(num_workers, *args, **kwargs)
    for combined in results:  # every worker, not only the chief, ends with the same numbers
        assert_same_metrics(one, combined)
    counts = results[0]["users_ranked_by_worker"]
    evaluated = int(one["protocol"]["evaluated_users"].split()[0])
    # Strided shares of the sorted users: sizes differ by at most one.
    assert sum(counts) == evaluated and max(counts) - min(counts) <= 1 and len(counts) == num_workers


@pytest.mark.parametrize("num_workers", [2, 3])
@pytest.mark.parametrize("users_per_pass", [4, 10**6])  # 10**6: one pass, the other workers rank no one
def test_workers_share_the_passes_of_a_streamed_evaluation(num_workers, users_per_pass):
    (user_emb, item_emb, users, items), history = random_evaluation(num_workers)
    kwargs = dict(history, ks=[1, 10, 100], exclude_seen=True)
    one = evaluate_embeddings(user_emb, item_emb, users, items, **kwargs)
    blocks = [np.stack([users[i : i + 64], items[i : i + 64]]) for i in range(0, len(users), 64)]
    results = evaluate_on_workers(
        num_workers, user_emb, item_emb, lambda: iter(blocks), evaluate=evaluate_streamed, users_per_pass=users_per_pass,
        **kwargs
    )
    for combined in results:
        assert_same_metrics(one, combined)
    # The passes dealt out in turn: each worker ranked the users of its own passes.
    ranked = results[0]["users_ranked_by_worker"]
    assert sum(ranked) == one["num_test_users"] and (ranked[1:] == [0] * (num_workers - 1)) == (users_per_pass > 40)


def test_a_worker_with_no_user_to_rank_still_takes_part():
    user_emb = np.eye(4, dtype=np.float32)
    item_emb = np.eye(4, dtype=np.float32)[[0, 1, 2, 3, 1]]  # items 1 and 4 tie for user 1
    users, items = np.array([1, 1, 2]), np.array([4, 2, 2])
    kwargs = {"ks": [1, 2], "train_users": np.array([1]), "train_items": np.array([1]), "exclude_seen": True}
    one = evaluate_embeddings(user_emb, item_emb, users, items, **kwargs)
    # By hand: user 1's seen item 1 is excluded, so its tie with item 4 does not count: item 4 ranks 0,
    # item 2 ranks 1 (below item 4); user 2 ranks item 2 first. Three workers, two users: one ranks none.
    assert one["hit_rate@1"] == pytest.approx(2 / 3)
    results = evaluate_on_workers(3, user_emb, item_emb, users, items, **kwargs)
    for combined in results:
        assert_same_metrics(one, combined)
    assert results[2]["users_ranked_by_worker"] == [1, 1, 0]


def test_a_worker_index_outside_the_cluster_is_refused():
    with pytest.raises(ValueError, match="worker index 2 of 2 workers is out of range"):
        WorkerShare(2, 2)


def test_a_combine_that_changes_the_length_is_refused():
    args, history = random_evaluation(0)
    with pytest.raises(ValueError, match="combine returned shape"):
        evaluate_embeddings(*args, share=WorkerShare(1, 0, lambda v: v[:-1]))
