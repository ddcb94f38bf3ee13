"""candidate_embedding_from_features: raw strings → the tower's embedding, inside the SavedModel,
core ops only, in a fresh plain-TF (Keras 3) process."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import tfrs_irns  # noqa: F401
from tfrs_irns.config import load_config
from tfrs_irns.data.item_features import joined_genres
from tfrs_irns.data.prepare import prepare_data
from tfrs_irns.export.content import SIGNATURE, ItemFeatureEncoder
from tfrs_irns.export.saved_model import SIGNATURES, export_model
from tfrs_irns.layers.item_content import make_encoders
from tfrs_irns.runs.build import build_model

from helpers import with_tiny

NEW_ITEM = {"title": "The Ranmi Kalo Night", "genres": "Action|Unheard Genre"}

FRESH = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf
    tf.keras.__name__  # Keras 3 resolved first: must not matter
    s = tf.saved_model.load(sys.argv[1]).signatures
    raw = json.loads(sys.argv[2])
    out = s["candidate_embedding_from_features"](**{k: tf.constant(v) for k, v in raw.items()})["embedding"]
    mods = sorted(m for m in sys.modules if m.split(".")[0] in ("tfrs_irns", "tensorflow_recommenders", "tf_keras"))
    print("RESULT " + json.dumps({"embedding": out.numpy().tolist(), "foreign": mods}))
    """
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """An id + content tower on a cold_items split: cold items (and OOV) have no id row, as a new item."""
    config = load_config(
        "configs/quickstart.yaml",
        with_tiny("model.item_features=[id,title,genres]", "model.candidate_hidden=[16]", "data.split=cold_items"),
    )
    data = prepare_data(config.data)
    model = build_model(config, data)
    base = tmp_path_factory.mktemp("content")
    path = export_model(model, data.user_vocab, data.item_vocab, base_dir=str(base), name="m", k=5)
    raw = {"title": data.item_titles.tolist(), "genres": joined_genres(data).tolist()}
    return model, data, path, raw, tf.saved_model.load(path)


@pytest.mark.slow
def test_own_features_give_the_in_memory_embedding(setup):
    """The items without an id row (cold, OOV) get exactly their in-memory embedding; warm items
    their content-only one (the tower without the id part)."""
    model, data, _, raw, loaded = setup
    got = loaded.signatures[SIGNATURE](**{k: tf.constant(v) for k, v in raw.items()})["embedding"].numpy()
    want = model.item_embeddings()
    rows = np.r_[0, data.cold_items]
    assert len(rows) > 1
    np.testing.assert_allclose(got[rows], want[rows], rtol=1e-5, atol=1e-6)
    tower = model.candidate_tower
    content = tower.embed_encoded({f["name"]: tf.gather(t, np.arange(1, 4)) for f, t in zip(tower.features, tower.tables)})
    np.testing.assert_allclose(got[1:4], content.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_a_new_item_equals_the_tower_on_its_encoded_features(setup):
    model, _, _, _, loaded = setup
    tower = model.candidate_tower
    enc = make_encoders(tower.features)
    want = tower.embed_encoded({k: enc[k](tf.constant([v])) for k, v in NEW_ITEM.items()}).numpy()
    got = loaded.signatures[SIGNATURE](**{k: tf.constant([v]) for k, v in NEW_ITEM.items()})["embedding"]
    assert got.dtype == tf.float32 and got.shape == (1, tower.embedding_dim)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_signature_inputs_are_the_features_and_the_others_are_unchanged(setup):
    _, _, path, _, loaded = setup
    assert set(loaded.signatures) == set(SIGNATURES) | {SIGNATURE}
    spec = loaded.signatures[SIGNATURE].structured_input_signature[1]
    assert sorted(spec) == ["genres", "title"] and all(s.dtype == tf.string for s in spec.values())
    meta = json.loads((Path(path) / "assets.extra" / "metadata.json").read_text())
    assert SIGNATURE in meta["signatures"]


@pytest.mark.slow
def test_graph_uses_only_core_tensorflow_ops(setup):
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(setup[2]) / "saved_model.pb").read_bytes())
    ops = set()
    for graph in proto.meta_graphs:
        ops.update(n.op for n in graph.graph_def.node)
        for function in graph.graph_def.library.function:
            ops.update(n.op for n in function.node_def)
    assert {"StringSplitV2", "LookupTableFindV2"} <= ops
    assert ops - set(dir(tf.raw_ops)) == set()


@pytest.mark.slow
@pytest.mark.subprocess
def test_fresh_plain_tensorflow_process(setup):
    model, _, path, _, _ = setup
    env = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "PYTHONPATH")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    raw = {k: [v] for k, v in NEW_ITEM.items()}
    proc = subprocess.run(
        [sys.executable, "-c", FRESH, path, json.dumps(raw)], cwd=str(Path(path).parent), env=env,
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))[len("RESULT "):])
    assert out["foreign"] == []
    enc = make_encoders(model.candidate_tower.features)
    want = model.candidate_tower.embed_encoded({k: enc[k](tf.constant(v)) for k, v in raw.items()}).numpy()
    np.testing.assert_allclose(out["embedding"], want, rtol=1e-5, atol=1e-6)


def test_an_id_tower_has_nothing_to_serve_from_features():
    with pytest.raises(ValueError, match="no content features"):
        ItemFeatureEncoder(tf.keras.layers.Embedding(3, 2))
