"""Full-corpus ranking against numpy and TensorFlow oracles."""

import tfrs_irns  # noqa: F401  (pins Keras 2 before TensorFlow)

import numpy as np
import pytest
import scipy.sparse as sp
import tensorflow as tf

from tfrs_irns import topk
from tfrs_irns.errors import DivergedError, UserError
from tfrs_irns.evaluation import ranking
from tfrs_irns.runs.wording import in_config_words


def int_embeddings(rng, rows, dim=2, low=-2, high=3):
    """Small integers: float32 scores are exact, and ties are everywhere."""
    return rng.integers(low, high, (rows, dim)).astype(np.float32)


def oracle_scores(queries, cands, exclude_lists):
    scores = queries.astype(np.float64) @ cands[1:].astype(np.float64).T
    for q, items in enumerate(exclude_lists):
        items = np.asarray(items, int)
        scores[q, items[items > 0] - 1] = -np.inf
    return scores


def oracle_top_k(scores, k):
    n = scores.shape[1]
    out = []
    for row in scores:
        order = np.lexsort((np.arange(n), -row))[: min(k, n)]  # score desc, index asc
        out.append(np.where(row[order] == -np.inf, 0, order + 1))
    return np.array(out).reshape(scores.shape[0], min(k, n))


def oracle_rank(queries, cands, q, t, exclude_items):
    scores = queries[q].astype(np.float64) @ cands[1:].astype(np.float64).T
    own = scores[t - 1]
    j = np.arange(1, cands.shape[0])
    out = np.isin(j, np.asarray(exclude_items, int)) & (j != t)
    better = (scores > own) | ((scores == own) & (j < t))
    return int(np.sum(better & ~out & (j != t)))


def random_case(rng, num_items, num_queries, ints=True):
    cands = int_embeddings(rng, num_items + 1) if ints else rng.standard_normal((num_items + 1, 4))
    queries = int_embeddings(rng, num_queries) if ints else rng.standard_normal((num_queries, 4))
    exclude = [
        rng.choice(num_items + 1, rng.integers(0, num_items // 2 + 1), replace=False) for _ in range(num_queries)
    ]
    return queries.astype(np.float32), cands.astype(np.float32), exclude


DEVICES = ["numpy", "tf"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("ints", [True, False])
@pytest.mark.parametrize("chunk_size", [1, 5, 1024])
def test_top_k_matches_sort_oracle(ints, chunk_size, device):
    rng = np.random.default_rng(chunk_size + 10 * ints)
    for _ in range(10):
        queries, cands, exclude = random_case(rng, int(rng.integers(1, 30)), 7, ints)
        k = int(rng.integers(1, 35))
        expected = oracle_top_k(oracle_scores(queries, cands, [[]] * 7), k)
        idx, _ = ranking.top_k(queries, cands, k, chunk_size=chunk_size, device=device)
        np.testing.assert_array_equal(idx, expected)
        expected = oracle_top_k(oracle_scores(queries, cands, exclude), k)
        idx, scores = ranking.top_k(queries, cands, k, exclude=exclude, chunk_size=chunk_size, device=device)
        np.testing.assert_array_equal(idx, expected)
        assert np.all((idx == 0) == (scores == -np.inf))


def test_top_k_large_catalogue_threshold_path_with_ties_and_skew():
    # n >= 8k makes top_k use the sampled threshold; sorted scores skew the
    # strided sample and integer scores tie across the cut-off.
    rng = np.random.default_rng(3)
    n = 20000
    cands = int_embeddings(rng, n + 1, dim=1, low=-50, high=50)
    cands[1:, 0] = np.sort(cands[1:, 0])
    queries = np.array([[1.0], [-1.0], [0.0], [2.0]], np.float32)
    for k in (1, 10, 37, 100):
        idx, scores = ranking.top_k(queries, cands, k)
        np.testing.assert_array_equal(idx, oracle_top_k(oracle_scores(queries, cands, [[]] * 4), k))
    floats = rng.standard_normal((n + 1, 8)).astype(np.float32)
    q = rng.standard_normal((3, 8)).astype(np.float32)
    idx, _ = ranking.top_k(q, floats, 50)
    np.testing.assert_array_equal(idx, oracle_top_k(oracle_scores(q, floats, [[]] * 3), 50))


def test_top_k_equals_tf_math_top_k_including_ties():
    rng = np.random.default_rng(4)
    queries, cands, _ = random_case(rng, 40, 9, ints=True)
    scores = tf.matmul(queries, cands[1:], transpose_b=True)
    values, indices = tf.math.top_k(scores, k=12)
    idx, got = ranking.top_k(queries, cands, 12, chunk_size=4)
    np.testing.assert_array_equal(idx, indices.numpy() + 1)
    np.testing.assert_array_equal(got, values.numpy())


@pytest.mark.parametrize("device", DEVICES)
def test_k_larger_than_catalogue_is_clipped_and_padded_after_exclusion(device):
    cands = np.array([[9.0], [1.0], [3.0], [2.0]], np.float32)  # row 0 (OOV) scores highest: never ranked
    queries = np.array([[1.0], [1.0]], np.float32)
    idx, scores = ranking.top_k(queries, cands, 10, exclude=[[2], [0]], device=device)
    np.testing.assert_array_equal(idx, [[3, 1, 0], [2, 3, 1]])
    np.testing.assert_array_equal(scores, [[2.0, 1.0, -np.inf], [3.0, 2.0, 1.0]])
    ranks = ranking.target_ranks(queries, cands, np.array([1, 2]), device=device)
    np.testing.assert_array_equal(ranks, [2, 0])
    ranks = ranking.target_ranks(queries, cands, np.array([1, 2]), exclude=[[2], [0]], device=device)
    np.testing.assert_array_equal(ranks, [1, 0])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("chunk_size", [1, 3, 1024])
def test_target_ranks_match_oracle_with_ties_exclusion_and_oov(chunk_size, device):
    rng = np.random.default_rng(5 + chunk_size)
    for _ in range(10):
        num_items, num_queries = int(rng.integers(1, 25)), 6
        queries, cands, exclude = random_case(rng, num_items, num_queries, ints=True)
        rows = rng.integers(0, num_queries, 30)
        targets = rng.integers(0, num_items + 1, 30)
        # Make some targets excluded items: they must still be ranked.
        for j in range(0, 30, 4):
            if len(exclude[rows[j]]):
                targets[j] = exclude[rows[j]][0]
        ranks = ranking.target_ranks(queries, cands, targets, rows, exclude=exclude, chunk_size=chunk_size, device=device)
        for j in range(30):
            if targets[j] == 0:
                assert ranks[j] == ranking.UNRANKABLE
            else:
                assert ranks[j] == oracle_rank(queries, cands, rows[j], targets[j], exclude[rows[j]])


@pytest.mark.parametrize("device", DEVICES)
def test_target_ranks_hand_example_tie_rule(device):
    # Scores for the single query: items 1..5 -> 2, 5, 2, 2, 1.
    cands = np.array([[0], [2], [5], [2], [2], [1]], np.float32)
    q = np.ones((1, 1), np.float32)
    ranks = ranking.target_ranks(q, cands, np.array([2, 1, 3, 4, 5, 0]), np.zeros(6, int), device=device)
    np.testing.assert_array_equal(ranks, [0, 1, 2, 3, 4, ranking.UNRANKABLE])
    # Excluding items 2 and 3 moves the others up; excluded target 3 keeps its place among the rest.
    ranks = ranking.target_ranks(q, cands, np.array([1, 3, 4, 5]), np.zeros(4, int), exclude=[[2, 3]], device=device)
    np.testing.assert_array_equal(ranks, [0, 1, 1, 2])


@pytest.mark.parametrize("device", DEVICES)
def test_rank_below_k_iff_in_top_k(device):
    rng = np.random.default_rng(6)
    queries, cands, exclude = random_case(rng, 30, 8, ints=True)
    rows = np.repeat(np.arange(8), 30)
    targets = np.tile(np.arange(1, 31), 8)
    ranks, idx, _ = ranking.rank_and_top_k(queries, cands, targets, rows, 30, exclude, chunk_size=3, device=device)
    for k in (1, 4, 10, 30):
        top, _ = ranking.top_k(queries, cands, k, exclude=exclude, device=device)
        for r, t, rank in zip(rows, targets, ranks):
            if t in exclude[r]:
                continue
            assert (rank < k) == (t in top[r]), (r, t, rank, k)
        np.testing.assert_array_equal(idx[:, :k], top)


@pytest.mark.parametrize("ints", [True, False])
def test_chunking_and_memory_bound_do_not_change_results(monkeypatch, ints):
    rng = np.random.default_rng(7)
    queries, cands, exclude = random_case(rng, 50, 11, ints=ints)
    rows = rng.integers(0, 11, 40)
    targets = rng.integers(0, 51, 40)

    def check(got):
        # BLAS may round the last bit differently per chunk shape: exact scores
        # (small integers) must match bit for bit, float scores to 1e-5.
        np.testing.assert_array_equal(got[0], base[0])
        np.testing.assert_array_equal(got[1], base[1])
        np.testing.assert_allclose(got[2], base[2], rtol=0, atol=0 if ints else 1e-5)

    base = ranking.rank_and_top_k(queries, cands, targets, rows, 20, exclude, chunk_size=1024)
    for chunk in (1, 2, 4, 10):
        check(ranking.rank_and_top_k(queries, cands, targets, rows, 20, exclude, chunk_size=chunk))
    monkeypatch.setattr(topk, "MAX_CHUNK_BYTES", 4 * 50 * 3)  # at most 3 queries per chunk
    check(ranking.rank_and_top_k(queries, cands, targets, rows, 20, exclude, chunk_size=1024))


def test_exclude_as_sparse_matrix_equals_lists():
    rng = np.random.default_rng(8)
    queries, cands, exclude = random_case(rng, 20, 5, ints=True)
    rows = np.repeat(np.arange(5), [len(e) for e in exclude])
    cols = np.concatenate(exclude).astype(int)
    matrix = sp.csr_matrix((np.ones(cols.size), (rows, cols)), shape=(5, 21))
    a = ranking.rank_and_top_k(queries, cands, np.arange(1, 6), None, 7, exclude)
    b = ranking.rank_and_top_k(queries, cands, np.arange(1, 6), None, 7, matrix)
    c = ranking.rank_and_top_k(queries, cands, np.arange(1, 6), None, 7, sp.csr_array(matrix).tocoo())
    for x, y, z in zip(a, b, c):
        np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(x, z)


def test_bad_inputs_raise_clear_errors():
    q = np.ones((2, 3), np.float32)
    c = np.ones((5, 3), np.float32)
    with pytest.raises(DivergedError, match="query_emb contains NaN or inf values; training probably diverged$") as err:
        ranking.top_k(np.full((2, 3), np.nan), c, 2)
    # A run, which knows the settings, says which one to change.
    assert str(in_config_words(err.value)).endswith("diverged (try a lower train.learning_rate)")
    with pytest.raises(UserError, match="candidate_emb contains NaN or inf"):
        ranking.top_k(q, np.full((5, 3), np.inf), 2)
    with pytest.raises(ValueError, match="dimension 3 but candidate_emb has 2"):
        ranking.top_k(q, np.ones((5, 2)), 2)
    with pytest.raises(ValueError, match=r"exclude has shape \(2, 4\), expected .*\(2, 5\)"):
        ranking.top_k(q, c, 2, exclude=sp.csr_matrix((2, 4)))
    with pytest.raises(ValueError, match=r"excluded items must lie in 0..4"):
        ranking.top_k(q, c, 2, exclude=[[5], []])
    with pytest.raises(ValueError, match=r"target items must lie in 0..4"):
        ranking.target_ranks(q, c, np.array([1, 5]))
    with pytest.raises(ValueError, match="3 targets for 2 queries"):
        ranking.target_ranks(q, c, np.array([1, 2, 3]))
    with pytest.raises(ValueError, match=r"target_rows must lie in 0..1"):
        ranking.target_ranks(q, c, np.array([1, 2]), np.array([0, 2]))
    with pytest.raises(ValueError, match="2-D"):
        ranking.top_k(np.ones(3), c, 2)
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        ranking.top_k(q, c, 2, chunk_size=0)
    with pytest.raises(ValueError, match="device must be one of auto, numpy, tf, got 'gpu'"):
        ranking.top_k(q, c, 2, device="gpu")


def test_a_slow_ranking_reports_progress_per_chunk(monkeypatch):
    import functools
    import io
    import itertools

    from tfrs_irns.data.progress import Progress

    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(10, 4)).astype(np.float32), rng.normal(size=(31, 4)).astype(np.float32)
    expected = ranking.top_k(users, items, k=5)  # the real Progress: quick, so quiet
    out, ticks = io.StringIO(), itertools.count()
    # Every read of the fake clock is 10 s later: each chunk of 4 users is "slow".
    clock = lambda: 10.0 * next(ticks)  # noqa: E731
    monkeypatch.setattr(ranking, "Progress", functools.partial(Progress, out=out, clock=clock))
    got = ranking.top_k(users, items, k=5, chunk_size=4)
    assert [a.tolist() for a in got] == [a.tolist() for a in expected]  # progress changes no answer
    assert out.getvalue().splitlines() == [
        "ranking 30 items... 4 / 10 users (40%), 10 s",
        "ranking 30 items... 8 / 10 users (80%), 20 s",
        "ranking 30 items... 10 / 10 users (100%), 30 s",
        "ranking 30 items: done in 40.0 s",
    ]


@pytest.mark.parametrize("dim", [1, 3])
def test_queries_all_alike_are_ranked_once_with_the_same_answers(dim):
    # Most-popular style: every user the same query, item scores with many ties.
    rng = np.random.default_rng(3)
    items = rng.integers(0, 4, size=(41, dim)).astype(np.float32)
    users = np.repeat(rng.integers(1, 3, size=(1, dim)).astype(np.float32), 7, 0)
    rows = rng.integers(0, 7, 30)
    targets = rng.integers(0, 41, 30)  # some OOV (0)
    ranks, idx, scores = ranking.rank_and_top_k(users, items, targets, rows, k=10)
    for q in range(7):  # one query at a time: the general per-row path
        mine = rows == q
        r1, i1, s1 = ranking.rank_and_top_k(users[:1], items, targets[mine], np.zeros(mine.sum(), np.int64), k=10)
        assert ranks[mine].tolist() == r1.tolist()
        assert idx[q].tolist() == i1[0].tolist() and scores[q].tolist() == s1[0].tolist()


def dyadic(rng, rows, dim):
    """Multiples of 1/8 in [-2, 2]: every dot product is exact in float32 (BLAS
    and TensorFlow agree bit for bit), with negative, zero and tied scores."""
    return (rng.integers(-16, 17, (rows, dim)) / 8).astype(np.float32)


@pytest.mark.parametrize("seed", range(4))
def test_tf_path_equals_numpy_path_on_random_data_with_exclusions(seed):
    # The numpy path is the implementation the package has always used: the
    # oracle. Ties, excluded targets, OOV targets (0), duplicate targets, k
    # above the catalogue and exclusions leaving fewer than k items.
    rng = np.random.default_rng(100 + seed)
    for _ in range(6):
        num_items, num_queries = int(rng.integers(1, 60)), int(rng.integers(1, 12))
        dim = int(rng.integers(1, 5))
        cands, queries = dyadic(rng, num_items + 1, dim), dyadic(rng, num_queries, dim)
        exclude = [rng.choice(num_items + 1, rng.integers(0, num_items + 1), replace=False) for _ in range(num_queries)]
        rows = rng.integers(0, num_queries, 50)
        targets = rng.integers(0, num_items + 1, 50)
        targets[::5] = [exclude[r][0] if len(exclude[r]) else 0 for r in rows[::5]]  # excluded targets
        targets[1::7] = 0  # OOV
        rows, targets = np.concatenate([rows, rows[:8]]), np.concatenate([targets, targets[:8]])  # duplicates
        k = int(rng.integers(0, num_items + 10))
        chunk = int(rng.integers(1, 6))
        want = ranking.rank_and_top_k(queries, cands, targets, rows, k, exclude, chunk_size=chunk, device="numpy")
        got = ranking.rank_and_top_k(queries, cands, targets, rows, k, exclude, chunk_size=chunk, device="tf")
        for a, b in zip(want, got):
            np.testing.assert_array_equal(a, b)
        for j in range(len(targets)):  # and both equal the float64 oracle of the tie rule
            if targets[j]:
                assert want[0][j] == oracle_rank(queries, cands, rows[j], targets[j], exclude[rows[j]])


def test_auto_device_is_numpy_without_a_gpu_and_tf_with_one(monkeypatch):
    assert topk.resolve_device("auto") == ("tf" if topk.gpu_visible() else "numpy")
    monkeypatch.setattr(topk, "gpu_visible", lambda: True)
    assert topk.resolve_device("auto") == "tf"
    monkeypatch.setattr(topk, "gpu_visible", lambda: False)
    assert topk.resolve_device("auto") == "numpy"
