"""Training runs: run directory contract, validation metrics, early stopping."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import tfrs_irns  # noqa: F401
from tfrs_irns.config import load_config
from tfrs_irns.errors import ConfigError
from tfrs_irns.evaluation import evaluate_model
from tfrs_irns.runs.training import load_run, train

from helpers import with_tiny


def tiny(*extra):
    return load_config("configs/quickstart.yaml", with_tiny(*extra))


class WeightsPerEpoch(tf.keras.callbacks.Callback):
    """Keeps a copy of the weights at every epoch's end (after the metrics)."""

    def __init__(self):
        super().__init__()
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([w.copy() for w in self.model.get_weights()])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    saver = WeightsPerEpoch()
    result = train(tiny("train.epochs=2", "train.early_stopping.enabled=false"), str(out), verbose=0, extra_callbacks=[saver])
    result.saver = saver
    result.final = (result.model.user_embeddings(), result.model.item_embeddings())
    return result


@pytest.mark.slow
def test_run_directory_contract(run):
    names = set(os.listdir(run.directory))
    assert {"config.yaml", "metrics.json", "checkpoints", "logs", "vocab"} <= names
    metrics = json.loads(open(os.path.join(run.directory, "metrics.json")).read())
    for k in (1, 5, 10, 50, 100):
        for name in ("hit_rate", "recall", "ndcg"):
            assert 0.0 <= metrics[f"{name}@{k}"] <= 1.0
            assert f"{name}@{k}" in metrics["popular_baseline"]
    for key in ("train_seconds", "train_examples_per_second", "num_users", "num_items", "num_train", "num_test",
                "best_epoch", "epochs_run", "protocol", "head", "tail", "mrr"):
        assert key in metrics, key
    assert metrics["num_train"] == len(run.data.train)
    assert metrics["epochs_run"] == 2 and metrics["best_epoch"] == 2
    assert len(metrics["history"]["val_hit_rate@100"]) == 2
    # TensorBoard got event files.
    assert any(files for _, _, files in os.walk(os.path.join(run.directory, "logs")))


@pytest.mark.slow
def test_trained_model_answers_unknown_users_with_the_mean_user(run):
    table = run.model.query_tower.embedding.embeddings.numpy()
    np.testing.assert_allclose(table[0], table[1:].mean(axis=0), rtol=1e-5, atol=1e-7)


@pytest.mark.slow
def test_validation_metric_equals_the_evaluation_module(run):
    """The logged val_hit_rate@K of each epoch is evaluate_model on that epoch's weights."""
    cfg = run.config
    for epoch, weights in enumerate(run.saver.weights):
        run.model.set_weights(weights)
        expected = evaluate_model(
            run.model, run.data, split="validation", ks=cfg.eval.ks,
            max_queries=cfg.train.early_stopping.max_queries, seed=cfg.train.seed,
        )
        for k in cfg.eval.ks:
            assert run.metrics["history"][f"val_hit_rate@{k}"][epoch] == pytest.approx(expected[f"hit_rate@{k}"])


@pytest.mark.slow
def test_load_run_restores_the_same_model(run):
    again = load_run(run.directory)
    np.testing.assert_allclose(again.model.user_embeddings(), run.final[0], rtol=1e-6)
    np.testing.assert_allclose(again.model.item_embeddings(), run.final[1], rtol=1e-6)


@pytest.mark.slow
def test_early_stopping_restores_the_best_epoch(tmp_path):
    saver = WeightsPerEpoch()
    # A learning rate this high makes the validation metric fall after a peak.
    result = train(
        tiny("train.epochs=12", "train.optimizer=adam", "train.learning_rate=0.5", "train.early_stopping.patience=1"),
        str(tmp_path), verbose=0, extra_callbacks=[saver],
    )
    curve = result.metrics["history"]["val_hit_rate@100"]
    assert result.metrics["epochs_run"] < 12, curve
    best = int(np.argmax(curve))
    assert result.metrics["best_epoch"] == best + 1
    # Every weight is the best epoch's, except the OOV user row (set to the mean user after training).
    users = [i for i, w in enumerate(result.model.weights) if w is result.model.query_tower.embedding.embeddings]
    for i, (restored, kept) in enumerate(zip(result.model.get_weights(), saver.weights[best])):
        if i in users:
            restored, kept = restored[1:], kept[1:]
        np.testing.assert_array_equal(restored, kept)
    assert len(users) == 1


def test_monitor_must_name_a_validation_metric(tmp_path):
    with pytest.raises(ConfigError, match=r"train.early_stopping.monitor='val_hitrate@100': expected one of .*val_hit_rate@100"):
        train(tiny("train.early_stopping.monitor=val_hitrate@100"), str(tmp_path), verbose=0)


def test_early_stopping_needs_a_validation_split(tmp_path):
    with pytest.raises(ConfigError, match=r"needs a validation split: set data.validation_fraction > 0"):
        train(tiny("data.validation_fraction=0"), str(tmp_path), verbose=0)


@pytest.mark.slow
def test_resume_refuses_data_that_changed_since_the_run_started(tmp_path):
    from helpers import TINY_CSV_OVERRIDES, write_tiny_csv
    from tfrs_irns.errors import UserError
    from tfrs_irns.runs.training import resume_config

    data = tmp_path / "log.csv"
    lines = write_tiny_csv(data)
    run = tmp_path / "run"
    config = load_config("configs/quickstart.yaml", [*TINY_CSV_OVERRIDES, f"data.path={data}", "train.epochs=1"])
    train(config, str(run), verbose=0)
    os.remove(run / "metrics.json")  # as if killed before the end
    data.write_text("\n".join(lines[:-50]) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"changed since the run started \(its fingerprint differs\)"):
        train(resume_config(str(run)), str(run), verbose=0, resume=True)


def test_a_bad_export_name_stops_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match=r"export.name: 'a/b' is not a valid model name"):
        train(tiny("export.enabled=true", "export.name=a/b"), str(tmp_path / "run"), verbose=0)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_train_from_python_exports_and_publishes_as_the_command_does(tmp_path):
    saved, out = tmp_path / "saved", tmp_path / "run"
    run = train(tiny("train.epochs=1", "export.enabled=true", f"export.base_dir={saved}"), str(out), verbose=0)
    assert run.exported.published == str(saved / "quickstart" / "1")
    assert run.exported.reason == f"nothing published under {saved / 'quickstart'} yet"
    assert run.exported.local == str(out / "saved_model" / "1") and os.path.isdir(run.exported.local)
    assert sorted(os.listdir(saved / "quickstart")) == ["1", "1.embeddings"]
    # The catalogue is the vocabularies' and item table's; the metrics file is what the run reports.
    assert run.catalogue is run.data.catalogue
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(run.metrics))
    assert not (out / "backup").exists()
