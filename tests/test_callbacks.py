"""The package's own callbacks add no per-step host sync, and the best epoch is a checkpoint.

A loss in a batch's logs is a tensor on the device the step ran on; reading
it (or letting Keras convert the logs for a callback) waits for the device.
The console reads it at most once per interval (a fake clock here); a whole
run with a progress bar, step backups and early stopping converts logs a few
times per epoch, not per step. Early stopping decides and restores exactly
as Keras' ``EarlyStopping(restore_best_weights=True)`` does, from a
checkpoint instead of an in-memory copy.
"""

import itertools
import json
import math
import os

import numpy as np
import pytest
import tensorflow as tf

import tfrs_irns  # noqa: F401
from tfrs_irns.config import load_config
from tfrs_irns.runs.console import EpochLine
from tfrs_irns.runs.stopping import BestEpochStopping

from helpers import with_tiny


class Counted:
    """A loss value that counts how often it is read (as a tensor's ``float()`` would sync)."""

    def __init__(self, value):
        self.value, self.reads = value, 0

    def __float__(self):
        self.reads += 1
        return float(self.value)


def fake_clock(step):
    ticks = itertools.count()
    return lambda: step * next(ticks)


def test_the_progress_bar_reads_the_loss_at_most_once_per_interval(capsys):
    line = EpochLine("loss", progress_bar=True, interval=1.0, clock=fake_clock(0.25))
    line.set_params({"epochs": 2, "steps": 100})
    for epoch in range(2):
        loss = Counted(2.5)
        line.on_epoch_begin(epoch)
        for batch in range(100):
            line.on_train_batch_end(batch, {"loss": loss})
        # The clock advances 0.25 s per batch: reads at batches 0, 4, ..., 96 (the last batch is the epoch's end).
        assert loss.reads == 25
        line.on_epoch_end(epoch, {"loss": loss})
        assert loss.reads == 27  # the bar's closing update and the epoch line
    out = capsys.readouterr().out
    assert "100/100" in out and "loss: 2.5000" in out
    assert out.rstrip().endswith("epoch 2/2  0s  loss 2.5000")


def test_batch_logs_reach_the_console_as_tensors():
    model = tf.keras.Sequential([tf.keras.layers.Dense(1, input_shape=(1,))])
    callbacks = tf.keras.callbacks.CallbackList([EpochLine("loss", progress_bar=True)], model=model)
    logs = {"loss": tf.constant(1.0)}
    assert callbacks._process_logs(logs, is_batch_hook=True) is logs


@pytest.mark.slow
def test_a_run_converts_logs_per_epoch_not_per_step(tmp_path, monkeypatch, capsys):
    from tf_keras.src.utils import tf_utils

    from tfrs_irns.runs.training import train

    calls = []
    original = tf_utils.sync_to_numpy_or_python_type

    def counting(tensors):
        calls.append(1)
        return original(tensors)

    config = load_config("configs/quickstart.yaml", with_tiny("train.epochs=2", "train.backup_every_steps=3"))
    monkeypatch.setattr(tf_utils, "sync_to_numpy_or_python_type", counting)
    run = train(config, str(tmp_path / "run"), verbose=1)  # a progress bar, step backups, early stopping
    steps = math.ceil(len(run.data.train) / config.train.batch_size)
    assert steps >= 30
    assert 0 < len(calls) <= 4 * 2, len(calls)  # a few per epoch, never one per step
    assert "epoch 2/2" in capsys.readouterr().out


# ----------------------------------------------------------- early stopping


class Scripted(tf.keras.callbacks.Callback):
    """Puts ``val_x`` = the scripted value of each epoch into the logs (first in the list)."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["val_x"] = self.values[epoch]


class WeightsPerEpoch(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append(self.model.get_weights())


def fit_with(stopping, values):
    tf.keras.utils.set_random_seed(3)
    model = tf.keras.Sequential([tf.keras.layers.Dense(3, input_shape=(4,)), tf.keras.layers.Dense(1)])
    model.compile(tf.keras.optimizers.SGD(0.05), loss="mse")
    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    y = x.sum(axis=1, keepdims=True)
    saver = WeightsPerEpoch()
    model.fit(x, y, batch_size=16, epochs=len(values), shuffle=False, verbose=0,
              callbacks=[Scripted(values), saver, stopping])
    return model, saver


SCRIPTS = {
    "stops_after_a_peak": ("max", [0.5, 0.7, 0.6, 0.65, 0.4, 0.3]),
    "best_is_last": ("max", [0.1, 0.2, 0.3]),
    "nan_first": ("max", [math.nan, 0.2, 0.1, 0.05, 0.01]),
    "lower_is_better": ("min", [3.0, 2.0, 2.5, 1.0, 1.5, 1.6, 1.7]),
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_best_epoch_stopping_is_keras_early_stopping_from_a_checkpoint(script, tmp_path, capsys):
    mode, values = SCRIPTS[script]
    keras_es = tf.keras.callbacks.EarlyStopping("val_x", mode=mode, patience=2, restore_best_weights=True, verbose=1)
    keras_model, keras_saver = fit_with(keras_es, values)
    keras_out = capsys.readouterr().out
    ours = BestEpochStopping(str(tmp_path / "best"), "val_x", mode=mode, patience=2, verbose=1)
    model, saver = fit_with(ours, values)
    assert capsys.readouterr().out == keras_out
    for name in ("best_epoch", "stopped_epoch", "wait"):
        assert getattr(ours, name) == getattr(keras_es, name), name
    assert ours.best == keras_es.best or (math.isnan(ours.best) and math.isnan(keras_es.best))
    # The same trajectory, then the same weights restored: the best epoch's.
    for a, b in zip(saver.weights, keras_saver.weights):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    best = saver.weights[ours.best_epoch]
    for restored, expected, kept in zip(model.get_weights(), keras_model.get_weights(), best):
        np.testing.assert_array_equal(restored, expected)
        np.testing.assert_array_equal(restored, kept)
    # No copy in memory; on disk, the best epoch's checkpoint (and at most the previous best).
    assert ours.best_weights is None
    assert ours.best_checkpoint == str(tmp_path / "best" / f"best-{ours.best_epoch + 1}")
    prefixes = {name.split(".")[0] for name in os.listdir(tmp_path / "best")}
    assert f"best-{ours.best_epoch + 1}" in prefixes and len(prefixes) <= 2


def test_a_backup_names_the_best_checkpoint_and_holds_no_copy_of_the_weights(tmp_path):
    from tfrs_irns.runs.training import train

    seen = []

    class Inspect(tf.keras.callbacks.Callback):
        """At each epoch's start, the backup of the epoch before (RunBackup runs last at its end)."""

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 0:
                return
            latest = tf.train.latest_checkpoint(str(tmp_path / "run" / "backup" / "chief"))
            names = [name for name, _ in tf.train.list_variables(latest)]
            state = json.loads(tf.train.load_checkpoint(latest).get_tensor(
                "run_state/state/.ATTRIBUTES/VARIABLE_VALUE").decode())
            best = state["early_stopping"]["best_checkpoint"]
            seen.append((names, best, sorted(os.listdir(tmp_path / "run" / "backup" / "best"))))

    config = load_config("configs/quickstart.yaml", with_tiny("train.epochs=3"))
    run = train(config, str(tmp_path / "run"), verbose=0, extra_callbacks=[Inspect()])
    assert len(seen) == 2
    for names, best, files in seen:
        assert not [n for n in names if "best_weights" in n]
        assert best.startswith("best-") and f"{best}.index" in files
    # The run ends with its best epoch's weights, and the backup (best checkpoints included) is gone.
    assert run.metrics["best_epoch"] == int(np.argmax(run.metrics["history"]["val_hit_rate@100"])) + 1
    assert not (tmp_path / "run" / "backup").exists()
