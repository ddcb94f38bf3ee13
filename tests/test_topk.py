"""The ranking primitive: hand examples, both paths against each other, GPU kernels, the serving pieces."""

import tfrs_irns  # noqa: F401,I001  (first: pins Keras 2)

import numpy as np
import pytest
import tensorflow as tf

from tfrs_irns import topk
from gpu_registry import ops_without_gpu_kernel  # noqa: E402  (the registry check of the train step)


def csr(lists):
    ptr = np.concatenate([[0], np.cumsum([len(x) for x in lists])]).astype(np.int64)
    cols = np.concatenate([np.asarray(x, np.int64) for x in lists]) if lists else np.zeros(0, np.int64)
    return topk.Csr(ptr, cols.astype(np.int64))


@pytest.mark.parametrize("device", ["numpy", "tf"])
def test_hand_example_ties_exclusions_and_unrankable(device):
    # One query, scores by column: 0 -> 2, 1 -> 5, 2 -> 2, 3 -> -0.0 (as 0), 4 -> 0, 5 -> -1.
    items = np.array([[2], [5], [2], [-0.0], [0], [-1]], np.float32)
    q = np.ones((1, 1), np.float32)
    cols = np.array([1, 0, 2, 3, 4, 5, -1])
    ranks, top, scores = topk.rank_top_k(q, items, 3, None, np.zeros(7, int), cols, device=device)
    np.testing.assert_array_equal(ranks, [0, 1, 2, 3, 4, 5, topk.UNRANKABLE])
    np.testing.assert_array_equal(top, [[1, 0, 2]])
    np.testing.assert_array_equal(scores, [[5, 2, 2]])
    # Columns 1 and 2 excluded: the others move up; excluded target 2 keeps its own score
    # and is ranked among the rest; k above what is left pads with -1 / -inf.
    ranks, top, scores = topk.rank_top_k(q, items, 6, csr([[1, 2]]), np.zeros(3, int), [0, 2, 4], device=device)
    np.testing.assert_array_equal(ranks, [0, 1, 2])
    np.testing.assert_array_equal(top, [[0, 3, 4, 5, -1, -1]])
    np.testing.assert_array_equal(scores[0, 4:], [-np.inf, -np.inf])


def test_order_keys_sort_as_the_tie_rule():
    rng = np.random.default_rng(0)
    scores = np.concatenate(
        [rng.standard_normal(40), [0.0, 0.0, 1.5, 1.5, -1.5, -1.5, -np.inf, 3e38, -3e38, 1e-42, -1e-42]]
    ).astype(np.float32)
    rng.shuffle(scores)
    cols = np.arange(scores.size)
    keys = topk._order_keys(tf.constant(scores), tf.constant(cols)).numpy()
    np.testing.assert_array_equal(np.argsort(-keys, kind="stable"), np.lexsort((cols, -scores)))


def test_rank_chunk_runs_on_a_gpu_every_op_has_a_gpu_kernel():
    # The registry lists GPU kernels on any machine: the TF path never falls back to the host.
    assert ops_without_gpu_kernel(topk.rank_chunk.get_concrete_function()) == set()


def test_serving_pieces_scan_blocks_like_one_top_k():
    rng = np.random.default_rng(1)
    items = (rng.integers(-8, 9, (37, 3)) / 4).astype(np.float32)  # exact scores, many ties
    q = (rng.integers(-8, 9, (5, 3)) / 4).astype(np.float32)
    exclude = np.array([[0, 5, -1], [36, 36, 2], [-1, -1, -1], [1, 2, 3], [10, 20, 30]], np.int32)
    want_ranks, want_cols, want_scores = topk.rank_top_k(
        q, items, 9, csr([[c for c in row if c >= 0] for row in exclude]), device="numpy"
    )
    for size in (1, 4, 10, 37):
        best = tf.fill([5, 9], float("-inf"))
        cols = tf.fill([5, 9], -1)
        for start in range(0, 37, size):
            block = items[start : start + size]
            v, r = topk.block_top_k(q, block, start, 9, tf.constant(exclude), block.shape[0])
            best, cols = topk.merge_top_k(best, cols, v, r, 9)
        np.testing.assert_array_equal(best.numpy(), want_scores)
        got = np.where(np.isneginf(best.numpy()), -1, cols.numpy())
        np.testing.assert_array_equal(got, want_cols)


def test_chunks_and_fixed_chunk_padding_do_not_change_answers():
    rng = np.random.default_rng(2)
    items = (rng.integers(-8, 9, (50, 4)) / 4).astype(np.float32)
    q = (rng.integers(-8, 9, (11, 4)) / 4).astype(np.float32)
    rows, cols = rng.integers(0, 11, 60), rng.integers(-1, 50, 60)
    exclude = csr([rng.choice(50, rng.integers(0, 10), replace=False) for _ in range(11)])
    base = topk.rank_top_k(q, items, 7, exclude, rows, cols, chunk_size=1024, device="numpy")
    for device in ("numpy", "tf"):
        for chunk in (1, 3, 4, 11):
            got = topk.rank_top_k(q, items, 7, exclude, rows, cols, chunk_size=chunk, device=device)
            for a, b in zip(base, got):
                np.testing.assert_array_equal(a, b)


def test_progress_callback_and_empty_inputs():
    done = []
    items = np.ones((4, 2), np.float32)
    topk.rank_top_k(np.ones((5, 2), np.float32), items, 2, chunk_size=2, on_chunk=done.append, device="numpy")
    assert done == [2, 4, 5]
    ranks, top, scores = topk.rank_top_k(np.ones((0, 2), np.float32), items, 2)
    assert ranks.shape == (0,) and top.shape == (0, 2) and scores.shape == (0, 2)
    ranks, top, _ = topk.rank_top_k(np.ones((2, 2), np.float32), items[:0], 3, None, [0], [-1])
    assert ranks.tolist() == [topk.UNRANKABLE] and top.shape == (2, 0)


def test_bad_arguments_name_themselves():
    q, items = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match=r"queries \(2, 3\) and items \(4, 2\)"):
        topk.rank_top_k(q, items[:, :2], 1)
    with pytest.raises(ValueError, match="k must be >= 0"):
        topk.rank_top_k(q, items, -1)
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        topk.rank_top_k(q, items, 1, chunk_size=0)
    with pytest.raises(ValueError, match="device must be one of auto, numpy, tf"):
        topk.rank_top_k(q, items, 1, device="cuda")
    with pytest.raises(ValueError, match="exclude has 1 rows, expected 2"):
        topk.rank_top_k(q, items, 1, exclude=csr([[1]]))
    with pytest.raises(ValueError, match="target_rows has 2 entries, target_cols 1"):
        topk.rank_top_k(q, items, 1, None, [0, 1], [1])


def _brute_ranks(q, items, exclude_lists, rows, cols):
    """The tie rule, literally: non-excluded columns j != t with s_j > s_t, or s_j == s_t and j < t."""
    scores = (q @ items.T).astype(np.float32)
    out = []
    for r, t in zip(rows, cols):
        if t < 0:
            out.append(topk.UNRANKABLE)
            continue
        s, own = scores[r], scores[r, t]
        beats = [j for j in range(s.size) if j != t and j not in exclude_lists[r] and (s[j] > own or (s[j] == own and j < t))]
        out.append(len(beats))
    return np.array(out, np.int64)


@pytest.mark.parametrize("segment", [1, 5, 64, topk.RANK_SEGMENT])
@pytest.mark.parametrize("k", [0, 3, 40])
def test_numpy_ranks_by_segment_and_from_the_top_k_list_equal_the_tie_rule(monkeypatch, segment, k):
    # Targets inside the row's top-k take their position in the list; the rest are counted
    # segment by segment. Both must give the brute-force rank, ties and exclusions included.
    monkeypatch.setattr(topk, "RANK_SEGMENT", segment)
    rng = np.random.default_rng(segment * 100 + k)
    items = (rng.integers(-4, 5, (40, 3)) / 2).astype(np.float32)  # exact scores, many ties
    q = (rng.integers(-4, 5, (9, 3)) / 2).astype(np.float32)
    exclude_lists = [set(rng.choice(40, rng.integers(0, 8), replace=False).tolist()) for _ in range(9)]
    rows = rng.integers(0, 9, 120)
    cols = rng.integers(-1, 40, 120)
    rows[:9] = np.arange(9)
    cols[:9] = [min(e) if e else 0 for e in exclude_lists]  # excluded targets are still ranked
    ranks, _, _ = topk.rank_top_k(q, items, k, csr([sorted(e) for e in exclude_lists]), rows, cols, device="numpy")
    np.testing.assert_array_equal(ranks, _brute_ranks(q, items, exclude_lists, rows, cols))
