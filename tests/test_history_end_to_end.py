"""Activity user towers end to end: tiny CLI trains ([history] on the random
split, [id, history] on cold_users), the run restored from its folder gives
the same metrics, and the export's ``recommend_from_history`` equals the
in-memory model's ranking — in a fresh plain-TensorFlow process."""

import json
import os
import textwrap

import numpy as np
import pytest

import tfrs_irns  # noqa: F401  (Keras 2 before tensorflow)
import tensorflow as tf

from tfrs_irns.cli.main import main
from tfrs_irns.evaluation import evaluate_model
from tfrs_irns.export import export_embeddings
from tfrs_irns.export.recommend import recommend
from tfrs_irns.errors import UserError
from tfrs_irns.runs.training import load_run

from helpers import fresh_process_result, with_tiny

K = 10
LENGTH = 8


@pytest.fixture(scope="module")
def cold_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("history")
    run_dir = str(root / "run")
    code = main(["train", "--config", "configs/quickstart.yaml", "--output", run_dir, "--set", *with_tiny(
        "train.epochs=1", "export.enabled=true", f"export.base_dir={root / 'saved'}", f"export.k={K}",
        "model.user_features=[id,history]", "model.history.pooling=attention", f"model.history.length={LENGTH}",
        "data.split=cold_users", "data.cold_user_fraction=0.2",
    )])
    assert code == 0
    with open(os.path.join(run_dir, "metrics.json")) as fh:
        metrics = json.load(fh)
    return root, run_dir, str(root / "saved" / "quickstart" / "1"), metrics


@pytest.mark.slow
def test_cold_users_are_evaluated_as_themselves_and_restore_to_the_same_metrics(cold_run):
    _, run_dir, _, metrics = cold_run
    run = load_run(run_dir)
    assert run.data.num_cold_users == 40  # 20% of 200 users
    assert metrics["num_test_users"] == 40  # each cold user is one query, not the one OOV user
    again = evaluate_model(run.model, run.data, "test", ks=[10, 100])
    for key in ("hit_rate@10", "recall@10", "ndcg@10", "hit_rate@100"):
        assert again[key] == pytest.approx(metrics[key], abs=1e-6), key
    # Each cold user's query is built from their earlier half, not from the OOV row alone.
    cold = run.model.query_tower(tf.constant([run.data.num_users + 1, run.data.num_users + 2])).numpy()
    assert not np.allclose(cold[0], cold[1])


FRESH = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    out = loaded.signatures["recommend_from_history"](item_ids=tf.constant(json.loads(sys.argv[2])))
    print("RESULT " + json.dumps({
        "item_ids": out["item_ids"].numpy().astype(str).tolist(),
        "scores": out["scores"].numpy().tolist(),
        "foreign": sorted(m for m in sys.modules if m.split(".")[0] in ("tfrs_irns", "tensorflow_recommenders")),
    }))
    """
)


def _in_memory(run, histories):
    """The model's own ranking for raw-id histories: its tower head on the items' embeddings."""
    tower = run.model.query_tower
    vocab = run.catalogue.item_vocab
    out = []
    for history in histories:
        given = [int(i) for i in vocab.lookup(np.array(history)) if i > 0]
        index = given[-LENGTH:]  # the window: the most recent L
        window = np.zeros((1, LENGTH), np.int32)
        window[0, LENGTH - len(index):] = index
        query = tower.head(tower.embed_items(tf.constant(window)), tf.constant(window > 0)).numpy()
        scores = query @ run.model.item_embeddings()[1:].T
        scores[0, [i - 1 for i in given]] = -np.inf  # every given item excluded
        top = np.argsort(-scores[0], kind="stable")[:K]
        out.append((vocab.ids[top].tolist(), scores[0, top]))
    return out


@pytest.mark.slow
@pytest.mark.subprocess
def test_recommend_from_history_equals_the_model_in_a_fresh_tensorflow_process(cold_run):
    root, run_dir, version, _ = cold_run
    run = load_run(run_dir, with_data=False)
    ids = run.catalogue.item_vocab.ids
    long_history = [str(i) for i in ids[:12]]  # longer than L: the last L count, all are excluded
    histories = [long_history, [str(ids[5]), "never-seen", str(ids[7]), ""], [""] * 12]
    padded = [h + [""] * (12 - len(h)) for h in histories]
    out = fresh_process_result(FRESH, [version, json.dumps(padded)], root)
    assert out["foreign"] == []
    for row, (want_ids, want_scores) in enumerate(_in_memory(run, histories)):
        assert out["item_ids"][row] == want_ids
        np.testing.assert_allclose(out["scores"][row], want_scores, rtol=1e-5, atol=1e-5)
        assert not set(want_ids) & set(histories[row])
    meta = json.load(open(os.path.join(version, "assets.extra", "metadata.json")))
    assert "recommend_from_history" in meta["signatures"]


@pytest.mark.slow
def test_cli_recommend_from_a_history(cold_run, capsys):
    _, run_dir, version, _ = cold_run
    ids = load_run(run_dir, with_data=False).catalogue.item_vocab.ids
    assert main(["recommend", "--model", version, "--history", f"{ids[0]},{ids[1]},nope", "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert "top 3 items for a history of 3 items" in out and "1 of the history items" in out
    assert main(["recommend", "--model", version, "--history", str(ids[0]), "-k", str(K + 1)]) == 2
    assert f"returns at most {K} items from a history" in capsys.readouterr().err


@pytest.mark.slow
def test_history_on_an_id_export_is_a_clear_error(tmp_path, capsys):
    path = export_embeddings(np.ones((3, 2)), np.ones((4, 2)), np.array(["u1", "u2"]), np.array(["a", "b", "c"]),
                             base_dir=str(tmp_path), name="m", k=2)
    with pytest.raises(UserError, match="^history: .* has no recommend_from_history signature"):
        recommend(path, history=["a"])
    # The CLI names its flag and how to train a model that has one.
    assert main(["recommend", "--model", path, "--history", "a"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tfrs-irns recommend: error: --history: ") and err.count("\n") == 1
    assert err.endswith('has no recommend_from_history signature (its user tower reads no item timelines); '
                        'train with --set "model.user_features=[history]"\n')


@pytest.mark.slow
def test_history_tower_trains_on_the_random_split(tmp_path):
    run_dir = str(tmp_path / "run")
    assert main(["train", "--config", "configs/quickstart.yaml", "--output", run_dir, "--set", *with_tiny(
        "train.epochs=1", "model.user_features=[history]", f"model.history.length={LENGTH}",
    )]) == 0
    metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
    # The planted clusters are in the users' histories: far better than most-popular.
    assert metrics["hit_rate@100"] > metrics["popular_baseline"]["hit_rate@100"]
    assert os.path.isfile(os.path.join(run_dir, "vocab", "history.npz"))
