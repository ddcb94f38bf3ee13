"""GCBS's approximate hard-item pools (FAISS IVF) against a numpy oracle; the bounds."""

import os
import sys

import numpy as np
import pytest

import tfrs_irns  # noqa: F401
from tfrs_irns.batching import gcbs_ann
from tfrs_irns.batching.gcbs import _positive_keys, embed_examples, gcbs_order, hard_negative_graph
from tfrs_irns.batching.gcbs_ann import PoolBuilder, ann_hard_items, import_faiss, plan_search
from tfrs_irns.batching.gcbs_callback import GCBSCallback
from tfrs_irns.batching.params import GcbsParams
from tfrs_irns.batching.pipeline import TrainPipeline
from tfrs_irns.cli.main import main
from tfrs_irns.errors import UserError

pytest.importorskip("faiss", reason="faiss-cpu is not installed (pip install -e '.[ann]')")


def planted(num_users=400, num_items=3000, clusters=30, per_user=12, dim=16, seed=0):
    """Users and items around ``clusters`` random centres; 80% of a user's
    positives in its own cluster (the structure an IVF index exploits)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    user_cluster, item_cluster = rng.integers(0, clusters, num_users), rng.integers(0, clusters, num_items)
    q = np.zeros((num_users + 1, dim), np.float32)
    c = np.zeros((num_items + 1, dim), np.float32)
    q[1:] = centres[user_cluster] + 0.5 * rng.normal(size=(num_users, dim))
    c[1:] = centres[item_cluster] + 0.5 * rng.normal(size=(num_items, dim))
    users = np.repeat(np.arange(1, num_users + 1), per_user)
    own = rng.random(users.shape[0]) < 0.8
    items = rng.integers(1, num_items + 1, users.shape[0])
    for k in range(clusters):
        pool = np.flatnonzero(item_cluster == k) + 1
        pick = own & (user_cluster[users - 1] == k)
        items[pick] = rng.choice(pool, pick.sum())
    return users.astype(np.int32), items.astype(np.int32), q, c


def embed(users, items, q, c):
    return embed_examples(users, items, lambda u: q[u], lambda v: c[v])


def oracle_pools(emb, k):
    """Each user's k best-scoring non-positive items: every score, then a sort."""
    scores = emb.user_vectors @ emb.item_vectors.T
    scores[emb.user_row, emb.item_row] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :k], np.sort(scores, axis=1)[:, ::-1][:, :k]


def test_ann_pools_recover_the_exact_pools_and_never_hold_a_positive():
    emb = embed(*planted())
    k = 50
    rows, scores, plan = ann_hard_items(emb.user_vectors, emb.item_vectors, k, _positive_keys(emb), seed=0,
                                        nprobe=4)
    assert plan.nprobe == 4 and plan.users == len(emb.user_ids)
    assert plan.nprobe / plan.nlist < 0.1  # a real approximation: under a tenth of the catalogue scanned
    exact, exact_scores = oracle_pools(emb, k)
    recall = np.array([len(set(rows[u]) & set(exact[u])) / k for u in range(len(exact))])
    assert recall.mean() >= 0.9 and np.quantile(recall, 0.1) >= 0.8, (recall.mean(), np.quantile(recall, 0.1))
    # Best first, scores are the model's, no positive in a pool.
    found = rows >= 0
    assert np.all(np.diff(np.where(found, scores, -1e30), axis=1) <= 1e-5)
    full = emb.user_vectors @ emb.item_vectors.T
    users = np.broadcast_to(np.arange(len(rows))[:, None], rows.shape)
    np.testing.assert_allclose(scores[found], full[users[found], rows[found]], rtol=1e-4, atol=1e-4)
    positives = set(zip(emb.user_row.tolist(), emb.item_row.tolist()))
    assert not any((u, i) in positives for u, i in zip(users[found].tolist(), rows[found].tolist()))
    # The hardest item is found for nearly every user.
    assert np.mean(rows[:, 0] == exact[:, 0]) >= 0.9


def test_the_ann_graphs_links_go_to_the_exact_hard_items():
    # What the batches are made of: the item each link points at must be in
    # the source user's exact pool (numpy oracle), as every exact link is.
    emb = embed(*planted(seed=1))
    kw = dict(neighbors=100, links_per_example=8)
    assert plan_search(len(emb.user_ids), len(emb.item_ids), nprobe=8).nlist >= 50  # < 1/6 of the items scanned
    pools = oracle_pools(emb, 100)[0]

    def share_in_exact_pools(info):
        user, item = emb.user_row[info.src], emb.item_row[info.dst]
        return np.mean([item[t] in set(pools[user[t]]) for t in range(user.shape[0])])

    _, exact = hard_negative_graph(emb, np.random.default_rng(0), GcbsParams(**kw))
    _, approx = hard_negative_graph(emb, np.random.default_rng(0), GcbsParams(graph_builder="ann", ann_nprobe=8, **kw))
    assert share_in_exact_pools(exact) == 1.0
    assert share_in_exact_pools(approx) >= 0.9
    assert approx.links_per_example == exact.links_per_example == 8
    assert abs(approx.num_links - exact.num_links) <= 0.1 * exact.num_links


def test_ann_order_is_deterministic_for_a_seed_and_changes_with_it():
    emb = embed(*planted(num_users=200, seed=2))
    ann = dict(neighbors=60, graph_builder="ann", ann_nprobe=3)
    first = gcbs_order(emb, 64, GcbsParams(seed=3, **ann), epoch=2)
    again = gcbs_order(emb, 64, GcbsParams(seed=3, **ann), epoch=2)
    other = gcbs_order(emb, 64, GcbsParams(seed=4, **ann), epoch=2)
    np.testing.assert_array_equal(first.order, again.order)
    np.testing.assert_array_equal(first.src, again.src)
    np.testing.assert_array_equal(first.dst, again.dst)
    assert not np.array_equal(first.order, other.order)
    np.testing.assert_array_equal(np.sort(first.order), np.arange(len(emb)))


def test_auto_keeps_the_exact_order_on_small_data():
    emb = embed(*planted(num_users=100, num_items=500, seed=3))
    assert not PoolBuilder().uses_ann(len(emb.user_ids), len(emb.item_ids))
    before = gcbs_order(emb, 64, GcbsParams(seed=1, graph_builder="exact"), epoch=2)
    auto = gcbs_order(emb, 64, GcbsParams(seed=1, graph_builder="auto"), epoch=2)
    np.testing.assert_array_equal(before.order, auto.order)
    np.testing.assert_array_equal(before.dst, auto.dst)


def test_auto_switches_to_ann_above_the_exact_budget():
    assert PoolBuilder("auto").uses_ann(1 << 14, 1 << 15)  # 2^29 pairs > 2^28
    assert not PoolBuilder("auto").uses_ann(1 << 14, 1 << 14)
    assert not PoolBuilder("exact").uses_ann(1 << 20, 1 << 20)
    assert PoolBuilder("ann").uses_ann(2, 2)


def test_plan_search_follows_the_documented_formula():
    # 10k users, 40k items: nlist 4 * sqrt(40k) = 800 cells of 50 items.
    full = plan_search(10_000, 40_000, nprobe=32, max_scored_pairs=10**12)
    assert full == (800, 32, 10_000, 10_000 * (800 + 32 * 50))
    # Under a tighter budget nprobe drops first ...
    fewer = plan_search(10_000, 40_000, nprobe=32, max_scored_pairs=10_000 * (800 + 10 * 50))
    assert fewer == (800, 10, 10_000, 10_000 * (800 + 10 * 50))
    # ... then users are sampled, one cell each.
    sampled = plan_search(10_000, 40_000, nprobe=32, max_scored_pairs=1_000 * 850)
    assert sampled == (800, 1, 1_000, 1_000 * 850)
    # Small catalogues: at least 39 items per cell, at least one cell.
    assert plan_search(10, 200).nlist == 5 and plan_search(10, 20).nlist == 1


def test_the_scored_pairs_bound_samples_users_deterministically():
    emb = embed(*planted(num_users=300, seed=4))
    positives = _positive_keys(emb)
    cells = plan_search(300, len(emb.item_ids)).nlist
    per_user = cells + -(-len(emb.item_ids) // cells)
    budget = 100 * per_user  # 100 of 300 users, one cell each
    rows, scores, plan = ann_hard_items(emb.user_vectors, emb.item_vectors, 20, positives, seed=5,
                                        max_scored_pairs=budget)
    assert plan.nprobe == 1 and plan.users == 100 and plan.scored_pairs <= budget
    searched = rows[:, 0] >= 0
    assert searched.sum() == 100  # the others have empty pools (their examples stay unlinked)
    assert np.all(np.isneginf(scores[~searched]))
    again, _, _ = ann_hard_items(emb.user_vectors, emb.item_vectors, 20, positives, seed=5, max_scored_pairs=budget)
    np.testing.assert_array_equal(rows, again)


def test_max_links_caps_the_graph():
    emb = embed(*planted(num_users=100, num_items=500, seed=5))
    n = len(emb)  # 1200 examples
    _, info = hard_negative_graph(
        emb, np.random.default_rng(0), GcbsParams(neighbors=30, links_per_example=16, max_links=3 * n + 7)
    )
    assert info.links_per_example == 3 and info.num_links <= 3 * n
    # Incoming links are thinned to twice the links asked for (16), not twice
    # the 3 sent: a cut in memory must not unlink most examples.
    assert np.bincount(info.dst, minlength=n).max() > 2 * 3
    assert info.num_links >= 0.95 * 3 * n
    _, tiny = hard_negative_graph(emb, np.random.default_rng(0), GcbsParams(neighbors=30, max_links=1))
    assert tiny.links_per_example == 1  # never fewer than one link per example


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(graph_builder="fast"), r"graph_builder: expected one of 'auto', 'exact', 'ann', got 'fast'"),
        (dict(ann_nlist=-1), r"ann_nlist: must be >= 0, got -1"),
        (dict(ann_nprobe=0), r"ann_nprobe: must be > 0, got 0"),
        (dict(max_scored_pairs=0), r"max_scored_pairs: must be > 0, got 0"),
        (dict(max_links=0), r"max_links: must be > 0, got 0"),
    ],
)
def test_bad_builder_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GcbsParams(**kwargs)


def test_missing_faiss_is_one_line_naming_the_key(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(UserError) as raised:
        import_faiss()
    assert "\n" not in str(raised.value) and "graph_builder='exact'" in str(raised.value)
    users, items = np.array([1, 2, 3], np.int32), np.array([1, 2, 3], np.int32)
    with pytest.raises(UserError, match="needs faiss"):
        GCBSCallback(TrainPipeline(users, items, 2), params=GcbsParams(graph_builder="ann"))
    GCBSCallback(TrainPipeline(users, items, 2), params=GcbsParams(graph_builder="auto"))  # auto on small data needs no faiss


def test_train_with_ann_but_without_faiss_stops_before_the_run_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)
    code = main(["train", "--config", "configs/quickstart.yaml", "--output", str(tmp_path / "run"),
                 "--set", "batching.strategy=gcbs", "--set", "batching.gcbs.graph_builder=ann"])
    err = capsys.readouterr().err
    assert code == 2 and "batching.gcbs.graph_builder: ann needs faiss" in err
    assert err.count("\n") == 1
    assert not os.path.exists(tmp_path / "run")


def test_callback_passes_its_builder_to_the_order(monkeypatch):
    seen = {}
    real = gcbs_ann.ann_hard_items

    def spy(*args, **kwargs):
        seen["args"] = args
        return real(*args, **kwargs)

    import tfrs_irns.batching.gcbs as gcbs_module

    monkeypatch.setattr(gcbs_module, "ann_hard_items", spy)
    users, items, q, c = planted(num_users=50, num_items=400, seed=6)
    callback = GCBSCallback(TrainPipeline(users, items, 32), (lambda u: q[u.numpy()], lambda v: c[v.numpy()]),
                            GcbsParams(graph_builder="ann", ann_nlist=5, ann_nprobe=2, max_scored_pairs=10**6,
                                       max_links=1000))
    order, stats = callback.order_for(2)
    assert seen["args"][5:] == (5, 2, 10**6)
    assert stats["gcbs_links_per_example"] == 1  # 1000 links over 600 examples
    np.testing.assert_array_equal(np.sort(order), np.arange(len(users)))
