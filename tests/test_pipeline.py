"""The training pipeline: batches, per-epoch reshuffles, the order hook."""

import numpy as np
import pytest

import tfrs_irns  # noqa: F401
from tfrs_irns.batching.pipeline import TrainPipeline
from tfrs_irns.errors import DataError


def epoch(pipeline):
    return [(b["user"].numpy(), b["item"].numpy()) for b in pipeline.dataset]


def test_each_epoch_is_a_permutation_and_reshuffles():
    users = np.arange(1000, dtype=np.int32)
    p = TrainPipeline(users, users + 7, batch_size=300, seed=3)
    first, second = epoch(p), epoch(p)
    for batches in (first, second):
        assert [len(u) for u, _ in batches] == [300, 300, 300, 100]
        seen = np.concatenate([u for u, _ in batches])
        np.testing.assert_array_equal(np.sort(seen), users)
        for u, i in batches:  # pairs stay together
            np.testing.assert_array_equal(i, u + 7)
    assert not np.array_equal(first[0][0], second[0][0])
    assert p.dataset.cardinality().numpy() == p.steps_per_epoch == 4


@pytest.mark.slow
def test_seeded_orders_repeat_across_pipelines():
    users = np.arange(500, dtype=np.int32)
    a = [epoch(TrainPipeline(users, users, 100, seed=5)) for _ in range(1)][0]
    b = epoch(TrainPipeline(users, users, 100, seed=5))
    c = epoch(TrainPipeline(users, users, 100, seed=6))
    np.testing.assert_array_equal(a[0][0], b[0][0])
    assert not np.array_equal(a[0][0], c[0][0])


def test_drop_remainder():
    users = np.arange(1000, dtype=np.int32)
    p = TrainPipeline(users, users, 300, drop_remainder=True)
    assert [len(u) for u, _ in epoch(p)] == [300, 300, 300]
    assert p.steps_per_epoch == 3


def test_explicit_order_keeps_batches_and_shuffles_their_order():
    users = np.arange(10, dtype=np.int32)
    p = TrainPipeline(users, users, 4, seed=1)
    order = np.array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    p.set_epoch_order(order)
    batches = {tuple(u) for u, _ in epoch(p)}
    assert batches == {(9, 8, 7, 6), (5, 4, 3, 2), (1, 0)}
    p.set_epoch_order(None)
    # Back to random shuffles: over a few epochs the fixed batches do not recur every time.
    assert any({tuple(u) for u, _ in epoch(p)} != batches for _ in range(3))
    with pytest.raises(ValueError, match=r"order must have shape \(10,\)"):
        p.set_epoch_order(np.arange(5))


def test_bad_inputs():
    with pytest.raises(DataError, match="training split is empty"):
        TrainPipeline(np.zeros(0, np.int32), np.zeros(0, np.int32), 10)
    with pytest.raises(DataError, match=r"5 interactions, fewer than one batch of batch_size=10 with drop_remainder"):
        TrainPipeline(np.arange(5), np.arange(5), 10, drop_remainder=True)
    with pytest.raises(ValueError, match="batch_size must be > 0, got 0"):
        TrainPipeline(np.arange(5), np.arange(5), 0)
    TrainPipeline(np.arange(5), np.arange(5), 10)  # fine without drop_remainder


def test_positions_past_2_31_pass_through_and_the_order_is_int64():
    # An extra (e.g. history_position) above 2^31 reaches the batch unchanged, not wrapped.
    users = np.arange(6, dtype=np.int32)
    positions = np.array([2**31 + 1, 2**32, 5, 2**40, 7, 2**31 - 1], np.int64)
    p = TrainPipeline(users, users, 4, seed=0, extras={"history_position": positions})
    got = {}
    for batch in p.dataset:
        assert batch["history_position"].dtype == np.int64
        assert batch["user"].dtype == np.int32
        got.update(zip(batch["user"].numpy().tolist(), batch["history_position"].numpy().tolist()))
    assert got == dict(zip(users.tolist(), positions.tolist()))
    assert p.order_variables["order"].dtype == np.int64
    p.set_epoch_order(np.array([5, 4, 3, 2, 1, 0], np.int64))
    batches = {frozenset(b["user"].numpy().tolist()) for b in p.dataset}
    assert batches == {frozenset({5, 4, 3, 2}), frozenset({1, 0})}
