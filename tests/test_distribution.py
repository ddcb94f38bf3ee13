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

import numpy as np
import pytest

from tfrs_irns.config import from_dict
from tfrs_irns.errors import ConfigError

from helpers import free_ports, with_tiny

TIMEOUT = 240
SETTINGS = ["train.epochs=2", "data.synthetic.num_interactions=4000"]
MIRRORED = ["train.distribution.strategy=mirrored", "train.distribution.logical_cpus=2"]


def cli(args):
    return [sys.executable, "-m", "tfrs_irns.cli.main", *args]


def start(out, extra=(), env=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    args = ["train", "--config", "configs/quickstart.yaml", "--output", str(out), "--set", *with_tiny(*SETTINGS, *extra)]
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
    assert chief["distribution"] == {
        "strategy": "multi_worker", "num_replicas": 2, "num_workers": 2, "global_batch_size": 128,
    }
    assert_same_run(runs["two"], chief)
    assert sorted(os.listdir(root / "exports0" / "quickstart")) == ["1", "1.embeddings"]
    # The other worker wrote nothing: no run folder, no export.
    assert not (root / "worker1").exists() and not (root / "exports1").exists()
    assert "worker done" in results[1][1]
    assert not (root / "worker0" / "backup").exists()


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
