"""The content item tower: vocabularies and encoded tables by hand, a numpy oracle of the
embedding, items absent from training, serialization and checkpoints."""

import numpy as np
import pytest
import tensorflow as tf

import tfrs_irns  # noqa: F401
from tfrs_irns.layers.item_content import (
    OOV,
    PAD,
    ContentItemTower,
    catalogue_vocabulary,
    encode_catalogue,
    make_encoders,
)

TITLES = np.array(["", "Toy Story (1995)", "The Story of Toys!", "Alien", "Alien Story"])
GENRES = np.array(["", "Action|Comedy", "Comedy", " Drama | Comedy ", "Action"])
WARM = np.array([False, True, True, True, False])  # item 4 has no training interaction


def features():
    return [
        {"name": "title", "kind": "text", "vocabulary": catalogue_vocabulary(TITLES[WARM], "text", 3), "length": 4},
        {"name": "genres", "kind": "categorical", "vocabulary": catalogue_vocabulary(GENRES[WARM], "categorical", 10),
         "length": 3},
    ]


def tables(feats):
    encoders = make_encoders(feats)
    return {"title": encode_catalogue(TITLES, encoders["title"]), "genres": encode_catalogue(GENRES, encoders["genres"])}


def test_vocabularies_come_from_the_given_items_most_frequent_first():
    # Warm titles: toy story 1995 / the story of toys / alien -> "story" twice, then ties by the token.
    assert catalogue_vocabulary(TITLES[WARM], "text", 3) == ["story", "1995", "alien"]
    assert catalogue_vocabulary(GENRES[WARM], "categorical", 10) == ["Comedy", "Action", "Drama"]


def test_encoded_tables_by_hand():
    t = tables(features())
    # 0 padding, 1 OOV, then the vocabulary from 2: story=2, 1995=3, alien=4.
    assert t["title"].tolist() == [[0, 0, 0, 0], [1, 2, 3, 0], [1, 2, 1, 1], [4, 0, 0, 0], [4, 2, 0, 0]]
    # Comedy=2, Action=3, Drama=4; values trimmed, '' has none.
    assert t["genres"].tolist() == [[0, 0, 0], [3, 2, 0], [2, 0, 0], [4, 2, 0], [3, 0, 0]]
    assert t["title"].dtype == np.int32 and PAD == 0 and OOV == 1


def test_text_longer_than_length_is_cut_and_unknown_values_are_oov():
    enc = make_encoders(features())
    assert enc["title"](tf.constant(["story story story story story alien"])).numpy().tolist() == [[2, 2, 2, 2]]
    assert enc["genres"](tf.constant(["Western|Action"])).numpy().tolist() == [[OOV, 3, 0]]


def make_tower(**kwargs):
    feats = features()
    args = dict(vocab_size=5, embedding_dim=6, features=feats, tables=tables(feats), id_mask=WARM.astype(np.float32))
    args.update(kwargs)
    tower = ContentItemTower(**args)
    tower(tf.constant([0]))
    return tower


def test_embedding_matches_a_numpy_oracle():
    """masked id row + mean of the title's token rows + mean of the genre rows (no MLP)."""
    tower = make_tower()
    t = tables(tower.features)
    ids = tower.embedding.embeddings.numpy()
    title_rows, genre_rows = (e.embeddings.numpy() for e in tower.token_embeddings)

    def bag(rows, codes):
        codes = codes[codes > 0]
        return rows[codes].mean(0) if len(codes) else np.zeros(rows.shape[1])

    want = np.stack([
        ids[i] * WARM[i] + bag(title_rows, t["title"][i]) + bag(genre_rows, t["genres"][i]) for i in range(5)
    ])
    np.testing.assert_allclose(tower(tf.range(5)).numpy(), want, rtol=1e-5, atol=1e-6)


def test_an_item_absent_from_training_is_embedded_from_its_content():
    """Cold item 4 (no id row) = embed_encoded of its own features = a brand-new item with the same title."""
    tower = make_tower(hidden=[8], pooling="attention")
    enc = make_encoders(tower.features)
    new = {"title": enc["title"](tf.constant(["Alien Story"])), "genres": enc["genres"](tf.constant(["Action"]))}
    np.testing.assert_allclose(tower.embed_encoded(new).numpy()[0], tower(tf.constant([4])).numpy()[0], rtol=1e-6)
    # A warm item's id row makes its index embedding differ from its content-only one.
    own = {name: tf.constant(table[1:2]) for name, table in tables(tower.features).items()}
    assert not np.allclose(tower.embed_encoded(own).numpy()[0], tower(tf.constant([1])).numpy()[0])


def test_content_only_tower_has_no_id_table():
    tower = make_tower(use_id=False)
    assert tower.embedding is None
    assert not [w.name for w in tower.weights if w.name.endswith("/embedding/embeddings:0") or "id_mask" in w.name]
    np.testing.assert_allclose(
        tower(tf.constant([4])).numpy(), tower.embed_encoded({n: tf.constant(t[4:5]) for n, t in tables(tower.features).items()}).numpy(),
        rtol=1e-6,
    )


def test_config_and_weights_round_trip(tmp_path):
    tower = make_tower(hidden=[8], normalize=True, pooling="attention")
    want = tower(tf.range(5)).numpy()
    clone = ContentItemTower.from_config(tower.get_config())  # zero tables until the weights arrive
    clone(tf.constant([0]))
    assert not clone.tables[0].numpy().any()
    clone.set_weights(tower.get_weights())
    np.testing.assert_allclose(clone(tf.range(5)).numpy(), want, rtol=1e-6)
    # A checkpoint carries the encoded tables and the id mask.
    path = tf.train.Checkpoint(tower=tower).write(str(tmp_path / "ckpt"))
    fresh = ContentItemTower.from_config(tower.get_config())
    fresh(tf.constant([0]))
    tf.train.Checkpoint(tower=fresh).read(path).assert_consumed()
    np.testing.assert_allclose(fresh(tf.range(5)).numpy(), want, rtol=1e-6)


def test_embedding_penalty_is_the_mean_squared_norm_of_each_part():
    tower = make_tower()
    parts = [p.numpy() for p in tower._parts(tf.constant([1, 4]))]
    want = sum((p ** 2).sum(-1).mean() for p in parts)
    np.testing.assert_allclose(tower.embedding_penalty(tf.constant([1, 4])).numpy(), want, rtol=1e-5)


def test_set_oov_to_mean_uses_trained_rows_only():
    tower = make_tower()
    table = tower.embedding.embeddings.numpy()
    tower.set_oov_to_mean()
    np.testing.assert_allclose(tower.embedding.embeddings.numpy()[0], table[1:4].mean(0), rtol=1e-6)


def test_mixed_bfloat16_tower():
    tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        tower = make_tower(pooling="attention", hidden=[8])
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")
    out = tower(tf.range(5))
    assert out.dtype == tf.bfloat16 and all(w.dtype != tf.bfloat16 for w in tower.weights)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"pooling": "max"}, "pooling must be one of mean, attention"),
        ({"use_id": False, "features": []}, "needs use_id=True or at least one feature"),
        ({"tables": {"title": np.zeros((4, 4), np.int32)}}, r"tables\['title'\] has shape \(4, 4\), expected \(5, 4\)"),
        ({"tables": {"brand": np.zeros((5, 1), np.int32)}}, "tables for unknown features: brand"),
        ({"id_mask": np.ones(3)}, "id_mask has 3 rows, expected vocab_size=5"),
        ({"features": [{"name": "x", "kind": "image", "vocabulary": [], "length": 1}], "tables": None},
         "kind must be one of text, categorical"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_tower(**kwargs)
