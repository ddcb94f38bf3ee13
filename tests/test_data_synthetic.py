"""Synthetic data: deterministic, right shape, and the planted cluster signal
that separates a personalised recommender from a popularity list."""

import numpy as np
import pytest

import tfrs_irns  # noqa: F401
from tfrs_irns.config import SyntheticConfig
from tfrs_irns.data.synthetic import GENRE_NAMES, make_synthetic
from tfrs_irns.errors import ConfigError
from tfrs_irns.runs.wording import in_config_words

SMALL = SyntheticConfig(num_users=300, num_items=1000, num_interactions=12000, num_clusters=10)


@pytest.fixture(scope="module")
def default_raw():
    return make_synthetic(SyntheticConfig(), seed=42)


def test_deterministic_from_seed():
    a, b, c = make_synthetic(SMALL, 1), make_synthetic(SMALL, 1), make_synthetic(SMALL, 2)
    for name in ("user_id", "item_id", "timestamp"):
        assert np.array_equal(getattr(a.interactions, name), getattr(b.interactions, name))
    assert not np.array_equal(a.interactions.item_id, c.interactions.item_id)
    assert np.array_equal(a.items.title, b.items.title)


def test_shapes_ids_and_unique_pairs():
    raw = make_synthetic(SMALL, 0)
    inter = raw.interactions
    assert len(inter) == SMALL.num_interactions
    assert inter.timestamp.dtype == np.int64 and inter.rating is None
    assert set(np.unique(inter.user_id)) <= {f"u{k}" for k in range(1, SMALL.num_users + 1)}
    assert len(raw.items) == SMALL.num_items
    assert set(np.unique(inter.item_id)) <= set(raw.items.item_id.tolist())
    pairs = np.char.add(np.char.add(inter.user_id, "/"), inter.item_id)
    assert len(np.unique(pairs)) == len(pairs)  # each pair at most once


def test_items_carry_their_cluster_genre():
    raw = make_synthetic(SMALL, 0)
    genres = raw.items.genres.tolist()
    assert set(genres) == set(GENRE_NAMES[: SMALL.num_clusters])
    assert len(set(raw.items.title.tolist())) > 0.9 * SMALL.num_items
    counts = np.unique(raw.items.genres, return_counts=True)[1]
    assert counts.min() == counts.max() == SMALL.num_items // SMALL.num_clusters


def test_more_clusters_than_genre_names():
    cfg = SyntheticConfig(num_users=50, num_items=100, num_interactions=500, num_clusters=25)
    raw = make_synthetic(cfg, 0)
    assert "Genre 25" in set(raw.items.genres.tolist())


def own_cluster_share(raw):
    """Share of interactions whose item genre is the user's dominant genre."""
    inter = raw.interactions
    genre_of = dict(zip(raw.items.item_id.tolist(), raw.items.genres.tolist()))
    genres = np.array([genre_of[i] for i in inter.item_id.tolist()])
    _, user = np.unique(inter.user_id, return_inverse=True)
    names, genre = np.unique(genres, return_inverse=True)
    table = np.zeros((user.max() + 1, len(names)))
    np.add.at(table, (user, genre), 1)
    return (genre == table.argmax(1)[user]).mean()


@pytest.mark.parametrize("affinity", [0.0, 0.5, 0.9])
def test_affinity_is_the_share_of_own_cluster_interactions(affinity):
    cfg = SyntheticConfig(
        num_users=400, num_items=4000, num_interactions=40000, num_clusters=10, affinity=affinity
    )
    share = own_cluster_share(make_synthetic(cfg, 0))
    expected = affinity + (1 - affinity) / cfg.num_clusters
    # affinity 0 still has a "dominant" genre by chance, hence the slack.
    assert abs(share - expected) < (0.1 if affinity == 0 else 0.04)


def test_zipf_exponent_sets_popularity_skew():
    def top_share(exponent):
        cfg = SyntheticConfig(
            num_users=500, num_items=2000, num_interactions=20000, zipf_exponent=exponent, affinity=0.0
        )
        counts = np.unique(make_synthetic(cfg, 0).interactions.item_id, return_counts=True)[1]
        counts = np.sort(counts)[::-1]
        return counts[:20].sum() / counts.sum()  # top 1% of items

    flat, skewed = top_share(0.0), top_share(1.2)
    assert flat < 0.02  # uniform: ~1%
    assert skewed > 0.15


def hit_rates(raw, k=100, seed=0):
    """hit_rate@k on a random 80/20 split of two numpy oracles: the global
    most-popular list, and the most popular items of the genre the user
    mostly watched in training (the planted cluster)."""
    inter = raw.interactions
    n = len(inter)
    perm = np.random.default_rng(seed).permutation(n)
    train, test = perm[: int(0.8 * n)], perm[int(0.8 * n) :]
    item_ids, item = np.unique(inter.item_id, return_inverse=True)
    _, user = np.unique(inter.user_id, return_inverse=True)
    genre_of = dict(zip(raw.items.item_id.tolist(), raw.items.genres.tolist()))
    _, item_genre = np.unique([genre_of[i] for i in item_ids.tolist()], return_inverse=True)
    num_genres = item_genre.max() + 1
    counts = np.bincount(item[train], minlength=len(item_ids))

    popular = np.argsort(-counts, kind="stable")[:k]
    pop_hr = np.isin(item[test], popular).mean()

    per_user = np.zeros((user.max() + 1, num_genres))
    np.add.at(per_user, (user[train], item_genre[item[train]]), 1)
    dominant = per_user.argmax(1)
    in_top = np.zeros((num_genres, len(item_ids)), bool)
    for g in range(num_genres):
        members = np.flatnonzero(item_genre == g)
        in_top[g, members[np.argsort(-counts[members], kind="stable")[:k]]] = True
    cluster_hr = in_top[dominant[user[test]], item[test]].mean()
    return pop_hr, cluster_hr


@pytest.mark.slow
def test_default_has_planted_signal_popularity_cannot_see(default_raw):
    inter = default_raw.interactions
    assert len(inter) == 500_000
    assert len(np.unique(inter.user_id)) == 5000
    pop_hr, cluster_hr = hit_rates(default_raw)
    assert pop_hr < 0.25
    assert cluster_hr > 2 * pop_hr


def test_without_affinity_the_cluster_oracle_has_no_edge():
    cfg = SyntheticConfig(num_users=1000, num_items=4000, num_interactions=100000, affinity=0.0)
    pop_hr, cluster_hr = hit_rates(make_synthetic(cfg, 0))
    assert cluster_hr < pop_hr


def test_timestamps_span_one_year_and_rows_sorted_by_user_then_time():
    raw = make_synthetic(SMALL, 0)
    inter = raw.interactions
    assert inter.timestamp.min() >= 1_609_459_200
    assert inter.timestamp.max() < 1_609_459_200 + 365 * 86400
    user_number = np.array([int(u[1:]) for u in inter.user_id.tolist()])
    order = np.lexsort((inter.timestamp, user_number))
    assert np.array_equal(order, np.arange(len(inter)))


def test_impossible_sizes_are_config_errors():
    with pytest.raises(ConfigError, match="^num_interactions: 60 is more than half") as err:
        make_synthetic(SyntheticConfig(num_users=10, num_items=10, num_interactions=60, num_clusters=2), 0)
    assert str(in_config_words(err.value)).startswith("data.synthetic.num_interactions: 60 is")  # as a run says it
    with pytest.raises(ConfigError, match="^num_items: 5 is fewer than num_clusters=8") as err:
        make_synthetic(SyntheticConfig(num_users=10, num_items=5, num_interactions=10, num_clusters=8), 0)
    assert str(in_config_words(err.value)).startswith(
        "data.synthetic.num_items: 5 is fewer than data.synthetic.num_clusters=8"
    )


def test_titles_follow_the_clusters():
    """Most of a title's invented words belong to the item's own cluster (noise TITLE_NOISE), fillers are shared."""
    from tfrs_irns.data.synthetic import TITLE_CLUSTER_WORDS, TITLE_NOISE, cluster_words

    raw = make_synthetic(SMALL, 0)
    owner = {w.title(): c for c, words in enumerate(cluster_words(SMALL.num_clusters)) for w in words}
    cluster_of_genre = {g: c for c, g in enumerate(GENRE_NAMES)}
    own = total = 0
    for title, genre in zip(raw.items.title.tolist(), raw.items.genres.tolist()):
        words = [w for w in title.split() if w in owner]
        assert len(words) == TITLE_CLUSTER_WORDS
        own += sum(owner[w] == cluster_of_genre[genre] for w in words)
        total += len(words)
    # Own cluster: 1 - noise, plus the noise draws that land on it by chance.
    expected = 1 - TITLE_NOISE + TITLE_NOISE / SMALL.num_clusters
    assert abs(own / total - expected) < 0.03


def test_titles_draw_from_their_own_stream():
    """Adding titles changed no interaction: the digest of SMALL seed 3 is the one the generator gave
    before titles had their own stream (so the README's synthetic figures stay)."""
    import hashlib

    inter = make_synthetic(SMALL, 3).interactions
    text = "|".join(inter.user_id.tolist()) + "#" + "|".join(inter.item_id.tolist())
    digest = hashlib.sha256(text.encode() + inter.timestamp.tobytes()).hexdigest()[:16]
    assert digest == "bcd104c6b46771b1"
