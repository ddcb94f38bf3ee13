"""Runs that survive being killed: `tfrs-irns train --resume DIR`.

A CLI training run is SIGKILLed (once just after epoch 2 was backed up, once
in the middle of epoch 2 with `train.backup_every_steps`), then resumed. Under
`tf.config.experimental.enable_op_determinism()` the resumed run ends with the
very weights of the uninterrupted run, the same history over every epoch, the
same metrics.json keys and `epochs_run`. GCBS orders epochs 2 on, so the
restored order state (recomputed at an epoch boundary, kept mid-epoch) is
part of what is checked.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf

from helpers import with_tiny

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 240
SETTINGS = [
    "train.epochs=4",
    "data.synthetic.num_interactions=4000",
    "batching.strategy=gcbs",
    "batching.gcbs.diagnostics=false",
    "batching.gcbs.neighbors=50",
]
# Deterministic kernels, then the CLI: the only difference between the runs is the kill.
LAUNCH = (
    "import sys, tensorflow as tf; tf.config.experimental.enable_op_determinism(); "
    "from tfrs_irns.cli.main import main; sys.exit(main(sys.argv[1:]))"
)


def start(args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, cwd=ROOT,
    )


def train(out, extra=()):
    return start(["train", "--config", "configs/quickstart.yaml", "--output", str(out), "--set", *with_tiny(*SETTINGS, *extra)])


def wait(proc):
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def saved_position(run):
    """(epoch, batch) of the run's latest backup, or None."""
    latest = tf.train.latest_checkpoint(os.path.join(run, "backup", "chief"))
    if latest is None:
        return None
    try:
        reader = tf.train.load_checkpoint(latest)
        return (int(reader.get_tensor("ckpt_saved_epoch/.ATTRIBUTES/VARIABLE_VALUE")),
                int(reader.get_tensor("ckpt_saved_batch/.ATTRIBUTES/VARIABLE_VALUE")))
    except (tf.errors.OpError, ValueError):  # being written
        return None


def kill_when(*watches):
    """SIGKILL each ``(proc, ready)`` (processes this test started) once
    ``ready(its stdout so far)`` holds; all polled together every 10 ms."""
    pending = []
    for proc, ready in watches:
        lines = []
        threading.Thread(target=lambda p=proc, out=lines: out.extend(iter(p.stdout.readline, "")), daemon=True).start()
        pending.append((proc, ready, lines))
    deadline = time.monotonic() + TIMEOUT
    while pending and time.monotonic() < deadline:
        for item in list(pending):
            proc, ready, lines = item
            if ready("".join(lines)):
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                pending.remove(item)
            elif proc.poll() is not None:
                raise AssertionError(f"the run ended before it could be killed:\n{''.join(lines)}")
        time.sleep(0.01)
    for proc, _, lines in pending:
        proc.kill()
        proc.wait()
        raise AssertionError(f"the run was not killed in {TIMEOUT} s:\n{''.join(lines)}")


def metrics(run):
    with open(os.path.join(run, "metrics.json"), encoding="utf-8") as fh:
        return json.load(fh)


def weights(run):
    reader = tf.train.load_checkpoint(os.path.join(run, "checkpoints", "weights"))
    names = [n for n, _ in tf.train.list_variables(os.path.join(run, "checkpoints", "weights"))
             if n.endswith("VARIABLE_VALUE") and "optimizer" not in n]
    return {n: reader.get_tensor(n) for n in names}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    full, at_epoch, mid_epoch = root / "full", root / "at_epoch", root / "mid_epoch"
    procs = [train(full), train(at_epoch), train(mid_epoch, ["train.backup_every_steps=2"])]
    try:
        # Once epoch 2 (0-based 1) is backed up at its end (epoch backups only here), before epoch 3 ends.
        def after_epoch_2(out):
            position = saved_position(str(at_epoch)) if "epoch 2/4" in out else None
            return position is not None and position[0] == 1

        def mid(out):
            # Inside epoch 2 (0-based 1), with a backup well before its last batch (22).
            position = saved_position(str(mid_epoch)) if "epoch 1/4" in out else None
            return position is not None and position[0] == 1 and 0 <= position[1] <= 15

        kill_when((procs[1], after_epoch_2), (procs[2], mid))
        rc, _, err = wait(procs[0])
        assert rc == 0, err[-3000:]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert not (at_epoch / "metrics.json").exists() and not (mid_epoch / "metrics.json").exists()
    position = saved_position(str(mid_epoch))
    resumed = [wait(start(["train", "--resume", str(run)])) for run in (at_epoch, mid_epoch)]
    for rc, _, err in resumed:
        assert rc == 0, err[-3000:]
    return {"root": root, "full": full, "at_epoch": at_epoch, "mid_epoch": mid_epoch, "position": position,
            "resumed_out": [out for _, out, _ in resumed]}


@pytest.mark.slow
@pytest.mark.subprocess
def test_the_kills_hit_where_intended(runs):
    assert "resuming" in runs["resumed_out"][0] and "at epoch 3, step 0" in runs["resumed_out"][0]
    epoch, batch = runs["position"]
    assert epoch == 1 and batch >= 0  # a backup inside epoch 2 (0-based 1)
    assert f"at epoch 2, step {batch + 1}" in runs["resumed_out"][1]


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("which", ["at_epoch", "mid_epoch"])
def test_a_resumed_run_finishes_as_the_uninterrupted_one(runs, which):
    full, resumed = metrics(runs["full"]), metrics(runs[which])
    assert resumed.keys() == full.keys()
    assert resumed["epochs_run"] == full["epochs_run"] == 4
    assert resumed["best_epoch"] == full["best_epoch"]
    assert abs(resumed["hit_rate@100"] - full["hit_rate@100"]) <= 0.01 * full["hit_rate@100"]
    for key in full["history"]:
        if key.endswith("seconds"):
            continue
        np.testing.assert_array_equal(resumed["history"][key], full["history"][key], err_msg=key)
    a, b = weights(runs["full"]), weights(runs[which])
    assert a.keys() == b.keys() and len(a) > 2
    for name in a:
        np.testing.assert_array_equal(b[name], a[name], err_msg=name)
    assert not (runs[which] / "backup").exists()


def one_line_error(args):
    rc, out, err = wait(start(args))
    assert rc == 2, err[-2000:]
    return err.strip().splitlines()[-1]


@pytest.mark.slow
@pytest.mark.subprocess
def test_resuming_a_finished_run_says_so(runs):
    full = runs["full"]
    assert one_line_error(["train", "--resume", str(full)]) == (
        f"tfrs-irns train: error: {full}: the run already finished (it has metrics.json); nothing to resume"
    )


@pytest.mark.slow
@pytest.mark.subprocess
def test_output_holding_a_run_points_to_resume_and_the_wrong_flags_with_resume(runs, tmp_path):
    full = runs["full"]
    before = sorted(os.listdir(full))
    assert one_line_error(["train", "--config", "configs/quickstart.yaml", "--output", str(full)]) == (
        f"tfrs-irns train: error: {full}: already holds a run; continue it with "
        f"`tfrs-irns train --resume {full}` or name another --output"
    )
    assert sorted(os.listdir(full)) == before
    assert one_line_error(["train", "--resume", str(full), "--set", "train.epochs=9"]) == (
        f"tfrs-irns train: error: --set cannot change a run being resumed (its config is {full}/config.yaml)"
    )
    assert one_line_error(["train", "--resume", str(full), "--config", "configs/quickstart.yaml"]) == (
        "tfrs-irns train: error: --resume DIR takes the config and the output folder from DIR; "
        "drop --config and --output"
    )
    assert one_line_error(["train", "--resume", str(tmp_path)]) == (
        f"tfrs-irns train: error: {tmp_path}: not a run directory (no config.yaml); nothing to resume"
    )


@pytest.mark.slow
def test_the_pipeline_resumes_at_an_epoch_and_a_batch():
    from tfrs_irns.batching.pipeline import TrainPipeline

    def epoch(p, skip=0):
        return [b["user"].numpy() for b in p.dataset.take(p.steps_per_epoch - skip)]

    users = np.arange(50, dtype=np.int32)
    straight = TrainPipeline(users, users, 8, seed=2)
    epochs = [epoch(straight) for _ in range(3)]
    resumed = TrainPipeline(users, users, 8, seed=2)
    resumed.resume_at(2, 3)  # the third epoch, from its fourth batch
    got = epoch(resumed, skip=3)
    assert len(got) == len(epochs[2]) - 3
    for a, b in zip(got, epochs[2][3:]):
        np.testing.assert_array_equal(a, b)
    # Then the next epoch, whole.
    resumed.resume_at(1)
    assert all(np.array_equal(a, b) for a, b in zip(epoch(resumed), epochs[1]))
    with pytest.raises(ValueError, match=r"step must be in \[0, 7\), got 7"):
        resumed.resume_at(0, 7)
