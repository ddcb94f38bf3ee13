"""``recommend`` / ``tfrs-irns recommend``: the table it prints, version
resolution, k beyond the export, and every error a user can trigger."""

import re
import shutil

import numpy as np
import pytest

import tfrs_irns  # noqa: F401  (Keras 2 before tensorflow)
import tensorflow as tf

from tfrs_irns.cli.main import main
from tfrs_irns.errors import UserError
from tfrs_irns.export import export_embeddings, recommend, resolve_version_dir

NUM_USERS, NUM_ITEMS, DIM, K = 6, 30, 4, 5
USER_IDS = np.array([f"u{i}" for i in range(NUM_USERS)])
ITEM_IDS = np.array([f"m{i:02d}" for i in range(NUM_ITEMS)])
TITLES = np.array([""] + [f"Movie number {i} (19{i:02d})" for i in range(NUM_ITEMS)])
_rng = np.random.default_rng(3)
USERS = _rng.normal(size=(NUM_USERS + 1, DIM)).astype(np.float32)  # row 0: the OOV user
ITEMS = _rng.normal(size=(NUM_ITEMS + 1, DIM)).astype(np.float32)


def _top(user_row, k):
    scores = USERS[user_row] @ ITEMS[1:].T
    top = np.argsort(-scores, kind="stable")[:k]
    return ITEM_IDS[top].tolist(), scores[top]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("saved_models")
    export_embeddings(USERS, ITEMS, USER_IDS, ITEM_IDS, TITLES, base_dir=str(base), name="demo", k=K)
    return base / "demo"


def _table_rows(text):
    """(rank, score, item_id, title) of each table line."""
    return [
        (int(m[1]), float(m[2]), m[3], m[4])
        for m in re.finditer(r"^\s*(\d+)\s+(-?\d+\.\d{4})\s+(\S+)\s+(.*)$", text, re.M)
    ]


@pytest.mark.slow
def test_prints_a_numbered_table_with_titles(model_dir, capsys):
    rows = recommend(str(model_dir), "u2", 3)
    ids, scores = _top(3, 3)
    assert [r["item_id"] for r in rows] == ids
    np.testing.assert_allclose([r["score"] for r in rows], scores, rtol=1e-5)
    text = capsys.readouterr().out
    assert f"top 3 items for user 'u2' from {model_dir / '1'}" in text
    assert "note:" not in text
    printed = _table_rows(text)
    assert [p[0] for p in printed] == [1, 2, 3]
    assert [p[2] for p in printed] == ids
    assert [p[3] for p in printed] == [TITLES[1 + int(i[1:])] for i in ids]
    np.testing.assert_allclose([p[1] for p in printed], scores, atol=1e-4)


@pytest.mark.slow
def test_unknown_user_gets_a_note_and_the_oov_answer(model_dir, capsys):
    rows = recommend(str(model_dir / "1"), "someone new", 2)
    assert [r["item_id"] for r in rows] == _top(0, 2)[0]
    assert "user 'someone new' is not in the model's training data" in capsys.readouterr().out


@pytest.mark.slow
def test_k_beyond_the_export_uses_the_k_signature(model_dir, capsys):
    rows = recommend(str(model_dir), "u0", K + 7)
    assert [r["item_id"] for r in rows] == _top(1, K + 7)[0]
    assert [p[0] for p in _table_rows(capsys.readouterr().out)] == list(range(1, K + 8))


@pytest.mark.slow
def test_k_beyond_the_catalogue_is_clipped(model_dir, capsys):
    rows = recommend(str(model_dir), "u0", NUM_ITEMS + 10)
    assert [r["item_id"] for r in rows] == _top(1, NUM_ITEMS)[0]
    assert f"note: the catalogue has only {NUM_ITEMS} items" in capsys.readouterr().out


@pytest.mark.slow
def test_latest_integer_version_with_a_saved_model_wins(model_dir, tmp_path):
    copy = tmp_path / "demo"
    for name in ("1", "03"):  # TF Serving reads "03" as version 3
        shutil.copytree(model_dir / "1", copy / name)
    (copy / "12").mkdir()  # an integer folder without a SavedModel: not a version
    (copy / ".tmp-4-999").mkdir()  # an export in progress
    assert resolve_version_dir(str(copy)) == str(copy / "03")
    assert resolve_version_dir(str(copy / "1")) == str(copy / "1")


@pytest.mark.slow
def test_cli_recommend(model_dir, capsys):
    assert main(["recommend", "--model", str(model_dir), "--user", "u1", "-k", "2"]) == 0
    assert [p[2] for p in _table_rows(capsys.readouterr().out)] == _top(2, 2)[0]
    missing = model_dir.parent / "nope"
    assert main(["recommend", "--model", str(missing), "--user", "u1"]) == 2
    assert capsys.readouterr().err.strip() == f"tfrs-irns recommend: error: {missing}: no such model directory"


# --------------------------------------------------------------------------- errors


@pytest.mark.slow
def test_bad_paths_name_the_path(model_dir, tmp_path):
    cases = {}
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    cases[a_file] = "not a directory"
    empty = tmp_path / "empty"
    empty.mkdir()
    cases[empty] = "no exported versions"
    no_pb = tmp_path / "m" / "1"
    no_pb.mkdir(parents=True)
    cases[no_pb] = r"not a SavedModel \(no saved_model.pb\)"
    corrupt = tmp_path / "corrupt" / "1"
    shutil.copytree(model_dir / "1", corrupt)
    (corrupt / "saved_model.pb").write_bytes(b"\x00garbage")
    cases[corrupt] = "cannot load the SavedModel"
    for path, message in cases.items():
        with pytest.raises(UserError, match=re.escape(str(path)) + ": " + message):
            recommend(str(path), "u1", 3)


@pytest.mark.slow
def test_k_must_be_positive(model_dir):
    with pytest.raises(UserError, match="-k: must be at least 1, got 0"):
        recommend(str(model_dir), "u1", 0)


class _Fixed(tf.Module):
    """A SavedModel that answers a fixed top-3, without the k-taking signature."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")])
    def serve(self, user_id):
        n = tf.shape(user_id)[0]
        return {"item_ids": tf.fill([n, 3], "x"), "scores": tf.zeros([n, 3])}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def other(self, x):
        return {"y": x}


def test_foreign_saved_models(tmp_path):
    module = _Fixed()
    tf.saved_model.save(module, str(tmp_path / "fixed" / "1"), signatures={"serving_default": module.serve})
    tf.saved_model.save(module, str(tmp_path / "other" / "1"), signatures={"serving_default": module.other})
    fixed = re.escape(str(tmp_path / "fixed" / "1"))
    with pytest.raises(UserError, match=rf"-k 4: {fixed} returns at most 3 items .*--set export.k=4"):
        recommend(str(tmp_path / "fixed"), "u1", 4)
    with pytest.raises(UserError, match=re.escape(str(tmp_path / "other" / "1")) + ": not a tfrs_irns export"):
        recommend(str(tmp_path / "other"), "u1", 2)
