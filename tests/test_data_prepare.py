"""prepare: vocabularies and counts from train only, OOV for unseen ids,
item side information aligned to indices; load_raw dispatch and filters."""

import numpy as np
import pytest

import tfrs_irns  # noqa: F401
from tfrs_irns.config import CsvConfig, DataConfig, SyntheticConfig
from tfrs_irns.data.prepare import Catalogue, prepare_data, prepare_from_raw
from tfrs_irns.data.sources import load_raw
from tfrs_irns.data.splits import split_interactions
from tfrs_irns.data.table import Interactions, ItemTable, RawDataset
from tfrs_irns.errors import ConfigError, DataError
from tfrs_irns.runs.wording import in_config_words


def make_raw(n=600, seed=0, with_items=True):
    rng = np.random.default_rng(seed)
    inter = Interactions(
        user_id=np.array([f"u{k}" for k in rng.integers(80, size=n)]),
        item_id=np.array([f"i{k}" for k in rng.zipf(1.5, size=n) % 300]),
        timestamp=rng.integers(0, 10**6, size=n).astype(np.int64),
        rating=rng.integers(1, 6, size=n).astype(np.float32),
    )
    items = ItemTable(item_id=np.array([]))
    if with_items:
        ids = np.array([f"i{k}" for k in range(300)] + ["i1"])  # duplicate i1 row last
        titles = np.array([f"Title {k}" for k in range(300)] + ["Duplicate"])
        genres = np.array(["A|B" if k % 3 == 0 else ("C" if k % 3 == 1 else "") for k in range(300)] + ["Z"])
        items = ItemTable(item_id=ids, title=titles, genres=genres)
    return RawDataset(interactions=inter, items=items, description="test data", skipped_rows=2)


@pytest.mark.parametrize("method", ["random", "temporal", "leave_last_out"])
def test_vocab_and_counts_from_train_only(method):
    raw = make_raw()
    cfg = DataConfig(split=method, test_fraction=0.2, validation_fraction=0.1, seed=3)
    data = prepare_from_raw(raw, cfg)
    train, val, test = split_interactions(raw.interactions, method, 0.2, 0.1, 3)
    assert data.user_vocab.ids.tolist() == sorted(set(train.user_id.tolist()))
    assert data.item_vocab.ids.tolist() == sorted(set(train.item_id.tolist()))
    assert data.num_users == len(set(train.user_id.tolist()))
    assert data.num_items == len(set(train.item_id.tolist()))
    # Encoded splits decode back to the raw ids (or OOV for unseen ones).
    for enc, part in ((data.train, train), (data.validation, val), (data.test, test)):
        assert enc.user.dtype == np.int32 and enc.item.dtype == np.int32
        assert enc.timestamp.dtype == np.int64 and len(enc) == len(part)
        known_items = set(train.item_id.tolist())
        want_item = [data.item_vocab.ids.tolist().index(i) + 1 if i in known_items else 0 for i in part.item_id.tolist()]
        assert enc.item.tolist() == want_item
        assert data.user_vocab.id_of(enc.user[enc.user > 0]).tolist() == part.user_id[enc.user > 0].tolist()
        assert np.array_equal(enc.timestamp, part.timestamp)
    assert (data.train.item > 0).all() and (data.train.user > 0).all()
    # Counts: a plain numpy count of training item ids, by vocabulary index.
    ids, counts = np.unique(train.item_id, return_counts=True)
    want = np.zeros(data.num_items + 1)
    want[data.item_vocab.lookup(ids)] = counts
    assert data.item_counts.dtype == np.float64
    assert np.array_equal(data.item_counts, want) and data.item_counts[0] == 0
    assert data.skipped_rows == 2


def test_unseen_validation_and_test_ids_map_to_oov():
    inter = Interactions(
        user_id=np.array(["a", "a", "b", "b", "c", "new"]),
        item_id=np.array(["x", "y", "x", "z", "y", "x"]),
        timestamp=np.array([1, 2, 3, 4, 5, 6], np.int64),
    )
    raw = RawDataset(interactions=inter, items=ItemTable(item_id=np.array(["x", "y", "z"])))
    # Temporal: train = t1..t3 (x, y), validation = t4 (b, z), test = t5, t6.
    data = prepare_from_raw(raw, DataConfig(split="temporal", test_fraction=2 / 6, validation_fraction=0.25))
    assert data.user_vocab.ids.tolist() == ["a", "b"]
    assert data.item_vocab.ids.tolist() == ["x", "y"]
    assert data.validation.user.tolist() == [2] and data.validation.item.tolist() == [0]  # z unseen
    assert data.test.user.tolist() == [0, 0]  # c and new are unseen users
    assert data.test.item.tolist() == [2, 1]
    assert data.item_counts.tolist() == [0.0, 2.0, 1.0]
    assert data.item_genres is None and data.genre_names == []
    assert data.item_titles.tolist() == ["", "", ""]


def test_titles_and_genres_aligned_to_item_vocabulary():
    raw = make_raw()
    data = prepare_from_raw(raw, DataConfig())
    assert data.item_titles.shape == (data.num_items + 1,)
    assert data.item_titles[0] == ""
    assert data.genre_names == ["A", "B", "C"]
    assert data.item_genres.shape == (data.num_items + 1, 3) and data.item_genres.dtype == np.float32
    assert not data.item_genres[0].any()
    for index, raw_id in enumerate(data.item_vocab.ids.tolist(), start=1):
        k = int(raw_id[1:])
        want_title = f"Title {k}"  # the duplicated i1 row keeps its first title
        assert data.item_titles[index] == want_title
        want = {0: [1, 1, 0], 1: [0, 0, 1], 2: [0, 0, 0]}[k % 3]
        assert data.item_genres[index].tolist() == want


def test_items_missing_from_item_table_get_empty_title():
    inter = Interactions(
        user_id=np.array(["a", "b", "a", "b"]),
        item_id=np.array(["x", "y", "y", "x"]),
        timestamp=np.arange(4, dtype=np.int64),
    )
    items = ItemTable(item_id=np.array(["x"]), title=np.array(["The X"]), genres=np.array(["G"]))
    data = prepare_from_raw(RawDataset(inter, items), DataConfig(split="temporal", test_fraction=0.25, validation_fraction=0.0))
    assert data.item_titles.tolist() == ["", "The X", ""]
    assert data.item_genres.tolist() == [[0.0], [1.0], [0.0]]


def test_empty_train_and_empty_test_are_errors():
    one = RawDataset(
        Interactions(np.array(["a"]), np.array(["x"]), np.array([1], np.int64)), ItemTable(np.array(["x"]))
    )
    with pytest.raises(DataError, match="the training split is empty"):
        prepare_from_raw(one, DataConfig(test_fraction=0.9))
    singles = RawDataset(
        Interactions(np.array(["a", "b"]), np.array(["x", "y"]), np.array([1, 2], np.int64)),
        ItemTable(np.array(["x", "y"])),
    )
    with pytest.raises(DataError, match="the test split is empty .*no user has 2 or more"):
        prepare_from_raw(singles, DataConfig(split="leave_last_out"))


def test_prepare_data_end_to_end_on_small_synthetic():
    cfg = DataConfig(synthetic=SyntheticConfig(num_users=200, num_items=500, num_interactions=5000, num_clusters=5))
    data = prepare_data(cfg)
    assert len(data.train) + len(data.validation) + len(data.test) == 5000
    assert len(data.test) == 1000 and len(data.validation) == 400
    assert data.item_genres.shape[1] == 5
    assert data.description.startswith("synthetic (seed 42)")
    again = prepare_data(cfg)
    assert np.array_equal(data.test.item, again.test.item)


def test_load_raw_requires_name_or_path():
    with pytest.raises(ConfigError, match="^name: required when source is 'tfds'.*movielens/100k-ratings") as err:
        load_raw(DataConfig(source="tfds"))
    # As a run reports it: the config's keys.
    assert str(in_config_words(err.value)).startswith("data.name: required when data.source is 'tfds'")
    with pytest.raises(ConfigError, match="^path: required when source is 'movielens'"):
        load_raw(DataConfig(source="movielens"))
    with pytest.raises(ConfigError, match="^path: required when source is 'csv'") as err:
        load_raw(DataConfig(source="csv"))
    assert str(in_config_words(err.value)).startswith("data.path: required when data.source is 'csv'")


def test_load_raw_unsupported_tfds_name():
    with pytest.raises(DataError, match="unsupported tfds dataset 'mnist'"):
        load_raw(DataConfig(source="tfds", name="mnist"))


def write_ratings_csv(tmp_path, body):
    path = tmp_path / "r.csv"
    path.write_text("user_id,item_id,timestamp,rating\n" + body)
    return str(path)


def test_min_rating_filter(tmp_path):
    path = write_ratings_csv(tmp_path, "a,x,1,5\nb,y,2,3.5\nc,z,3,4\n")
    cfg = DataConfig(source="csv", path=path, csv=CsvConfig(rating_column="rating"), min_rating=4.0)
    raw = load_raw(cfg)
    assert raw.interactions.user_id.tolist() == ["a", "c"]
    assert raw.interactions.rating.tolist() == [5.0, 4.0]
    assert "ratings >= 4: 2 kept" in raw.description


def test_min_rating_errors(tmp_path):
    path = write_ratings_csv(tmp_path, "a,x,1,2\nb,y,2,3\n")
    with pytest.raises(ConfigError, match=r"^min_rating: the csv source has no ratings \(set rating_column\)") as err:
        load_raw(DataConfig(source="csv", path=path, min_rating=4.0))
    assert str(in_config_words(err.value)) == (  # as a run reports it
        "data.min_rating: the csv source has no ratings (set data.csv.rating_column); set data.min_rating=null"
    )
    with pytest.raises(ConfigError, match="^min_rating: the synthetic source has no ratings"):
        load_raw(DataConfig(min_rating=1.0, synthetic=SyntheticConfig(num_users=20, num_items=50, num_interactions=100, num_clusters=2)))
    cfg = DataConfig(source="csv", path=path, csv=CsvConfig(rating_column="rating"), min_rating=4.5)
    with pytest.raises(DataError, match=r"no interactions left after min_rating=4.5 \(ratings range from 2 to 3\)") as err:
        load_raw(cfg)
    assert "after data.min_rating=4.5 (ratings" in str(in_config_words(err.value))


def test_skip_bad_rows_reaches_prepared_data(tmp_path):
    path = write_ratings_csv(tmp_path, "a,x,1,5\nbroken\n" + "".join(f"u{k},i{k % 7},{k},3\n" for k in range(40)))
    cfg = DataConfig(source="csv", path=path, csv=CsvConfig(rating_column="rating"), skip_bad_rows=True)
    data = prepare_data(cfg)
    assert data.skipped_rows == 1
    assert len(data.train) + len(data.validation) + len(data.test) == 41
    with pytest.raises(DataError, match=r"r.csv, line 3: expected 4 columns, found 1"):
        prepare_data(DataConfig(source="csv", path=path, csv=CsvConfig(rating_column="rating")))


def test_seen_csr_matches_a_python_oracle():
    from tfrs_irns.data.prepare import seen_csr

    rng = np.random.default_rng(4)
    user = rng.integers(0, 9, 300)  # 0 (OOV) and 8 (past num_users = 7, a cold user) are dropped
    item = rng.integers(0, 40, 300)  # item 0 (OOV) is dropped
    indptr, items = seen_csr(user, item, 7)
    assert indptr.dtype == np.int64 and items.dtype == np.int64 and indptr.shape == (9,)
    for u in range(8):
        want = sorted({int(i) for uu, i in zip(user, item) if uu == u and i > 0}) if u > 0 else []
        assert items[indptr[u] : indptr[u + 1]].tolist() == want
    assert indptr[0] == 0 and indptr[-1] == len(items)  # user 7 (the last) ends the table
    empty_indptr, empty = seen_csr(np.zeros(0, np.int32), np.zeros(0, np.int32), 3)
    assert empty_indptr.tolist() == [0] * 5 and len(empty) == 0


def test_seen_items_are_the_train_and_validation_rows():
    from tfrs_irns.data.prepare import seen_items

    data = prepare_from_raw(make_raw(), DataConfig(split="random", test_fraction=0.2, validation_fraction=0.1))
    indptr, items = seen_items(data)
    user = np.concatenate([data.train.user, data.validation.user])
    item = np.concatenate([data.train.item, data.validation.item])
    for u in (1, 2, data.num_users):
        want = sorted({int(i) for i in item[(user == u) & (item > 0)]})
        assert items[indptr[u] : indptr[u + 1]].tolist() == want


def test_prepared_data_is_a_catalogue_and_the_splits_encoded_against_it():
    data = prepare_from_raw(make_raw(), DataConfig(split="random", test_fraction=0.2, validation_fraction=0.1, seed=0))
    catalogue = data.catalogue
    assert isinstance(catalogue, Catalogue) and not hasattr(catalogue, "train")
    # The catalogue's attributes read through: one object, not a copy.
    for name in ("user_vocab", "item_vocab", "item_counts", "item_titles", "item_genres", "genre_names",
                 "item_columns", "cold_items", "fingerprint"):
        assert getattr(data, name) is getattr(catalogue, name), name
    assert (data.num_users, data.num_items) == (len(catalogue.user_vocab), len(catalogue.item_vocab))
    assert data.num_items_without_interactions == catalogue.num_items_without_interactions == 0
    # Every encoded split indexes the catalogue's vocabularies.
    for split in (data.train, data.validation, data.test):
        assert split.user.max() <= catalogue.num_users and split.item.max() <= catalogue.num_items
