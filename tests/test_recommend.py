"""``recommend`` / ``tfrs-irns recommend``: the table it prints, version
resolution, k beyond the export, and every error a user can trigger."""

import io
import json
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
def test_k_must_be_positive(model_dir, capsys):
    with pytest.raises(UserError, match="^k: must be at least 1, got 0$"):
        recommend(str(model_dir), "u1", 0)
    assert main(["recommend", "--model", str(model_dir), "--user", "u1", "-k", "0"]) == 2
    assert capsys.readouterr().err == "tfrs-irns recommend: error: -k: must be at least 1, got 0\n"


class _Fixed(tf.Module):
    """A SavedModel that answers a fixed top-3, without the k-taking signature."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="user_id")])
    def serve(self, user_id):
        n = tf.shape(user_id)[0]
        return {"item_ids": tf.fill([n, 3], "x"), "scores": tf.zeros([n, 3])}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def other(self, x):
        return {"y": x}


def test_foreign_saved_models(tmp_path, capsys):
    module = _Fixed()
    tf.saved_model.save(module, str(tmp_path / "fixed" / "1"), signatures={"serving_default": module.serve})
    tf.saved_model.save(module, str(tmp_path / "other" / "1"), signatures={"serving_default": module.other})
    fixed = re.escape(str(tmp_path / "fixed" / "1"))
    with pytest.raises(UserError, match=rf"^k=4: {fixed} returns at most 3 items \(its top-k size\); ask for at most 3$"):
        recommend(str(tmp_path / "fixed"), "u1", 4)
    # The CLI words it as its flag, with how to export more.
    assert main(["recommend", "--model", str(tmp_path / "fixed"), "--user", "u1", "-k", "4"]) == 2
    assert capsys.readouterr().err == (
        f"tfrs-irns recommend: error: -k 4: {tmp_path / 'fixed' / '1'} returns at most 3 items (its top-k size); "
        "ask for at most 3 or re-export with --set export.k=4\n"
    )
    with pytest.raises(UserError, match=re.escape(str(tmp_path / "other" / "1")) + ": not a tfrs_irns export"):
        recommend(str(tmp_path / "other"), "u1", 2)


# --------------------------------------------------------------------------- seen items, bulk, histories

from tfrs_irns.data.prepare import seen_csr  # noqa: E402
from tfrs_irns.export.recommend import history_ids, recommend_json, recommend_many  # noqa: E402

# u2 (index 3) has its best two items and item m07; u0 (index 1) has m00; the rest have nothing.
SEEN = {3: [int(np.argsort(-(USERS[3] @ ITEMS[1:].T), kind="stable")[j]) + 1 for j in (0, 1)] + [8], 1: [1]}
POPULAR = ["m05", "m03", "m11"]


def _top_unseen(user_row, k):
    scores = USERS[user_row] @ ITEMS[1:].T
    scores[[i - 1 for i in SEEN.get(user_row, [])]] = -np.inf
    top = np.argsort(-scores, kind="stable")[:k]
    return ITEM_IDS[top].tolist(), scores[top]


@pytest.fixture(scope="module")
def seen_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("seen_models")
    user = np.array([u for u, items in SEEN.items() for _ in items])
    item = np.array([i for items in SEEN.values() for i in items])
    export_embeddings(USERS, ITEMS, USER_IDS, ITEM_IDS, TITLES, base_dir=str(base), name="seen", k=K,
                      seen=seen_csr(user, item, NUM_USERS), popular=POPULAR)
    return base / "seen"


@pytest.mark.slow
def test_seen_items_are_left_out_by_default_and_kept_on_request(seen_dir, capsys):
    """Finding 2: the user's training items are not recommended back (unless --include-seen)."""
    rows = recommend(str(seen_dir), "u2", 4)
    ids, scores = _top_unseen(3, 4)
    assert [r["item_id"] for r in rows] == ids
    np.testing.assert_allclose([r["score"] for r in rows], scores, rtol=1e-5)
    assert not {ITEM_IDS[i - 1] for i in SEEN[3]} & {r["item_id"] for r in rows}
    assert "note: the 3 items the user already has are left out (include_seen keeps them)" in capsys.readouterr().out
    # --include-seen: the plain top k, through the recommend_k signature.
    assert [r["item_id"] for r in recommend(str(seen_dir), "u2", 4, include_seen=True)] == _top(3, 4)[0]
    assert "already has" not in capsys.readouterr().out
    # Beyond the export's k, both ways.
    assert [r["item_id"] for r in recommend(str(seen_dir), "u2", K + 6)] == _top_unseen(3, K + 6)[0]
    assert [r["item_id"] for r in recommend(str(seen_dir), "u2", K + 6, include_seen=True)] == _top(3, K + 6)[0]
    # A user without training items, and an unknown user: nothing to leave out.
    assert [r["item_id"] for r in recommend(str(seen_dir), "u4", 3)] == _top(5, 3)[0]
    assert [r["item_id"] for r in recommend(str(seen_dir), "stranger", 3)] == _top(0, 3)[0]


def test_seen_items_leave_fewer_than_k_only_when_the_catalogue_runs_out(seen_dir, capsys):
    rows = recommend(str(seen_dir), "u2", NUM_ITEMS)
    assert len(rows) == NUM_ITEMS - 3
    assert f"only {NUM_ITEMS - 3} items are left to recommend (the catalogue has {NUM_ITEMS})" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_include_seen_and_json(seen_dir, capsys):
    assert main(["recommend", "--model", str(seen_dir), "--user", "u2", "-k", "3"]) == 0
    out = capsys.readouterr().out
    assert [p[2] for p in _table_rows(out)] == _top_unseen(3, 3)[0]
    assert "note: the 3 items the user already has are left out (--include-seen keeps them)" in out
    assert main(["recommend", "--model", str(seen_dir), "--user", "u2", "-k", "3", "--include-seen"]) == 0
    assert [p[2] for p in _table_rows(capsys.readouterr().out)] == _top(3, 3)[0]
    assert main(["recommend", "--model", str(seen_dir), "--user", "u2", "-k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["user_id"] == "u2" and [r["item_id"] for r in out["items"]] == _top_unseen(3, 3)[0]
    assert out["items"][0]["rank"] == 1 and out["items"][0]["title"].startswith("Movie number")
    assert any("left out" in n for n in out["notes"])
    assert recommend_json(str(seen_dir), "u4", 2, out=io.StringIO())["items"][1]["item_id"] == _top(5, 2)[0][1]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_bulk_recommendations_equal_one_user_at_a_time(seen_dir, tmp_path, suffix):
    """Finding 4 (bulk): one row per user, in the file's order, the same answers as --user."""
    users = ["u2", "stranger", "u0", "u2", "u5"]
    path = tmp_path / "users.txt"
    path.write_text("\n".join(users[:3]) + "\n\n" + "\n".join(users[3:]) + "\n", encoding="utf-8")
    out = tmp_path / f"recs{suffix}"
    assert main(["recommend", "--model", str(seen_dir), "--users", str(path), "--output", str(out), "-k", "4"]) == 0
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    else:
        import pyarrow.parquet as pq

        rows = pq.read_table(out).to_pylist()
    assert [r["user_id"] for r in rows] == users
    assert [r["known"] for r in rows] == [True, False, True, True, True]
    for r, row in zip(rows, [3, 0, 1, 3, 6]):
        ids, scores = _top_unseen(row, 4)
        assert r["item_ids"] == ids
        np.testing.assert_allclose(r["scores"], scores, rtol=1e-5)
        assert r["titles"] == [TITLES[1 + int(i[1:])] for i in ids]
    # Small batches give the same answers (scores to float rounding: a matmul's batch shape changes its sums).
    again = tmp_path / "again.jsonl"
    done = recommend_many(str(seen_dir), users, str(again), 4, batch_size=2)
    assert done["users"] == 5 and done["unknown_users"] == 1 and done["users_per_second"] > 0
    rows2 = [json.loads(line) for line in again.read_text(encoding="utf-8").splitlines()]
    assert [r["item_ids"] for r in rows2] == [r["item_ids"] for r in rows]
    np.testing.assert_allclose([r["scores"] for r in rows2], [r["scores"] for r in rows], rtol=1e-5)


def test_bulk_errors_name_the_flag(seen_dir, tmp_path, capsys):
    users = tmp_path / "users.txt"
    users.write_text("u1\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    folder = tmp_path / "dir.jsonl"
    folder.mkdir()
    model = ["recommend", "--model", str(seen_dir)]
    cases = [
        (["--users", str(users)], "--users FILE needs --output PATH"),
        (["--users", str(users), "--output", str(tmp_path / "r.csv")], r"--output .*r\.csv: expected a \.jsonl or \.parquet"),
        (["--users", str(users), "--output", str(tmp_path / "no" / "r.jsonl")], "folder .* does not exist"),
        (["--users", str(tmp_path / "missing.txt"), "--output", str(tmp_path / "r.jsonl")], "--users .*missing.txt: cannot read"),
        (["--users", str(empty), "--output", str(tmp_path / "r.jsonl")], "--users .*empty.txt: no user ids"),
        (["--users", str(users), "--output", str(folder)], r"--output .*dir\.jsonl: is a folder, expected a file name"),
        (["--user", "u1", "--output", str(tmp_path / "r.jsonl")], "--output writes the answers for --users"),
        ([], "give one of --user ID, --users FILE"),
        (["--user", "u1", "--history", "m01"], "give one of"),
        (["--history", "m01", "--include-seen"], "--include-seen is for --user"),
        (["--history", "m01", "--index"], "--index answers for a --user; --history goes through recommend_from_history"),
        (["--history-file", str(tmp_path / "missing.txt")], "--history-file .*missing.txt: cannot read it"),
        (["--history-file", str(empty)], r"--history: give at least one item id \(--history ID, repeated, or --history-file"),
        (["--user", "u1", "-k", "0"], "-k: must be at least 1, got 0"),
    ]
    for extra, message in cases:
        assert main(model + extra) == 2, extra
        err = capsys.readouterr().err
        assert re.search(message, err) and len(err.strip().splitlines()) == 1, (extra, err)


def test_history_ids_from_flags_and_files(seen_dir, tmp_path):
    """Finding 6: an id with a comma passes whole (as a known id, or from a file); ID,ID,... still splits."""
    folder = tmp_path / "comma"
    ids = ITEM_IDS.astype(object)
    ids[3] = "Toy Story, The"
    export_embeddings(USERS, ITEMS, USER_IDS, np.array(sorted(ids)), base_dir=str(folder), name="c", k=K)
    model = str(folder / "c")
    assert history_ids(model, ["Toy Story, The", "m01,m02", " m04 "]) == ["Toy Story, The", "m01", "m02", "m04"]
    listing = tmp_path / "history.txt"
    listing.write_text("m09\nToy Story, The\n\nunknown, with comma\n", encoding="utf-8")
    assert history_ids(model, ["m01"], [str(listing)]) == ["m01", "m09", "Toy Story, The", "unknown, with comma"]
    with pytest.raises(UserError, match="^files=.*nope.txt: cannot read it"):
        history_ids(model, [], [str(tmp_path / "nope.txt")])


class _MeanHead(tf.keras.layers.Layer):
    """A stand-in history head: the masked mean of the history embeddings."""

    def call(self, embeddings, mask, training=False):
        mask = tf.cast(mask, embeddings.dtype)[:, :, None]
        return tf.reduce_sum(embeddings * mask, 1) / tf.maximum(tf.reduce_sum(mask, 1), 1.0)


@pytest.mark.slow
def test_all_unknown_history_falls_back_to_the_most_popular_items(tmp_path, capsys):
    """Finding 6: a history of only unknown items gets the most popular list, said so (not zeros in id order)."""
    export_embeddings(USERS, ITEMS, USER_IDS, ITEM_IDS, TITLES, base_dir=str(tmp_path), name="h", k=K,
                      history=(_MeanHead(), ITEMS, 4), popular=POPULAR)
    rows = recommend(str(tmp_path / "h"), history=["nope", "gone"], k=3)
    assert [r["item_id"] for r in rows] == POPULAR
    out = capsys.readouterr().out
    assert "none of the history items is known: these are the most popular items" in out
    assert "2 of the history items are not in the model's catalogue" in out
    # A known item: the model answers (the item itself excluded), no fallback.
    rows = recommend(str(tmp_path / "h"), history=["m04", "nope"], k=3)
    scores = ITEMS[5] @ ITEMS[1:].T
    scores[4] = -np.inf
    assert [r["item_id"] for r in rows] == ITEM_IDS[np.argsort(-scores, kind="stable")[:3]].tolist()
    assert "most popular" not in capsys.readouterr().out
