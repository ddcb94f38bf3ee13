"""The cold_items protocol: no cold item reaches training, validation or the sampler;
the test is every interaction on them; cold_only ranks among them alone."""

import numpy as np
import pytest
import tensorflow as tf

import tfrs_irns  # noqa: F401
from tfrs_irns.config import load_config
from tfrs_irns.data.prepare import prepare_data
from tfrs_irns.data.snapshot import load_snapshot, save_snapshot
from tfrs_irns.data.splits import split_interactions
from tfrs_irns.data.table import Interactions
from tfrs_irns.evaluation.evaluate import cold_only_metrics, evaluate_embeddings
from tfrs_irns.runs.build import build_model, make_sampler

from helpers import with_tiny

COLD = with_tiny("data.split=cold_items", "data.cold_item_fraction=0.2", "model.item_features=[id,title,genres]")


@pytest.fixture(scope="module")
def config():
    return load_config("configs/quickstart.yaml", COLD)


@pytest.fixture(scope="module")
def data(config):
    return prepare_data(config.data)


def test_split_holds_out_whole_items():
    rng = np.random.default_rng(0)
    inter = Interactions(
        user_id=np.array([f"u{u}" for u in rng.integers(0, 30, 600)]),
        item_id=np.array([f"i{i}" for i in rng.integers(0, 50, 600)]),
        timestamp=np.arange(600, dtype=np.int64),
    )
    train, val, test = split_interactions(inter, "cold_items", 0.5, 0.1, seed=3, cold_item_fraction=0.2)
    cold = set(test.item_id.tolist())
    assert len(cold) == round(0.2 * len(set(inter.item_id.tolist())))
    assert not cold & set(train.item_id.tolist()) and not cold & set(val.item_id.tolist())
    assert len(test) == int(np.isin(inter.item_id, list(cold)).sum())  # every interaction on them
    assert len(train) + len(val) + len(test) == len(inter)
    assert len(val) == round(0.1 * (len(train) + len(val)))  # the warm rows split as ``random`` does
    again = split_interactions(inter, "cold_items", 0.5, 0.1, seed=3, cold_item_fraction=0.2)[2]
    assert set(again.item_id.tolist()) == cold


def test_cold_items_join_the_catalogue_with_zero_counts(data):
    cold = data.cold_items
    assert len(cold) > 0 and set(np.unique(data.test.item)) == set(cold.tolist())
    assert not np.isin(data.train.item, cold).any() and not np.isin(data.validation.item, cold).any()
    assert (data.item_counts[cold] == 0).all() and (data.item_counts[np.setdiff1d(np.arange(1, data.item_vocab.size), cold)] > 0).all()
    assert (data.test.item > 0).all()  # ranked and embedded, never OOV


def test_data_summary_counts_cold_items_as_unknown_to_training(config, data):
    from tfrs_irns.data.sources import load_raw
    from tfrs_irns.data.summary import summarize

    s = summarize(load_raw(config.data), data)
    # Every test item is cold: none is known to training, and the training catalogue leaves them out.
    assert s["splits"]["test"]["items"] == 0 and s["cold_test_item_share"] == 1.0
    assert s["train_items"] == s["splits"]["train"]["items"] == data.num_items - len(data.cold_items)


@pytest.mark.parametrize("sampler", ["uniform", "unigram"])
def test_the_sampler_never_draws_a_cold_item(config, data, sampler):
    negatives = load_config("configs/quickstart.yaml", COLD + [f"negatives.sampler={sampler}"]).negatives
    s = make_sampler(negatives, data.item_counts)
    ids, q = s.sample(4000, tf.constant([1, 2]))
    assert not np.isin(ids.numpy(), data.cold_items).any()
    assert (s.probability(tf.constant(data.cold_items)).numpy() == 0).all()  # logQ and q_j: 0
    warm = np.flatnonzero(data.item_counts > 0)
    if sampler == "uniform":
        np.testing.assert_allclose(q.numpy(), 1.0 / len(warm), rtol=1e-6)


def test_the_tower_embeds_cold_items_from_content_only(config, data):
    tower = build_model(config, data).candidate_tower
    assert tower.id_mask.numpy()[data.cold_items].tolist() == [0.0] * len(data.cold_items)
    # Vocabularies come from warm items only: a word only cold titles use is OOV.
    warm_words = set(" ".join(data.item_titles[data.item_counts > 0]).lower().split())
    assert set(tower.features[0]["vocabulary"]) <= warm_words


def test_snapshot_keeps_the_cold_items(data, tmp_path):
    save_snapshot(data, str(tmp_path))
    np.testing.assert_array_equal(load_snapshot(str(tmp_path)).cold_items, data.cold_items)


def test_cold_only_ranks_among_the_cold_items_by_hand():
    # Items 1..4; cold = {2, 4}. One user, query [1, 0].
    user = np.array([[0, 0], [1, 0]], np.float32)
    items = np.array([[0, 0], [9, 0], [1, 0], [5, 0], [2, 0]], np.float32)
    full = evaluate_embeddings(user, items, [1, 1], [2, 4], ks=[1, 2])
    cold = cold_only_metrics(user, items, [1, 1], [2, 4], np.array([2, 4]), ks=[1, 2])
    # Whole catalogue: order 1, 3, 4, 2 -> item 4 at rank 2, item 2 at rank 3.
    assert full["hit_rate@2"] == 0.0
    # Among {2, 4}: 4 first, then 2.
    assert cold["hit_rate@1"] == 0.5 and cold["hit_rate@2"] == 1.0
    assert cold["protocol"]["num_items"] == 2 and cold["protocol"]["random_hit_rate"] == {"@1": 0.5, "@2": 1.0}


# --------------------------------------------------------------------------- the item table is the catalogue


@pytest.fixture(scope="module")
def catalogue_run(tmp_path_factory):
    """A title-only content tower trained on items i0..i299; n0..n99 (the same titles as i0..i99)
    are in the item table only, with no interaction."""
    import json as _json

    from tfrs_irns.cli.main import main

    root = tmp_path_factory.mktemp("catalogue")
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"i{(u % 6) * 50 + int(rng.integers(50))}", t) for t, u in enumerate(rng.integers(0, 60, 3000))]
    (root / "events.csv").write_text("user_id,item_id,timestamp\n" + "".join(f"{u},{i},{t}\n" for u, i, t in rows))
    titles = {f"i{j}": f"topic{j // 50} word{j % 50} thing{j}" for j in range(300)}
    titles.update({f"n{j}": titles[f"i{j}"] for j in range(100)})
    (root / "items.csv").write_text("item_id,title\n" + "".join(f"{i},{t}\n" for i, t in titles.items()))
    config = root / "c.yaml"
    config.write_text(
        f"data:\n  source: csv\n  path: {root / 'events.csv'}\n  csv:\n    items_path: {root / 'items.csv'}\n"
        "  split: random\n  validation_fraction: 0\nmodel:\n  item_features: [title]\n  embedding_dim: 16\n"
        "negatives:\n  num_negatives: 100\ntrain:\n  epochs: 1\n  batch_size: 128\n  early_stopping:\n    enabled: false\n"
        f"export:\n  name: cat\n  k: 50\n  base_dir: {root / 'saved'}\n"
    )
    assert main(["train", "--config", str(config), "--output", str(root / "run")]) == 0
    version = root / "saved" / "cat" / "1"
    meta = _json.loads((version / "assets.extra" / "metadata.json").read_text())
    metrics = _json.loads((root / "run" / "metrics.json").read_text())
    return version, meta, metrics, rows


@pytest.mark.slow
def test_items_without_interactions_are_embedded_and_served(catalogue_run):
    """Finding 3: the export serves the whole item table; the 100 items without interactions that share
    a title with trained items are retrieved beside them (same content, same score)."""
    version, meta, metrics, rows = catalogue_run
    assert meta["num_items"] == 400 and meta["catalogue"]["without_interactions"] == 100
    assert metrics["catalogue"] == meta["catalogue"]
    loaded = tf.saved_model.load(str(version))
    emb = loaded.signatures["candidate_embedding"](item_id=tf.constant(["i7", "n7", "nothing"]))["embedding"].numpy()
    np.testing.assert_allclose(emb[0], emb[1], rtol=1e-5, atol=1e-6)  # content only: the twin's vector
    users = sorted({u for u, _, _ in rows})
    out = loaded.signatures["serving_default"](user_id=tf.constant(users))
    ids = [[i.decode() for i in row] for row in out["item_ids"].numpy()]
    new = [sum(i.startswith("n") for i in row) for row in ids]
    # Users of topics 0 and 1 (i0..i99) get items no one ever interacted with: their twins.
    assert sum(n > 0 for n in new) >= len(users) // 3, new
    full = loaded.signatures["recommend_k"](user_id=tf.constant(users), k=tf.constant(400), include_seen=tf.constant(True))
    for row_ids, row_scores in zip(full["item_ids"].numpy(), full["scores"].numpy()):
        score = {i.decode(): s for i, s in zip(row_ids, row_scores)}
        for j in range(100):
            assert score[f"n{j}"] == pytest.approx(score[f"i{j}"], rel=1e-4, abs=1e-4)
