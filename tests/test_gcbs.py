"""GCBS ordering: graph construction, reordering, batching, edge cases."""

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

import tfrs_irns  # noqa: F401
from tfrs_irns.batching.gcbs import (
    _hard_items,
    _positive_keys,
    cut_into_batches,
    embed_examples,
    estimate_quantile,
    gcbs_order,
    hard_negative_graph,
)
from tfrs_irns.batching.gcbs_diagnostics import compare_orders
from tfrs_irns.batching.params import GcbsParams


def clustered(num_clusters=4, users_per=10, items_per=20, per_user=10, dim=8, seed=0):
    """Users interact only with items of their own cluster; the embeddings put
    clusters apart (one-hot centres, scale 3, small noise)."""
    rng = np.random.default_rng(seed)
    n_users, n_items = num_clusters * users_per, num_clusters * items_per
    user_cluster = np.arange(n_users) // users_per
    item_cluster = np.arange(n_items) // items_per
    users, items = [], []
    for u in range(n_users):
        own = np.flatnonzero(item_cluster == user_cluster[u])
        users += [u + 1] * per_user
        items += list(rng.choice(own, per_user, replace=False) + 1)
    centres = 3.0 * np.eye(num_clusters, dim, dtype=np.float32)
    q = np.zeros((n_users + 1, dim), np.float32)
    c = np.zeros((n_items + 1, dim), np.float32)
    q[1:] = centres[user_cluster] + 0.1 * rng.normal(size=(n_users, dim))
    c[1:] = centres[item_cluster] + 0.1 * rng.normal(size=(n_items, dim))
    return np.array(users, np.int32), np.array(items, np.int32), q, c


def embed(users, items, q, c):
    return embed_examples(users, items, lambda u: q[u], lambda v: c[v])


def random_embeddings(n, n_users, n_items, dim=4, seed=0):
    rng = np.random.default_rng(seed)
    users = rng.integers(1, n_users + 1, n).astype(np.int32)
    items = rng.integers(1, n_items + 1, n).astype(np.int32)
    q = rng.normal(size=(n_users + 1, dim)).astype(np.float32)
    c = rng.normal(size=(n_items + 1, dim)).astype(np.float32)
    return users, items, q, c


def assert_permutation(order, n):
    assert order.shape == (n,)
    np.testing.assert_array_equal(np.sort(order), np.arange(n))


# ------------------------------------------------------------------ schedule


@pytest.mark.parametrize(
    "start, every, due",
    [(2, 1, [2, 3, 4, 5, 6]), (2, 2, [2, 4, 6]), (1, 3, [1, 4]), (0, 3, [3, 6]), (7, 1, [])],
)
def test_is_due_follows_start_and_every(start, every, due):
    assert [e for e in range(1, 7) if GcbsParams(start_epoch=start, every=every).is_due(e)] == due


# ------------------------------------------------------------- embeddings


def test_embed_examples_embeds_each_unique_index_once():
    calls = []

    def fn(ids):
        calls.append(np.array(ids))
        return np.stack([ids, -ids], 1).astype(np.float32)

    emb = embed_examples(np.array([5, 3, 5, 9]), np.array([2, 2, 7, 1]), fn, fn, chunk_size=2)
    np.testing.assert_array_equal(np.concatenate(calls[:2]), [3, 5, 9])
    np.testing.assert_array_equal(emb.queries(np.arange(4))[:, 0], [5, 3, 5, 9])
    np.testing.assert_array_equal(emb.candidates(np.arange(4))[:, 0], [2, 2, 7, 1])
    taken = emb.take(np.array([3, 0]))
    np.testing.assert_array_equal(taken.queries(np.arange(2))[:, 0], [9, 5])


# -------------------------------------------------------------- the graph


def test_hard_items_match_a_numpy_oracle():
    users, items, q, c = random_embeddings(300, 12, 40, seed=1)
    emb = embed(users, items, q, c)
    rows, scores = _hard_items(emb, 7, _positive_keys(emb))
    full = emb.user_vectors @ emb.item_vectors.T
    for u in range(len(emb.user_ids)):
        seen = set(emb.item_row[emb.user_row == u])
        ranked = [i for i in np.argsort(-full[u]) if i not in seen][:7]
        np.testing.assert_array_equal(rows[u], ranked)
        np.testing.assert_allclose(scores[u], full[u, ranked], rtol=1e-5)


def test_hard_items_pad_with_minus_inf_when_a_user_saw_almost_everything():
    users = np.array([1, 1, 1, 2], np.int32)
    items = np.array([1, 2, 3, 1], np.int32)
    emb = embed(users, items, np.ones((3, 2), np.float32), np.ones((4, 2), np.float32))
    rows, scores = _hard_items(emb, 3, _positive_keys(emb))
    assert np.all(np.isneginf(scores[0]))  # user 1 has no non-positive item
    assert np.isfinite(scores[1, :2]).all() and np.isneginf(scores[1, 2])
    assert set(rows[1, :2]) == {1, 2}


def test_quantile_estimate_matches_the_exact_quantile():
    users, items, q, c = random_embeddings(400, 30, 50, seed=2)
    emb = embed(users, items, q, c)
    n = len(emb)
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    ok = (emb.user_row[i] != emb.user_row[j]) & (emb.item_row[i] != emb.item_row[j])
    exact = np.quantile(np.einsum("nd,nd->n", emb.queries(i[ok]), emb.candidates(j[ok])), 0.9)
    est = estimate_quantile(emb, 0.9, np.random.default_rng(0))
    spread = np.std(emb.user_vectors @ emb.item_vectors.T)
    assert abs(est - exact) < 0.05 * spread


def graph_for(emb, **kw):
    return hard_negative_graph(emb, np.random.default_rng(0), GcbsParams(**kw))


def test_no_link_joins_a_user_or_an_item_to_itself_or_a_false_negative():
    users, items, q, c = random_embeddings(500, 15, 30, seed=3)
    users = np.concatenate([users, users[:50]])  # duplicate pairs too
    items = np.concatenate([items, items[:50]])
    emb = embed(users, items, q, c)
    graph, info = graph_for(emb, neighbors=10, links_per_example=5, holder_tries=4)
    rows, cols = graph.nonzero()
    assert rows.size > 0
    assert not np.any(emb.user_row[rows] == emb.user_row[cols])
    assert not np.any(emb.item_row[rows] == emb.item_row[cols])
    positives = set(zip(emb.user_row, emb.item_row))
    # Neither end's item is a positive of the other end's user.
    assert not any((emb.user_row[a], emb.item_row[b]) in positives for a, b in zip(rows, cols))


def test_links_go_to_the_users_hardest_items_with_bounded_degrees():
    users, items, q, c = random_embeddings(600, 20, 60, seed=4)
    emb = embed(users, items, q, c)
    graph, info = graph_for(emb, neighbors=12, links_per_example=4, holder_tries=1)
    assert info.links_per_example == 4
    pool, _ = _hard_items(emb, 12, _positive_keys(emb))
    for s, d in zip(info.src, info.dst):
        assert emb.item_row[d] in pool[emb.user_row[s]]
    assert np.bincount(info.src, minlength=len(emb)).max() <= 4
    # A user's examples share out its pool: the union covers more than k items.
    u = np.bincount(emb.user_row).argmax()
    covered = set(emb.item_row[info.dst[emb.user_row[info.src] == u]])
    assert len(covered) > 4
    # The graph is the symmetrised links.
    forward = sp.csr_matrix((np.ones(info.src.size), (info.src, info.dst)), shape=graph.shape)
    expected = ((forward + forward.T) > 0).astype(int)
    np.testing.assert_array_equal(((graph > 0).astype(int) - expected).toarray(), 0)


def test_a_hub_receives_about_twice_the_links_it_sends():
    # Item 1, held by example 0 only, is everyone else's hardest item.
    rng = np.random.default_rng(7)
    users = np.arange(1, 401, dtype=np.int32)
    items = np.concatenate([[1], rng.integers(2, 50, 399)]).astype(np.int32)
    q = np.ones((401, 2), np.float32)
    c = np.concatenate([[[0, 0], [5, 5]], rng.normal(size=(48, 2))]).astype(np.float32)
    emb = embed(users, items, q, c)
    _, info = graph_for(emb, neighbors=5, links_per_example=3, holder_tries=1)
    indeg = np.bincount(info.dst, minlength=len(emb))
    assert 3 <= indeg[0] <= 12  # thinned from 399 to about 2k = 6


def test_holder_choice_prefers_holders_for_whom_the_link_is_hard_back():
    # Example 0: user 1 with item 1. Item 2 is user 1's only hard item and has
    # two holders: user 2 (who finds item 1 easy) and user 3 (who finds it hard).
    users = np.array([1, 2, 3], np.int32)
    items = np.array([1, 2, 2], np.int32)
    q = np.array([[0, 0], [1, 0], [0, 1], [-1, 0]], np.float32)
    c = np.array([[0, 0], [-1, 0], [1, 0], [0, 0]], np.float32)
    emb = embed(users, items, q, c)
    _, info = graph_for(emb, neighbors=5, links_per_example=1, holder_tries=40)
    assert info.dst[info.src == 0].tolist() == [2]


def test_quantile_threshold_keeps_only_strong_links():
    users, items, q, c = clustered()
    emb = embed(users, items, q, c)
    _, top = graph_for(emb, neighbors=40, links_per_example=8)
    _, strong = graph_for(emb, neighbors=40, links_per_example=8, threshold="quantile", quantile=0.9)
    score = lambda info: np.einsum("nd,nd->n", emb.queries(info.src), emb.candidates(info.dst))  # noqa: E731
    assert np.all(score(strong) > strong.threshold)
    assert score(top).min() < strong.threshold  # topk alone also keeps weak ones here


@pytest.mark.parametrize(
    "argument, value, message",
    [
        ("threshold", "best", r"threshold: expected 'topk' or 'quantile', got 'best'"),
        ("neighbors", 0, r"neighbors: must be > 0, got 0"),
        ("quantile", 1.0, r"quantile: must be in \(0, 1\), got 1\.0"),
        ("links_per_example", 0, r"links_per_example: must be > 0, got 0"),
        ("holder_tries", 0, r"holder_tries: must be > 0, got 0"),
        ("graph", "user_user", r"graph: expected 'user_item' or 'item_item', got 'user_user'"),
    ],
)
def test_bad_arguments_are_named(argument, value, message):
    # gcbs_order and hard_negative_graph take a GcbsParams, which checks itself when built.
    with pytest.raises(ValueError, match=message):
        GcbsParams(**{argument: value})
    with pytest.raises(ValueError, match=message):  # a changed copy is checked too
        dataclasses.replace(GcbsParams(neighbors=10), **{argument: value})


def test_bad_similarity_is_named():
    with pytest.raises(ValueError, match=r"similarity: expected 'dot' or 'cosine', got 'l2'"):
        GcbsParams(similarity="l2")


# ------------------------------------------- options, on hand-checked graphs


def links(emb, batch_size=1, neighbors=1, links_per_example=1, **kw):
    """The directed links of a GCBS order, in example indices."""
    result = gcbs_order(emb, batch_size, GcbsParams(neighbors=neighbors, links_per_example=links_per_example, **kw))
    return set(zip(result.src.tolist(), result.dst.tolist()))


def test_cosine_similarity_links_to_the_best_aligned_item_not_the_longest():
    # Items: 1 = (10, 10) (long), 2 = (1, .1), 3 = (0, -1). Examples:
    # e0 = (user (1, 0), item 3), e1 = (user (0, 1), item 1), e2 = (user (.5, -1), item 2).
    # e0's candidates: item 1 (dot 10, cos .71) and item 2 (dot 1, cos .995):
    # dot links e0 to item 1's holder e1, cosine to item 2's holder e2.
    # e1: item 2 (.1) beats item 3 (-1) -> e2 both ways; e2: item 3 (dot 1,
    # cos .89) beats item 1 (dot -5) -> e0 both ways.
    users, items = np.array([1, 2, 3], np.int32), np.array([3, 1, 2], np.int32)
    q = np.array([[0, 0], [1, 0], [0, 1], [0.5, -1]], np.float32)
    c = np.array([[0, 0], [10, 10], [1, 0.1], [0, -1]], np.float32)
    emb = embed(users, items, q, c)
    assert links(emb) == {(0, 1), (1, 2), (2, 0)}
    assert links(emb, similarity="cosine") == {(0, 2), (1, 2), (2, 0)}


def test_item_item_graph_links_examples_with_close_items_never_one_users():
    # Items 1 = (1, 0), 2 = (.9, .1), 3 = (0, 1), 4 = (.1, .9), 5 = (.05, .95);
    # examples e0..e4 = (u1, 1), (u2, 2), (u3, 3), (u4, 4), (u3, 5).
    # Closest other item: 1 -> 2 (e1), 2 -> 1 (e0), 3 -> 5 (e4: user u3 again,
    # dropped), 4 -> 3 (.9 > .86: e2), 5 -> 3 (e2: u3 again, dropped).
    users = np.array([1, 2, 3, 4, 3], np.int32)
    items = np.array([1, 2, 3, 4, 5], np.int32)
    q = np.zeros((5, 2), np.float32)  # users play no part in item_item
    c = np.array([[0, 0], [1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.05, 0.95]], np.float32)
    emb = embed(users, items, q, c)
    assert links(emb, graph="item_item") == {(0, 1), (1, 0), (3, 2)}


def guard_example():
    # e0 = (user (1, 0), item p = (.5, 0)): user 1 scores its positive .5.
    # Items a = (2, 0) (score 2, above the positive), b = (.4, 0) (.4),
    # c = (.1, 0) (.1), held by e1, e2, e3 (users (0, 1): everything scores 0).
    users, items = np.array([1, 2, 3, 4], np.int32), np.array([1, 2, 3, 4], np.int32)
    q = np.array([[0, 0], [1, 0], [0, 1], [0, 1], [0, 1]], np.float32)
    c = np.array([[0, 0], [0.5, 0], [2, 0], [0.4, 0], [0.1, 0]], np.float32)
    return embed(users, items, q, c)


def test_guard_skips_items_the_user_scores_above_its_positive():
    # Two links per example (so no example receives more than 2k = 4 and none
    # is thinned). user_item, pool of 3: without the guard e0 links to the
    # holders of a and b (e1, e2); with it, e0's share of the pool starts
    # below its positive's .5: b and c (e2, e3).
    emb = guard_example()
    out = lambda **kw: {d for s, d in links(emb, neighbors=3, links_per_example=2, **kw) if s == 0}  # noqa: E731
    assert out() == {1, 2}
    assert out(exclude_above_positive=True) == {2, 3}
    # item_item: p's closest items are a and b (dots 1, .2 > .05): the guard
    # drops the link to a (user 1 scores a at 2 > .5) and keeps b (.4).
    assert out(graph="item_item") == {1, 2}
    assert out(graph="item_item", exclude_above_positive=True) == {2}


def test_guard_binary_search_matches_a_count():
    from tfrs_irns.batching.gcbs import _count_above

    rng = np.random.default_rng(0)
    scores = -np.sort(-rng.normal(size=(7, 9)), axis=1)
    user_row = rng.integers(0, 7, 50)
    own = rng.normal(size=50)
    size = rng.integers(0, 10, 7)[user_row]
    expected = [(scores[u, :k] > o).sum() for u, o, k in zip(user_row, own, size)]
    np.testing.assert_array_equal(_count_above(scores, user_row, own, size), expected)


# ------------------------------------------------------------- the batches


def test_cut_into_batches_shuffles_whole_runs_and_puts_the_short_run_last():
    order = np.arange(23)[::-1].copy()
    out = cut_into_batches(order, 5, np.random.default_rng(0))
    assert_permutation(out, 23)
    position = np.argsort(order)
    for start in range(0, 23, 5):
        run = position[out[start : start + 5]]
        assert np.all(np.diff(run) == 1)  # a contiguous run of the input
    assert len(out[20:]) == 3
    # Over seeds the short run comes from different places.
    shorts = {tuple(cut_into_batches(order, 5, np.random.default_rng(s))[20:]) for s in range(20)}
    assert len(shorts) > 1


def test_gcbs_batches_are_harder_than_random_ones():
    users, items, q, c = clustered()
    emb = embed(users, items, q, c)
    result = gcbs_order(emb, 50, GcbsParams(neighbors=8, links_per_example=4))
    assert_permutation(result.order, len(emb))
    stats = compare_orders(emb, result.order, 50, np.random.default_rng(0), max_batches=8, sample_size=400)
    # Random batches mix 4 clusters (~1/4 of pairs similar, score ~9);
    # GCBS batches should be mostly one cluster.
    assert stats["neg_sim"] > 2.5 * stats["neg_sim_random"]
    assert stats["gap"] < stats["gap_random"] - 0.5


def test_quantile_batches_are_harder_than_random_ones():
    users, items, q, c = clustered()
    emb = embed(users, items, q, c)
    result = gcbs_order(emb, 50, GcbsParams(neighbors=40, threshold="quantile", quantile=0.8))
    stats = compare_orders(emb, result.order, 50, np.random.default_rng(0), max_batches=8, sample_size=400)
    assert stats["neg_sim"] > 2.5 * stats["neg_sim_random"]


def test_order_is_deterministic_under_seed_and_epoch():
    users, items, q, c = clustered()
    emb = embed(users, items, q, c)
    a = gcbs_order(emb, 50, GcbsParams(neighbors=8, seed=3), epoch=2).order
    b = gcbs_order(emb, 50, GcbsParams(neighbors=8, seed=3), epoch=2).order
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, gcbs_order(emb, 50, GcbsParams(neighbors=8, seed=3), epoch=3).order)
    assert not np.array_equal(a, gcbs_order(emb, 50, GcbsParams(neighbors=8, seed=4), epoch=2).order)


# -------------------------------------------------------------- edge cases


@pytest.mark.parametrize("n, batch", [(7, 50), (50, 50), (401, 50), (130, 7)])
def test_any_size_gives_a_permutation(n, batch):
    users, items, q, c = random_embeddings(n, 9, 13, seed=n)
    result = gcbs_order(embed(users, items, q, c), batch, GcbsParams(neighbors=5))
    assert_permutation(result.order, n)


def test_many_components_and_isolated_examples():
    # Clusters share no item and strong quantile: several components plus
    # isolated examples; still one permutation covering every example.
    users, items, q, c = clustered(num_clusters=6, users_per=3, items_per=6, per_user=3)
    emb = embed(users, items, q, c)
    result = gcbs_order(emb, 10, GcbsParams(neighbors=3, threshold="quantile", quantile=0.95, links_per_example=1))
    assert_permutation(result.order, len(emb))
    assert 0 < result.isolated < len(emb)
    graph, _ = graph_for(emb, neighbors=3, links_per_example=1)
    assert connected_components(graph, directed=False)[0] >= 6  # at least one per cluster
    assert_permutation(gcbs_order(emb, 10, GcbsParams(neighbors=3, links_per_example=1)).order, len(emb))


def test_neighbors_beyond_n_and_a_single_item():
    users, items, q, c = random_embeddings(60, 20, 5, seed=5)
    result = gcbs_order(embed(users, items, q, c), 8, GcbsParams(neighbors=10_000))
    assert_permutation(result.order, 60)
    assert result.links_per_example <= 5
    one = gcbs_order(embed(users, np.ones(60, np.int32), q, c), 8, GcbsParams(neighbors=600))
    assert_permutation(one.order, 60)
    assert one.num_links == 0  # the only item is everyone's positive


def test_duplicate_pairs_keep_every_copy():
    users = np.repeat(np.arange(1, 11, dtype=np.int32), 6)
    items = np.tile(np.array([1, 2, 3, 1, 2, 3], np.int32), 10) + (users % 3) * 3
    rng = np.random.default_rng(6)
    q, c = rng.normal(size=(11, 3)).astype(np.float32), rng.normal(size=(13, 3)).astype(np.float32)
    assert_permutation(gcbs_order(embed(users, items, q, c), 7, GcbsParams(neighbors=4)).order, 60)
