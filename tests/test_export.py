"""SavedModel export: parity with the model and numpy, the serving contract
(signatures, core ops only, fresh process, saved_model_cli), bad input.
The version folders themselves are tested in test_export_versions.py."""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import tfrs_irns  # noqa: F401  (Keras 2 before tensorflow)
import tensorflow as tf
import tensorflow_recommenders as tfrs
from tensorflow.core.protobuf import saved_model_pb2

from tfrs_irns.config import Config
from tfrs_irns.data.prepare import Catalogue
from tfrs_irns.data.vocab import Vocabulary
from tfrs_irns.errors import UserError
from tfrs_irns.export import saved_model as sm
from tfrs_irns.export import export_embeddings, export_model
from tfrs_irns.layers.towers import CandidateTower, QueryTower
from tfrs_irns.models.two_tower import TwoTowerModel
from tfrs_irns.runs.exporting import export_run
from tfrs_irns.runs.training import Run

NUM_USERS, NUM_ITEMS, DIM, K = 20, 50, 8, 10
CHUNK = 16  # 50 items → blocks of 16, 16, 16, 2: exercises the block merge
SIGNATURE_NAMES = ["candidate_embedding", "query_embedding", "recommend_k", "recommend_k_excluding", "serving_default"]


def _model():
    tf.keras.utils.set_random_seed(1)
    features = np.random.default_rng(1).random((NUM_ITEMS + 1, 3)).astype(np.float32)
    query = QueryTower(NUM_USERS + 1, DIM, hidden=[16], normalize=True, name="query_tower")
    candidate = CandidateTower(NUM_ITEMS + 1, DIM, item_features=features, name="candidate_tower")
    model = TwoTowerModel(query, candidate, task=tfrs.tasks.Retrieval())
    query(tf.zeros([1], tf.int32))
    candidate(tf.zeros([1], tf.int32))
    return model


# Awkward but legal ids: spaces, non-ASCII, digits that sort differently as text.
USER_IDS = np.array(sorted([f"user {i}" for i in range(NUM_USERS - 1)] + ["üser-é"]))
ITEM_IDS = np.array(sorted([f"item-{i}" for i in range(NUM_ITEMS)]))
TITLES = np.array([""] + [f"Title {i}\twith  tab" for i in range(NUM_ITEMS)])


def _reference(model, user_rows, k, exclude=None):
    """numpy brute force: (item ids, scores) of the top k for user indices."""
    users = model.user_embeddings()[user_rows]
    scores = users @ model.item_embeddings()[1:].T
    if exclude is not None:
        for row, items in enumerate(exclude):
            scores[row, [i - 1 for i in items]] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return ITEM_IDS[top], np.take_along_axis(scores, top, axis=1)


def _strings(tensor):
    return np.array([[v.decode() for v in row] for row in tensor.numpy()], dtype=object).reshape(tensor.shape)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """One export through ``export_run`` (a Run with stand-in data), loaded back."""
    root = tmp_path_factory.mktemp("export")
    model = _model()
    run_dir = root / "run"
    run_dir.mkdir()
    (run_dir / "metrics.json").write_text(json.dumps({"hit_rate@100": 0.25}))
    config = Config()
    config.name = "unit"
    config.export.k = K
    config.export.base_dir = str(root / "saved_models")
    # No training counts: no most-popular answer is exported.
    catalogue = Catalogue(
        user_vocab=Vocabulary(ids=USER_IDS), item_vocab=Vocabulary(ids=ITEM_IDS),
        item_counts=np.zeros(NUM_ITEMS + 1), item_titles=TITLES, item_genres=None, genre_names=[],
    )
    run = Run(config=config, catalogue=catalogue, model=model, directory=str(run_dir))
    with pytest.MonkeyPatch.context() as patch:
        # export_run uses the default block size; shrink it so the blocked path is what we test.
        patch.setattr(sm, "DEFAULT_CHUNK_SIZE", CHUNK)
        path = export_run(run)
    return SimpleNamespace(root=root, model=model, run=run, path=path, loaded=tf.saved_model.load(path))


@pytest.mark.slow
def test_layout_assets_and_metadata(setup):
    path = Path(setup.path)
    assert path == setup.root / "saved_models" / "unit" / "1"
    # No temporary folder left; the item embeddings sit beside the version (export.embeddings).
    assert sorted(os.listdir(path.parent)) == ["1", "1.embeddings"]
    assert (path / "saved_model.pb").is_file() and (path / "variables").is_dir()
    lines = (path / "assets" / "items.tsv").read_text(encoding="utf-8").splitlines()
    # Line n is item index n + 1: its raw id, then its title with the tab made a space.
    assert lines == [f"{ITEM_IDS[n]}\tTitle {n} with  tab" for n in range(NUM_ITEMS)]
    assert (path / "assets" / "users.txt").read_text(encoding="utf-8").splitlines() == list(USER_IDS)
    meta = json.loads((path / "assets.extra" / "metadata.json").read_text())
    assert meta["k"] == K and meta["num_items"] == NUM_ITEMS and meta["num_users"] == NUM_USERS
    assert meta["embedding_dim"] == DIM and meta["name"] == "unit"
    assert meta["metrics"] == {"hit_rate@100": 0.25}
    assert meta["config"]["export"]["k"] == K and meta["config"]["name"] == "unit"
    assert meta["versions"]["tensorflow"] == tf.__version__
    assert meta["versions"]["tfrs_irns"] == tfrs_irns.__version__
    assert sorted(meta["signatures"]) == SIGNATURE_NAMES


@pytest.mark.slow
def test_serving_default_matches_model_and_numpy(setup):
    rng = np.random.default_rng(0)
    rows = np.concatenate([[1, NUM_USERS], rng.integers(1, NUM_USERS + 1, 6)])
    raw = USER_IDS[rows - 1]
    out = setup.loaded.signatures["serving_default"](user_id=tf.constant(raw))
    assert out["item_ids"].shape == (len(rows), K) and out["scores"].dtype == tf.float32
    ids, scores = _strings(out["item_ids"]), out["scores"].numpy()

    ref_ids, ref_scores = _reference(setup.model, rows, K)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-6)

    # The in-memory model, served the TFRS way.
    index = tfrs.layers.factorized_top_k.BruteForce(setup.model.query_tower, k=K)
    index.index(tf.constant(setup.model.item_embeddings()[1:]), tf.constant(ITEM_IDS))
    mem_scores, mem_ids = index(tf.constant(rows, tf.int32))
    np.testing.assert_array_equal(ids, _strings(mem_ids))
    np.testing.assert_allclose(scores, mem_scores.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_unknown_user_gets_the_oov_answer(setup):
    out = setup.loaded.signatures["serving_default"](user_id=tf.constant(["never seen", ""]))
    ref_ids, ref_scores = _reference(setup.model, [0, 0], K)
    np.testing.assert_array_equal(_strings(out["item_ids"]), ref_ids)
    np.testing.assert_allclose(out["scores"].numpy(), ref_scores, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_embedding_signatures(setup):
    users = setup.loaded.signatures["query_embedding"](user_id=tf.constant([USER_IDS[3], "nobody"]))["embedding"]
    np.testing.assert_allclose(users.numpy(), setup.model.user_embeddings()[[4, 0]], rtol=1e-6)
    items = setup.loaded.signatures["candidate_embedding"](item_id=tf.constant([ITEM_IDS[0], "nope", ITEM_IDS[-1]]))
    np.testing.assert_allclose(items["embedding"].numpy(), setup.model.item_embeddings()[[1, 0, NUM_ITEMS]], rtol=1e-6)


@pytest.mark.slow
def test_empty_batch_gives_empty_answers(setup):
    sigs = setup.loaded.signatures
    none = tf.zeros([0], tf.string)
    out = sigs["serving_default"](user_id=none)
    assert out["item_ids"].shape == (0, K) and out["scores"].shape == (0, K)
    assert sigs["query_embedding"](user_id=none)["embedding"].shape == (0, DIM)
    assert sigs["candidate_embedding"](item_id=none)["embedding"].shape == (0, DIM)
    out = sigs["recommend_k_excluding"](user_id=none, k=tf.constant(3), exclude_item_ids=tf.zeros([0, 0], tf.string))
    assert out["item_ids"].shape == (0, 3)


@pytest.mark.slow
def test_recommend_k_excluding(setup):
    sig = setup.loaded.signatures["recommend_k_excluding"]
    rows = [2, 5, 0]  # 0: an unknown user
    raw = [USER_IDS[1], USER_IDS[4], "stranger"]
    top_ids, _ = _reference(setup.model, rows, 3)
    index = {item: i + 1 for i, item in enumerate(ITEM_IDS)}
    # Exclude each row's two best, with '' padding and an unknown id that must be ignored.
    exclude = [[top_ids[0][0], top_ids[0][1], ""], [top_ids[1][1], "no-such-item", ""], ["", "", top_ids[2][0]]]
    k = 25  # beyond the export's k
    out = sig(user_id=tf.constant(raw), k=tf.constant(k), exclude_item_ids=tf.constant(exclude))
    ref_ids, ref_scores = _reference(setup.model, rows, k, [[index[i] for i in e if i in index] for e in exclude])
    np.testing.assert_array_equal(_strings(out["item_ids"]), ref_ids)
    np.testing.assert_allclose(out["scores"].numpy(), ref_scores, rtol=1e-5, atol=1e-6)

    # k beyond what is left: the catalogue minus the exclusions, then '' and -inf padding.
    out = sig(user_id=tf.constant(raw[:1]), k=tf.constant(NUM_ITEMS + 5), exclude_item_ids=tf.constant([exclude[0]]))
    ids, scores = _strings(out["item_ids"])[0], out["scores"].numpy()[0]
    assert len(ids) == NUM_ITEMS  # clipped to the catalogue
    assert list(ids[-2:]) == ["", ""] and np.all(np.isneginf(scores[-2:]))
    assert set(ids[:-2]) == set(ITEM_IDS) - set(exclude[0])
    with pytest.raises(tf.errors.InvalidArgumentError, match="k must be >= 0"):
        sig(user_id=tf.constant(raw[:1]), k=tf.constant(-1), exclude_item_ids=tf.constant([[""]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="exclude_item_ids needs one row per user_id"):
        sig(user_id=tf.constant(raw), k=tf.constant(3), exclude_item_ids=tf.constant([[""]]))


def _graph_ops(path):
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(path) / "saved_model.pb").read_bytes())
    ops = set()
    for meta_graph in proto.meta_graphs:
        ops.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return ops


@pytest.mark.slow
def test_graph_uses_only_core_tensorflow_ops(setup):
    ops = _graph_ops(setup.path)
    assert {"MatMul", "TopKV2", "LookupTableFindV2", "InitializeTableFromTextFileV2"} <= ops
    assert not [op for op in ops if ">" in op], "custom-op namespace in the graph"
    assert ops - set(dir(tf.raw_ops)) == set()


@pytest.mark.slow
def test_second_export_is_version_2_and_k_is_clipped(setup):
    """Default (single-block) scoring path; export.k above the catalogue."""
    base = setup.root / "saved_models"
    path = export_model(
        setup.model, Vocabulary(ids=USER_IDS), Vocabulary(ids=ITEM_IDS), TITLES, str(base), "unit", k=1000
    )
    assert path == str(base / "unit" / "2")
    assert (base / "unit" / "1" / "saved_model.pb").is_file()
    meta = json.loads((Path(path) / "assets.extra" / "metadata.json").read_text())
    assert (meta["k"], meta["k_requested"]) == (NUM_ITEMS, 1000)
    out = tf.saved_model.load(path).signatures["serving_default"](user_id=tf.constant(USER_IDS[:3]))
    ref_ids, _ = _reference(setup.model, [1, 2, 3], NUM_ITEMS)
    np.testing.assert_array_equal(_strings(out["item_ids"]), ref_ids)


# --------------------------------------------------------------------------- atomicity


@pytest.mark.slow
def test_crash_while_writing_leaves_no_version(setup, tmp_path, monkeypatch):
    """A failing save publishes nothing and leaves the existing version as it was."""
    model_dir = tmp_path / "unit"
    shutil.copytree(setup.path, model_dir / "1")
    before = (model_dir / "1" / "saved_model.pb").read_bytes()
    real_save = tf.saved_model.save

    def half_save(obj, export_dir, signatures=None):
        real_save(obj, export_dir, signatures=signatures)
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", half_save)
    with pytest.raises(RuntimeError, match="disk full"):
        export_model(
            setup.model, Vocabulary(ids=USER_IDS), Vocabulary(ids=ITEM_IDS), TITLES, str(tmp_path), "unit", k=K
        )
    assert sorted(os.listdir(model_dir)) == ["1"]
    assert (model_dir / "1" / "saved_model.pb").read_bytes() == before


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(name="a/b"), ValueError, r"name: 'a/b' is not a valid model name"),
        (dict(name=".."), ValueError, r"name: '\.\.' is not a valid model name"),
        (dict(k=0), ValueError, r"k must be > 0, got 0"),
        (dict(item_ids=np.array(["a", "b\tc"])), UserError, r"item id 'b\\tc' cannot be exported"),
        (dict(user_ids=np.array(["", "x"])), UserError, r"user id '' cannot be exported"),
        (dict(item_ids=np.array(["a", "a"])), UserError, r"item id 'a' appears twice"),
    ],
)
def test_bad_exports_name_the_value(tmp_path, kwargs, error, message):
    args = dict(
        user_embeddings=np.zeros((3, 2)),
        item_embeddings=np.zeros((3, 2)),
        user_ids=np.array(["u1", "u2"]),
        item_ids=np.array(["a", "b"]),
        base_dir=str(tmp_path),
        name="m",
    )
    args.update(kwargs)
    with pytest.raises(error, match=message):
        export_embeddings(**args)
    assert not (tmp_path / "m").exists() or os.listdir(tmp_path / "m") == []


# --------------------------------------------------------------------------- outside this process

FRESH = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    keras_name = tf.keras.__name__  # resolve tf.keras now: Keras 3 must be fine
    loaded = tf.saved_model.load(sys.argv[1])
    s = loaded.signatures
    users = tf.constant(json.loads(sys.argv[2]))
    top = s["serving_default"](user_id=users)
    out = {
        "keras": keras_name,
        "keras_version": tf.keras.__version__,
        "signatures": sorted(s.keys()),
        "item_ids": top["item_ids"].numpy().astype(str).tolist(),
        "scores": top["scores"].numpy().tolist(),
        "query": s["query_embedding"](user_id=users)["embedding"].numpy().tolist(),
        "candidate": s["candidate_embedding"](item_id=top["item_ids"][0])["embedding"].numpy().tolist(),
        "excluding": s["recommend_k_excluding"](
            user_id=users, k=tf.constant(3), exclude_item_ids=top["item_ids"][:, :1]
        )["item_ids"].numpy().astype(str).tolist(),
        "empty": s["serving_default"](user_id=tf.zeros([0], tf.string))["item_ids"].shape.as_list(),
        "foreign_modules": sorted(m for m in sys.modules if m.split(".")[0] in ("tfrs_irns", "tensorflow_recommenders")),
    }
    print("RESULT " + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def outside(setup):
    """Run the fresh-process check and both saved_model_cli commands at once."""
    cli = Path(sys.executable).parent / "saved_model_cli"
    if not cli.is_file():
        pytest.skip(f"saved_model_cli not found next to {sys.executable}")
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    users = [str(USER_IDS[0]), "never seen"]
    cwd = str(setup.root)  # not the repo: nothing of tfrs_irns importable by accident
    commands = {
        "fresh": [sys.executable, "-c", FRESH, setup.path, json.dumps(users)],
        "show": [str(cli), "show", "--dir", setup.path, "--all"],
        "run": [
            str(cli), "run", "--dir", setup.path, "--tag_set", "serve", "--signature_def", "serving_default",
            "--input_exprs", f"user_id={users!r}",
        ],
    }
    procs = {
        name: subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name, cmd in commands.items()
    }
    results = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{name} failed:\n{stderr[-3000:]}"
        results[name] = stdout
    return SimpleNamespace(users=users, **results)


@pytest.mark.slow
@pytest.mark.subprocess
def test_fresh_process_without_tfrs_or_legacy_keras(setup, outside):
    line = next(x for x in outside.fresh.splitlines() if x.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    assert out["foreign_modules"] == []
    assert out["keras"].startswith("keras") and out["keras_version"].startswith("3.")
    assert out["signatures"] == SIGNATURE_NAMES
    ref_ids, ref_scores = _reference(setup.model, [1, 0], K)
    assert out["item_ids"] == ref_ids.tolist()
    np.testing.assert_allclose(out["scores"], ref_scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["query"], setup.model.user_embeddings()[[1, 0]], rtol=1e-6)
    rows = [int(np.flatnonzero(ITEM_IDS == i)[0]) + 1 for i in ref_ids[0]]
    np.testing.assert_allclose(out["candidate"], setup.model.item_embeddings()[rows], rtol=1e-6)
    assert out["excluding"] == ref_ids[:, 1:4].tolist()
    assert out["empty"] == [0, K]


def _signature_block(show, name):
    match = re.search(rf"signature_def\['{name}'\]:\n(.*?)Method name is", show, re.S)
    assert match, f"signature {name} missing from saved_model_cli show"
    return " ".join(match.group(1).split())


@pytest.mark.slow
@pytest.mark.subprocess
def test_saved_model_cli_show_lists_the_signatures(outside):
    show = outside.show
    expected = {
        "serving_default": [
            "inputs['user_id'] tensor_info: dtype: DT_STRING shape: (-1)",
            f"outputs['item_ids'] tensor_info: dtype: DT_STRING shape: (-1, {K})",
            f"outputs['scores'] tensor_info: dtype: DT_FLOAT shape: (-1, {K})",
        ],
        "query_embedding": [
            "inputs['user_id'] tensor_info: dtype: DT_STRING shape: (-1)",
            f"outputs['embedding'] tensor_info: dtype: DT_FLOAT shape: (-1, {DIM})",
        ],
        "candidate_embedding": [
            "inputs['item_id'] tensor_info: dtype: DT_STRING shape: (-1)",
            f"outputs['embedding'] tensor_info: dtype: DT_FLOAT shape: (-1, {DIM})",
        ],
        "recommend_k_excluding": [
            "inputs['k'] tensor_info: dtype: DT_INT32 shape: ()",
            "inputs['exclude_item_ids'] tensor_info: dtype: DT_STRING shape: (-1, -1)",
            "outputs['item_ids'] tensor_info: dtype: DT_STRING shape: (-1, -1)",
        ],
    }
    for name, parts in expected.items():
        block = _signature_block(show, name)
        for part in parts:
            assert part in block, f"{name}: {part!r} not in {block!r}"
    assert "output_1" not in show


@pytest.mark.slow
@pytest.mark.subprocess
def test_saved_model_cli_run_returns_k_ids(setup, outside):
    match = re.search(r"Result for output key item_ids:\n(.*?)Result for output key scores", outside.run, re.S)
    assert match, outside.run[-2000:]
    ids = re.findall(r"b'([^']*)'", match.group(1))
    ref_ids, _ = _reference(setup.model, [1, 0], K)
    assert ids == ref_ids.ravel().tolist()


# --------------------------------------------------------------------------- seen items, input ranks


@pytest.fixture(scope="module")
def seen_export(setup, tmp_path_factory):
    """The setup model exported with training items for three users (an unknown user has none)."""
    from tfrs_irns.data.prepare import seen_csr

    model = setup.model
    seen = {2: [1, 7, 50, 7], 5: list(range(1, NUM_ITEMS + 1, 2)), 9: [3]}  # a repeat, and half the catalogue
    user = np.array([u for u, items in seen.items() for _ in items])
    item = np.array([i for items in seen.values() for i in items])
    base = tmp_path_factory.mktemp("seen")
    path = export_model(model, Vocabulary(ids=USER_IDS), Vocabulary(ids=ITEM_IDS), TITLES, base_dir=str(base),
                        name="seen", k=K, chunk_size=CHUNK, seen=seen_csr(user, item, NUM_USERS))
    return SimpleNamespace(path=path, loaded=tf.saved_model.load(path), seen={u: sorted(set(i)) for u, i in seen.items()})


@pytest.mark.slow
def test_seen_items_excluded_by_every_user_signature(setup, seen_export):
    sigs = seen_export.loaded.signatures
    rows = [2, 5, 9, 1, 0]
    raw = tf.constant([str(USER_IDS[r - 1]) if r else "stranger" for r in rows])
    excluded = [seen_export.seen.get(r, []) for r in rows]
    ref_ids, ref_scores = _reference(setup.model, rows, K, excluded)
    out = sigs["serving_default"](user_id=raw)
    np.testing.assert_array_equal(_strings(out["item_ids"]), ref_ids)
    np.testing.assert_allclose(out["scores"].numpy(), ref_scores, rtol=1e-5, atol=1e-6)
    for include_seen, exclude in ((False, excluded), (True, None)):
        out = sigs["recommend_k"](user_id=raw, k=tf.constant(30), include_seen=tf.constant(include_seen))
        ids, _ = _reference(setup.model, rows, 30, exclude)
        got = _strings(out["item_ids"])
        # User 5 has 25 of the 50 items: 25 left, then '' padding.
        if not include_seen:
            ids[1, 25:] = ""
        np.testing.assert_array_equal(got, ids)
    # recommend_k_excluding: the caller's exclusions and the seen items.
    top = _reference(setup.model, [2], 3, [seen_export.seen[2]])[0][0]
    out = sigs["recommend_k_excluding"](user_id=raw[:1], k=tf.constant(3), exclude_item_ids=tf.constant([[top[0]]]))
    index = {item: i + 1 for i, item in enumerate(ITEM_IDS)}
    ids, _ = _reference(setup.model, [2], 3, [seen_export.seen[2] + [index[top[0]]]])
    np.testing.assert_array_equal(_strings(out["item_ids"]), ids)


def test_seen_table_size_is_in_the_metadata(seen_export):
    meta = json.loads((Path(seen_export.path) / "assets.extra" / "metadata.json").read_text())
    nnz = sum(len(v) for v in seen_export.seen.values())
    assert meta["seen_items"]["excluded"] is True
    assert meta["seen_items"]["interactions"] == nnz and meta["seen_items"]["users"] == 3
    assert meta["seen_items"]["bytes"] == 8 * (NUM_USERS + 2 + nnz + 1)
    assert "recommend_k" in meta["signatures"]


def test_ids_of_the_wrong_rank_name_the_input_not_matmul(setup):
    """Finding 10: a 2-D or scalar user_id fails with one line naming the input and its shape."""
    sigs = setup.loaded.signatures
    calls = {
        "user_id": [lambda x: sigs["serving_default"](user_id=x), lambda x: sigs["query_embedding"](user_id=x),
                    lambda x: sigs["recommend_k"](user_id=x, k=tf.constant(2), include_seen=tf.constant(False))],
        "item_id": [lambda x: sigs["candidate_embedding"](item_id=x)],
    }
    for name, fns in calls.items():
        for fn in fns:
            for bad, shape in ((tf.constant([[USER_IDS[0], USER_IDS[1]]]), "[1,2]"), (tf.constant(USER_IDS[0]), "[]")):
                with pytest.raises(tf.errors.InvalidArgumentError) as err:
                    fn(bad)
                text = str(err.value)
                assert f"Shape of tensor {name} {shape} is not compatible with expected shape [?]" in text
                assert "MatMul" not in text
