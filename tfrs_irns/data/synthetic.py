"""Synthetic interactions with planted cluster structure (the default data).

Users and items each belong to one of ``num_clusters`` latent clusters
("taste groups"; an item's genre is its cluster's name). Item popularity is
Zipf over a random ranking. Each interaction picks a user (mildly skewed
activity), then with probability ``affinity`` an item from the user's own
cluster, popularity-weighted within it, and otherwise an item from the
global popularity. Every (user, item) pair occurs at most once, as with
ratings.

Titles carry the clusters too, so a content tower has signal to learn from:
each cluster owns a few invented words, and a title is ``TITLE_CLUSTER_WORDS``
words drawn from the item's own cluster (each, with probability
``TITLE_NOISE``, from a random cluster instead) plus one or two filler words
shared by all (``"the"``, ``"night"``, ...). Titles come from their own random
stream (seeded by ``seed``), so adding them changed no interaction.

Because a user's history holds each item once, their held-out items are
mostly *beyond* the few head items everyone has seen, so a global
most-popular list scores low, while "the popular items of the user's
cluster" scores far higher: exactly the signal a two-tower model can learn
from co-occurrence and a popularity baseline cannot.
"""

from __future__ import annotations

import numpy as np

from tfrs_irns.data.params import SyntheticParams
from tfrs_irns.data.table import Interactions, ItemTable, RawDataset
from tfrs_irns.errors import ConfigError

GENRE_NAMES = (
    "Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary", "Drama",
    "Family", "Fantasy", "History", "Horror", "Musical", "Mystery", "Noir",
    "Romance", "Sci-Fi", "Sports", "Thriller", "War", "Western",
)
# 2021-01-01T00:00:00Z; interactions spread over one year.
_T0 = 1_609_459_200
_SPAN = 365 * 86_400
# Spread of user activity (log-normal sigma): the busiest users are several
# times as active as the median one.
_ACTIVITY_SIGMA = 0.5
_MAX_ROUNDS = 200
#: Words per title from the item's cluster, words each cluster owns, chance a cluster word is another cluster's.
TITLE_CLUSTER_WORDS, WORDS_PER_CLUSTER, TITLE_NOISE = 2, 6, 0.2
_SYLLABLES = ("ka", "lo", "mi", "ren", "tu", "sa", "vo", "ne", "di", "ra", "po", "xe", "bri", "gal", "os", "um")
_FILLER = (
    "the", "of", "night", "return", "last", "great", "little", "story", "dark", "day",
    "king", "love", "city", "dream", "secret", "world", "blue", "river", "house", "road",
)


def genre_name(cluster: int) -> str:
    return GENRE_NAMES[cluster] if cluster < len(GENRE_NAMES) else f"Genre {cluster + 1}"


def _draw(cdf: np.ndarray, lo: np.ndarray, hi: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Inverse-CDF draw inside ``cdf[lo:hi]`` (a cumulative weight array)."""
    base = np.where(lo > 0, cdf[np.maximum(lo - 1, 0)], 0.0)
    target = base + u * (cdf[hi - 1] - base)
    pos = np.searchsorted(cdf, target, side="right")
    return np.clip(pos, lo, hi - 1)


def _sample_distinct(
    rng: np.random.Generator,
    cdf: np.ndarray,
    by_cluster: np.ndarray,
    user: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    need: np.ndarray,
    taken: np.ndarray,
    n_items: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Group ``g`` gets ``need[g]`` items drawn from ``cdf[lo[g]:hi[g]]``
    without replacement, none already in ``taken`` for ``user[g]``.

    Keeping the first new items of an i.i.d. stream of draws is exactly
    weighted sampling without replacement; each round draws twice what a
    group still lacks, so rounds are few and cost what they draw.
    ``taken`` is a sorted array of ``user * n_items + item`` keys. Returns
    (group of each item, item), ``need.sum()`` rows.
    """
    taken = np.sort(taken)
    out_group, out_item = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    have = np.zeros(len(need), np.int64)
    pending = np.flatnonzero(need > 0)
    for _ in range(_MAX_ROUNDS):
        if len(pending) == 0:
            return np.concatenate(out_group), np.concatenate(out_item)
        short = need[pending] - have[pending]
        group = np.repeat(pending, 2 * short + 4)  # grouped, in draw order
        item = by_cluster[_draw(cdf, lo[group], hi[group], rng.random(len(group)))]
        key = user[group] * n_items + item
        pos = np.minimum(np.searchsorted(taken, key), max(len(taken) - 1, 0))
        fresh = taken[pos] != key if len(taken) else np.ones(len(key), bool)
        # First draw of each key only.
        first = np.zeros(len(key), bool)
        first[np.unique(key, return_index=True)[1]] = True
        keep = np.flatnonzero(fresh & first)
        # Rank within the group (draw order); keep what the group lacks.
        g = group[keep]
        starts = np.searchsorted(g, g, side="left")
        lack = np.zeros(len(need), np.int64)
        lack[pending] = short
        keep = keep[np.arange(len(keep)) - starts < lack[g]]
        out_group.append(group[keep])
        out_item.append(item[keep])
        np.add.at(have, group[keep], 1)
        new = np.sort(key[keep])
        taken = np.insert(taken, np.searchsorted(taken, new), new)
        pending = pending[have[pending] < need[pending]]
    raise ConfigError(
        "num_interactions: cannot draw that many distinct user-item pairs; lower it or raise num_items",
        arguments=["num_interactions", "num_items"],
    )


def cluster_words(n_clusters: int) -> list[list[str]]:
    """The invented words each cluster owns: distinct two- or three-syllable words, deterministic."""
    n = len(_SYLLABLES)
    words = [a + b for a in _SYLLABLES for b in _SYLLABLES if a != b]
    words += [a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in _SYLLABLES[: n // 2] if a != b]
    need = n_clusters * WORDS_PER_CLUSTER
    picked = [words[(i * 97) % len(words)] for i in range(need)]  # spread over the list, no repeats (97 ⟂ len)
    return [picked[c * WORDS_PER_CLUSTER : (c + 1) * WORDS_PER_CLUSTER] for c in range(n_clusters)]


def make_titles(item_cluster: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    """One title per item from its cluster's words plus filler (see the module doc), deterministic by ``seed``."""
    rng = np.random.default_rng([seed, 7])  # its own stream: the interactions' draws are untouched
    vocab = np.asarray(cluster_words(n_clusters), dtype=object)  # [clusters, words]
    n = len(item_cluster)
    source = np.where(rng.random((n, TITLE_CLUSTER_WORDS)) < TITLE_NOISE,
                      rng.integers(0, n_clusters, (n, TITLE_CLUSTER_WORDS)), item_cluster[:, None])
    words = vocab[source, rng.integers(0, WORDS_PER_CLUSTER, (n, TITLE_CLUSTER_WORDS))]
    filler = np.asarray(_FILLER, dtype=object)[rng.integers(0, len(_FILLER), (n, 2))]
    filler[rng.random(n) < 0.5, 1] = ""
    parts = np.concatenate([filler[:, :1], words, filler[:, 1:]], axis=1)
    return np.array([" ".join(w for w in row if w).title() for row in parts.tolist()], dtype=str)


def make_synthetic(cfg: SyntheticParams, seed: int) -> RawDataset:
    """A deterministic (given ``seed``) dataset following ``cfg``."""
    n_users, n_items, n = cfg.num_users, cfg.num_items, cfg.num_interactions
    if n > n_users * n_items // 2:
        raise ConfigError(
            f"num_interactions: {n} is more than half of all "
            f"{n_users} x {n_items} user-item pairs; each pair occurs at most once",
            arguments=["num_interactions"],
        )
    if n_items < cfg.num_clusters:
        raise ConfigError(
            f"num_items: {n_items} is fewer than num_clusters={cfg.num_clusters}; every cluster needs items",
            arguments=["num_items", "num_clusters"],
        )
    rng = np.random.default_rng(seed)
    n_clusters = cfg.num_clusters
    # Balanced cluster sizes, randomly assigned.
    user_cluster = rng.permutation(np.arange(n_users) % n_clusters)
    item_cluster = rng.permutation(np.arange(n_items) % n_clusters)
    popularity = (rng.permutation(n_items) + 1.0) ** -cfg.zipf_exponent
    activity = rng.lognormal(0.0, _ACTIVITY_SIGMA, n_users)

    # Items grouped by cluster; one cumulative weight array serves both the
    # global draw (whole range) and the within-cluster draws (a slice).
    by_cluster = np.argsort(item_cluster, kind="stable")
    cdf = np.cumsum(popularity[by_cluster])
    bounds = np.searchsorted(item_cluster[by_cluster], np.arange(n_clusters + 1))

    per_user = rng.multinomial(n, activity / activity.sum())
    if per_user.max() > n_items // 2:
        raise ConfigError(
            f"num_items: {n_items} items are too few for the busiest user's "
            f"{per_user.max()} interactions (at most half the items); raise num_items or "
            "lower num_interactions",
            arguments=["num_items", "num_interactions"],
        )
    # Own-cluster share per user; a user takes at most half of their cluster.
    lo, hi = bounds[user_cluster], bounds[user_cluster + 1]
    own = np.minimum(rng.binomial(per_user, cfg.affinity), (hi - lo) // 2)
    user_idx = np.arange(n_users)
    own_group, own_items = _sample_distinct(
        rng, cdf, by_cluster, user_idx, lo, hi, own,
        np.zeros(0, np.int64), n_items,
    )
    glob_group, glob_items = _sample_distinct(
        rng, cdf, by_cluster, user_idx, np.zeros(n_users, np.int64), np.full(n_users, n_items),
        per_user - own, own_group * n_items + own_items, n_items,
    )
    users = np.concatenate([own_group, glob_group])
    items = np.concatenate([own_items, glob_items])
    timestamp = rng.integers(_T0, _T0 + _SPAN, size=n, dtype=np.int64)
    order = np.lexsort((timestamp, users))
    users, items, timestamp = users[order], items[order], timestamp[order]

    names = np.array([genre_name(k) for k in range(n_clusters)], dtype=str)
    item_numbers = (np.arange(n_items) + 1).astype(str)
    item_genre = names[item_cluster]
    titles = make_titles(item_cluster, n_clusters, seed)
    item_ids = np.char.add("i", item_numbers)
    user_ids = np.char.add("u", (np.arange(n_users) + 1).astype(str))

    interactions = Interactions(user_id=user_ids[users], item_id=item_ids[items], timestamp=timestamp)
    description = (
        f"synthetic (seed {seed}): {n:,} interactions, {len(np.unique(users)):,} users, "
        f"{n_items:,} items, {n_clusters} clusters, affinity {cfg.affinity:g}, "
        f"zipf exponent {cfg.zipf_exponent:g}"
    )
    return RawDataset(
        interactions=interactions,
        items=ItemTable(item_id=item_ids, title=titles, genres=item_genre),
        description=description,
    )
