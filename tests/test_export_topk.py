"""The serving scan: blocked top-k equals a numpy top-k at any block size; bfloat16 recall."""

import json
import os

import numpy as np
import pytest

import tfrs_irns  # noqa: F401
import tensorflow as tf

from gpu_registry import ops_without_gpu_kernel  # noqa: E402
from tfrs_irns.export.saved_model import METADATA_FILE, RetrievalModule, export_embeddings

NUM_USERS, NUM_ITEMS, DIM = 6, 23, 4


def _files(tmp_path, num_users, num_items):
    users, items = tmp_path / "users.txt", tmp_path / "items.tsv"
    users.write_text("".join(f"u{i}\n" for i in range(1, num_users + 1)))
    items.write_text("".join(f"i{i}\t\n" for i in range(1, num_items + 1)))
    return str(users), str(items)


def _oracle(scores, k, exclude_rows=()):
    """numpy top-k: by score, ties to the lower item row (a stable sort)."""
    s = scores.astype(np.float64).copy()
    s[list(exclude_rows)] = -np.inf
    order = np.argsort(-s, kind="stable")[:k]
    return s[order], order


@pytest.fixture(scope="module")
def tied_embeddings():
    # Small integers: many exactly equal scores, so the tie order is tested too.
    rng = np.random.default_rng(0)
    users = rng.integers(-2, 3, (NUM_USERS + 1, DIM)).astype(np.float32)
    items = rng.integers(-2, 3, (NUM_ITEMS + 1, DIM)).astype(np.float32)
    return users, items


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 10, 22, 23, 1000])
def test_blocked_top_k_equals_numpy_with_ties_and_exclusions(tmp_path, tied_embeddings, chunk_size):
    users, items = tied_embeddings
    module = RetrievalModule(users, items, *_files(tmp_path, NUM_USERS, NUM_ITEMS), k=10, chunk_size=chunk_size)
    user_ids = tf.constant([f"u{u}" for u in range(1, NUM_USERS + 1)])
    scores = users[1:] @ items[1:].T
    assert len(np.unique(scores[0])) < NUM_ITEMS  # there are ties
    out = module.serving_default(user_ids)
    # The static k stays in the signature (clients and recommend read it).
    assert module.serving_default.get_concrete_function().structured_outputs["item_ids"].shape.as_list() == [None, 10]
    for b in range(NUM_USERS):
        want_scores, want_rows = _oracle(scores[b], 10)
        assert out["item_ids"][b].numpy().astype(str).tolist() == [f"i{r + 1}" for r in want_rows]
        np.testing.assert_array_equal(out["scores"][b].numpy(), want_scores)
    # Exclusions, and a k that leaves fewer items than asked: '' and -inf pad.
    excluded = [["i1", "i5", "", "i23"], ["nope", "i2", "i2", ""]] + [[""] * 4] * (NUM_USERS - 2)
    for k in (5, NUM_ITEMS):
        got = module.recommend_k_excluding(user_ids, tf.constant(k), tf.constant(excluded))
        for b in range(NUM_USERS):
            rows = [int(i[1:]) - 1 for i in excluded[b] if i.startswith("i")]
            want_scores, want_rows = _oracle(scores[b], k, rows)
            want_ids = [f"i{r + 1}" if np.isfinite(v) else "" for v, r in zip(want_scores, want_rows)]
            assert got["item_ids"][b].numpy().astype(str).tolist() == want_ids
            np.testing.assert_array_equal(got["scores"][b].numpy(), want_scores.astype(np.float32))


@pytest.mark.parametrize("chunk_size", [4, 23])
def test_candidate_embedding_reads_blocks_and_rest(tmp_path, tied_embeddings, chunk_size):
    users, items = tied_embeddings
    module = RetrievalModule(users, items, *_files(tmp_path, NUM_USERS, NUM_ITEMS), k=5, chunk_size=chunk_size)
    out = module.candidate_embedding(tf.constant(["i1", "i4", "i5", "i21", "i23", "unknown"]))
    np.testing.assert_array_equal(out["embedding"].numpy(), items[[1, 4, 5, 21, 23, 0]])


@pytest.mark.slow
def test_bfloat16_table_recall_and_export(tmp_path):
    rng = np.random.default_rng(1)
    n, d, k = 3000, 32, 100
    users = rng.standard_normal((51, d)).astype(np.float32)
    items = rng.standard_normal((n + 1, d)).astype(np.float32)
    files = _files(tmp_path, 50, n)
    module = RetrievalModule(users, items, *files, k=k, chunk_size=1024, precision="bfloat16")
    got = module.serving_default(tf.constant([f"u{u}" for u in range(1, 51)]))["item_ids"].numpy().astype(str)
    exact = np.argsort(-(users[1:] @ items[1:].T), axis=1)[:, :k] + 1
    recall = np.mean([len(set(g) & {f"i{r}" for r in e}) / k for g, e in zip(got, exact)])
    # bfloat16 keeps 8 bits of mantissa: only near-ties at the k-th place swap.
    assert recall >= 0.95, recall
    assert module.item_blocks.dtype == tf.bfloat16
    path = export_embeddings(users, items, [f"u{u}" for u in range(1, 51)], [f"i{i}" for i in range(1, n + 1)],
                             base_dir=str(tmp_path / "saved"), name="bf16", k=10, precision="bfloat16")
    assert json.load(open(os.path.join(path, METADATA_FILE)))["precision"] == "bfloat16"
    loaded = tf.saved_model.load(path).signatures["serving_default"]
    assert loaded(user_id=tf.constant(["u1"]))["item_ids"].shape == (1, 10)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_every_signature_scans_on_the_gpu_only_the_id_lookups_stay_on_the_host(tmp_path, precision):
    # The string <-> index tables at the edges are host ops by nature; everything between them
    # (scores, exclusion mask, top-k merge) must have a GPU kernel, in both precisions.
    rng = np.random.default_rng(0)
    users, items = rng.standard_normal((11, 8)).astype(np.float32), rng.standard_normal((41, 8)).astype(np.float32)
    module = RetrievalModule(users, items, *_files(tmp_path, 10, 40), k=5, precision=precision)
    checked = 0
    for name in ("serving_default", "recommend_k", "recommend_k_excluding", "query_embedding"):
        left = {op for op in ops_without_gpu_kernel(getattr(module, name).get_concrete_function()) if "string" not in op}
        assert left == set(), (name, left)
        checked += 1
    assert checked == 4


def test_bad_precision_and_chunk_size_name_the_argument(tmp_path, tied_embeddings):
    users, items = tied_embeddings
    files = _files(tmp_path, NUM_USERS, NUM_ITEMS)
    with pytest.raises(ValueError, match="precision must be one of float32, bfloat16"):
        RetrievalModule(users, items, *files, k=5, precision="float16")
    with pytest.raises(ValueError, match="chunk_size must be > 0"):
        RetrievalModule(users, items, *files, k=5, chunk_size=0)
