"""Sequence training end to end: `tfrs-irns train` with the transformer tower on the
leave-last-out protocol, its export answering `recommend_from_history` in a fresh
plain-TensorFlow process (no tf-keras, no TFRS), the no-leakage rules, the config's
refusals, and the compiled sequence step's GPU kernels (float32 and bfloat16)."""

import json
import os
import textwrap

import numpy as np
import pytest

import tfrs_irns  # noqa: F401  (Keras 2 before tensorflow)
import tensorflow as tf

from tfrs_irns.batching.sequence import sequence_windows
from tfrs_irns.cli.main import main
from tfrs_irns.config import load_config
from tfrs_irns.data.history import history_of
from tfrs_irns.data.prepare import prepare_data
from tfrs_irns.errors import ConfigError
from tfrs_irns.runs.build import build_model, make_optimizer, sequence_train_pipeline, user_history
from tfrs_irns.runs.training import evaluate_run, load_run

from helpers import fresh_process_result, with_tiny
from gpu_registry import ops_without_gpu_kernel

# Each test here trains or starts a process (a module fixture trains once): the full suite's tier.
pytestmark = pytest.mark.slow

K = 10
LENGTH = 8
SEQUENTIAL = (
    "data.split=leave_last_out", "eval.exclude_seen=true", "model.user_features=[history]",
    "model.history.pooling=transformer", f"model.history.length={LENGTH}", "model.history.num_heads=2",
    "model.embedding_l2=0.0", "train.sequence_training=true", "train.batch_size=16", "train.optimizer=adam",
    "train.learning_rate=0.005", "train.early_stopping.monitor=val_ndcg@10",
)


@pytest.fixture(scope="module")
def seq_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("sequences")
    run_dir = str(root / "run")
    code = main(["train", "--config", "configs/quickstart.yaml", "--output", run_dir, "--set", *with_tiny(
        *SEQUENTIAL, "train.epochs=2", "export.enabled=true", f"export.base_dir={root / 'saved'}", f"export.k={K}",
    )])
    assert code == 0
    with open(os.path.join(run_dir, "metrics.json")) as fh:
        metrics = json.load(fh)
    return root, run_dir, str(root / "saved" / "quickstart" / "1"), metrics


def test_the_run_trains_on_sequences_and_restores_to_the_same_metrics(seq_run):
    _, run_dir, _, metrics = seq_run
    assert metrics["epochs_run"] == 2 and np.isfinite(metrics["history"]["loss"]).all()
    assert metrics["validation"]["monitor"] == "val_ndcg@10"
    run = load_run(run_dir)
    again = evaluate_run(run.config, run.data, run.model)
    for key in ("hit_rate@10", "ndcg@10", "hit_rate@100"):
        assert again[key] == pytest.approx(metrics[key], abs=1e-6), key


FRESH = textwrap.dedent(
    """
    import json, sys

    class Blocked:  # tf-keras, TFRS and this package cannot even be imported here
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("tf_keras", "tensorflow_recommenders", "tfrs_irns"):
                raise ImportError("blocked: " + name)
            return None

    sys.meta_path.insert(0, Blocked())
    import tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    out = loaded.signatures["recommend_from_history"](item_ids=tf.constant(json.loads(sys.argv[2])))
    print("RESULT " + json.dumps({
        "item_ids": out["item_ids"].numpy().astype(str).tolist(),
        "scores": out["scores"].numpy().tolist(),
        "foreign": sorted(m for m in sys.modules
                          if m.split(".")[0] in ("tfrs_irns", "tensorflow_recommenders", "tf_keras")),
    }))
    """
)


def _in_memory(run, histories):
    """The model's ranking for raw-id histories: the transformer head on the items' embeddings."""
    tower = run.model.query_tower
    vocab = run.catalogue.item_vocab
    out = []
    for history in histories:
        given = [int(i) for i in vocab.lookup(np.array(history)) if i > 0]
        index = given[-LENGTH:]
        window = np.zeros((1, LENGTH), np.int32)
        window[0, LENGTH - len(index):] = index
        query = tower.head(tower.embed_items(tf.constant(window)), tf.constant(window > 0)).numpy()
        scores = query @ run.model.item_embeddings()[1:].T
        scores[0, [i - 1 for i in given]] = -np.inf
        top = np.argsort(-scores[0], kind="stable")[:K]
        out.append((vocab.ids[top].tolist(), scores[0, top]))
    return out


def test_recommend_from_history_equals_the_model_in_a_fresh_plain_tensorflow_process(seq_run):
    root, run_dir, version, _ = seq_run
    run = load_run(run_dir, with_data=False)
    ids = run.catalogue.item_vocab.ids
    histories = [[str(i) for i in ids[:12]], [str(ids[5]), "never-seen", str(ids[7]), ""], [str(ids[3])]]
    padded = [h + [""] * (12 - len(h)) for h in histories]
    out = fresh_process_result(FRESH, [version, json.dumps(padded)], root, drop_env=("TF_USE_LEGACY_KERAS", "PYTHONPATH"))
    assert out["foreign"] == []
    for row, (want_ids, want_scores) in enumerate(_in_memory(run, histories)):
        assert out["item_ids"][row] == want_ids
        np.testing.assert_allclose(out["scores"][row], want_scores, rtol=1e-4, atol=1e-4)


def test_cli_recommend_from_a_history(seq_run, capsys):
    _, run_dir, version, _ = seq_run
    ids = load_run(run_dir, with_data=False).catalogue.item_vocab.ids
    assert main(["recommend", "--model", version, "--history", f"{ids[0]},{ids[1]},nope", "-k", "3"]) == 0
    assert "top 3 items for a history of 3 items" in capsys.readouterr().out


# ------------------------------------------------------------------ no leakage


@pytest.fixture(scope="module")
def loo_data():
    return prepare_data(load_config("configs/quickstart.yaml", with_tiny(*SEQUENTIAL)).data)


def test_the_test_and_validation_items_never_enter_training(loo_data):
    data = loo_data
    history = history_of(data)
    windows = sequence_windows(history.offsets, history.items, data.user_vocab.size, LENGTH)
    # Each user's windows hold exactly their training interactions: every one but the first as a target once.
    for user in np.unique(data.train.user):
        mine = windows.users == user
        train_items = np.sort(data.train.item[data.train.user == user])
        targets = windows.targets[mine][windows.targets[mine] > 0]
        inputs = windows.sequence[mine][windows.sequence[mine] > 0]
        assert len(targets) == len(train_items) - 1
        assert set(targets) | set(inputs) <= set(train_items)
    # The held-out rows are not training rows: the windows count only training interactions.
    assert windows.num_targets == len(data.train) - len(np.unique(data.train.user))
    assert len(data.test) and len(data.validation)


def test_the_test_time_history_ends_with_the_validation_item(seq_run):
    from tfrs_irns.runs.training import test_time_model

    run = load_run(seq_run[1])
    data = run.data
    tower = test_time_model(run.config, data, run.model).query_tower
    user = int(data.validation.user[0])
    window, _ = tower.windows(tf.constant([user]))
    assert int(window[0, -1]) == int(data.validation.item[0])
    # ... while validation (early stopping) ranks from the training history alone.
    window, _ = run.model.query_tower.windows(tf.constant([user]))
    assert int(window[0, -1]) == int(history_of(data).timeline(user)[-1])  # the training timeline's latest


# ------------------------------------------------------------------ config


@pytest.mark.parametrize("overrides,message", [
    (("model.history.pooling=mean",), "train.sequence_training=true trains every position of a causal user tower"),
    (("model.user_features=[id]",), "train.sequence_training=true trains every position of a causal user tower"),
    (("negatives.mode=full",), "negatives.mode full is not supported"),
    (("batching.strategy=gcbs",), "does not support batching.strategy=gcbs"),
    (("model.history.num_heads=3",), "model.history.num_heads: 3 does not divide model.embedding_dim"),
    (("model.history.dropout=1.0",), r"model.history.dropout: must be in \[0, 1\)"),
])
def test_config_refusals_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config("configs/quickstart.yaml", with_tiny(*SEQUENTIAL, *overrides))


def test_the_shipped_sequential_config_loads():
    config = load_config("configs/movielens-latest-small-sequential.yaml")
    assert config.train.sequence_training and config.model.history.pooling == "transformer"
    assert config.data.split == "leave_last_out" and config.eval.exclude_seen
    assert config.train.early_stopping.monitor == "val_ndcg@10"


# ------------------------------------------------------------------ GPU kernels, bf16


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_every_op_of_the_compiled_sequence_step_has_a_gpu_kernel_and_the_loss_is_finite(loo_data, precision):
    config = load_config("configs/quickstart.yaml", with_tiny(*SEQUENTIAL, f"train.precision={precision}"))
    history = user_history(config, loo_data)
    pipeline = sequence_train_pipeline(config, loo_data, history)
    model = build_model(config, loo_data, history=history)
    model.compile(optimizer=make_optimizer(config))
    train_function = model.make_train_function()
    concrete = train_function.get_concrete_function(iter(pipeline.dataset))
    missing = ops_without_gpu_kernel(concrete)
    missing = {op for op in missing if op.split("(")[0] not in {"BroadcastGradientArgs", "ConcatOffset", "Shape",
                                                                "ShapeN", "Size", "Rank"}}
    assert missing == set(), f"ops without a GPU kernel: {sorted(missing)}"
    int32_variables = [v.name for v in model.variables if v.dtype == tf.int32]
    # The history tables are another change's (int32 -> int64); the sequence path adds none.
    assert all("history_" in name for name in int32_variables), int32_variables
    logs = model.fit(pipeline.dataset, epochs=1, verbose=0).history
    assert np.isfinite(logs["loss"][-1])
