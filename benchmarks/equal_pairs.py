"""The accidental-hit search without ``tf.ragged.range``: what it costs on a CPU.

:func:`tfrs_irns.tasks.kernels.equal_pairs` used to expand its matches with
``tf.ragged.range``, whose ``RaggedRange`` kernel exists for the CPU only (a
GPU step would copy to the host and back). It now expands them with a cumsum
and a binary search, ops with GPU kernels. This script checks that the change
costs nothing measurable where it runs today, on a CPU:

* ``equal_pairs`` alone inside a ``tf.function``, old (ragged, kept below for
  comparison only) against new, at the IRNS shapes: 600 rows (the positives)
  against 600 + 3000 columns (the positives, then the sampled items), keys
  uniform over 10k and over 1M items, and a duplicate-heavy case (100 items:
  ~20k pairs);
* one full IRNS ``mixed`` train step (loss and gradients, B = 600, M = 3000,
  d = 64, ID-embedding towers, 10k items), traced once with each version.

Calls are interleaved (old, new, new, old, ...) so a noisy neighbour slows
both alike; each figure is the median over many calls, including the
``tf.function`` call overhead (printed too, for scale). Compare the ratios,
not absolute times across runs.

    python benchmarks/equal_pairs.py [--json out.json] [--repeats 400] [--steps 40]

Prints a table; with ``--json``, writes a list of rows with the keys
``case``, ``pairs``, ``old_ms``, ``new_ms``, ``ratio`` (new / old).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tfrs_irns  # noqa: E402,F401  (pins Keras 2 before tf.keras)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfrs_irns.tasks import IRNSRetrieval, irns  # noqa: E402
from tfrs_irns.tasks.kernels import equal_pairs  # noqa: E402

B, M, D = 600, 3000, 64
KEY_CASES = [("uniform over 10k items", 10_000), ("uniform over 1M items", 1_000_000), ("duplicates: 100 items", 100)]


def ragged_equal_pairs(row_keys: tf.Tensor, col_keys: tf.Tensor) -> tf.Tensor:
    """The previous implementation (CPU-only ``RaggedRange``), for comparison."""
    order = tf.argsort(col_keys, stable=True)
    sorted_keys = tf.gather(col_keys, order)
    lo = tf.searchsorted(sorted_keys, row_keys, side="left", out_type=tf.int32)
    hi = tf.searchsorted(sorted_keys, row_keys, side="right", out_type=tf.int32)
    ranges = tf.ragged.range(lo, hi)
    rows = tf.cast(ranges.value_rowids(), tf.int32)
    return tf.stack([rows, tf.gather(order, ranges.flat_values)], axis=1)


def interleaved_medians(old: Callable[[], Any], new: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Median seconds per call of ``old`` and ``new``, called alternately
    (the order flipped every round), after a warm-up."""
    for _ in range(3):
        old(), new()
    times: dict[str, list[float]] = {"old": [], "new": []}
    for i in range(repeats):
        pair = [("old", old), ("new", new)]
        for name, fn in pair if i % 2 == 0 else pair[::-1]:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return float(np.median(times["old"])), float(np.median(times["new"]))


def kernel_rows(repeats: int) -> list[dict[str, Any]]:
    spec = [tf.TensorSpec([None], tf.int32)] * 2
    old_fn = tf.function(ragged_equal_pairs, input_signature=spec)
    new_fn = tf.function(equal_pairs, input_signature=spec)
    rng = np.random.default_rng(0)
    rows = []
    for case, num_items in KEY_CASES:
        positives = rng.integers(1, num_items + 1, B).astype(np.int32)
        sampled = rng.integers(1, num_items + 1, M).astype(np.int32)
        row_keys, col_keys = tf.constant(positives), tf.constant(np.concatenate([positives, sampled]))
        old_pairs, new_pairs = old_fn(row_keys, col_keys).numpy(), new_fn(row_keys, col_keys).numpy()
        np.testing.assert_array_equal(old_pairs, new_pairs)  # same pairs, same order
        old, new = interleaved_medians(
            lambda: old_fn(row_keys, col_keys).numpy(), lambda: new_fn(row_keys, col_keys).numpy(), repeats
        )
        rows.append(_row(f"equal_pairs, {case}", len(new_pairs), old, new))
    return rows


def train_step_row(steps: int, num_items: int = 10_000) -> dict[str, Any]:
    """One ``mixed`` loss + gradient step, traced with each ``equal_pairs``."""
    tf.keras.utils.set_random_seed(0)
    candidate_tower, query_tower = tf.keras.layers.Embedding(num_items + 1, D), tf.keras.layers.Embedding(5001, D)
    counts = np.ones(num_items + 1)
    counts[0] = 0
    task = IRNSRetrieval(candidate_tower, num_items, mode="mixed", num_negatives=M,
                         item_probabilities=counts / counts.sum())
    rng = np.random.default_rng(1)
    users = tf.constant(rng.integers(1, 5001, B).astype(np.int32))
    items = tf.constant(rng.integers(1, num_items + 1, B).astype(np.int32))

    candidate_tower.build((None,))
    query_tower.build((None,))

    def step() -> tuple[tf.Tensor, list[Any]]:
        with tf.GradientTape() as tape:
            queries, positives = query_tower(users), candidate_tower(items)
            loss = task(queries, positives, candidate_ids=items, query_ids=users, training=True)
        return loss, tape.gradient(loss, query_tower.trainable_variables + candidate_tower.trainable_variables)

    new_step = tf.function(step)
    new_step.get_concrete_function()
    old_step = tf.function(step)
    irns.equal_pairs = ragged_equal_pairs  # traced with the old search...
    try:
        old_step.get_concrete_function()
    finally:
        irns.equal_pairs = equal_pairs  # ...and only that trace
    old, new = interleaved_medians(lambda: old_step()[0].numpy(), lambda: new_step()[0].numpy(), steps)
    return _row(f"IRNS mixed train step (loss + grad), {num_items // 1000}k items", None, old, new)


def call_overhead(repeats: int) -> float:
    """Median seconds of calling a trivial ``tf.function`` (the floor of every figure)."""
    trivial = tf.function(lambda x: x + 1)
    x = tf.constant(1)
    trivial(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        trivial(x).numpy()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _row(case: str, pairs: Any, old: float, new: float) -> dict[str, Any]:
    return {"case": case, "pairs": pairs, "old_ms": round(old * 1e3, 4), "new_ms": round(new * 1e3, 4),
            "ratio": round(new / old, 3)}


def main(argv: Any = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the rows to this JSON file")
    parser.add_argument("--repeats", type=int, default=400, help="timed calls of each equal_pairs per case")
    parser.add_argument("--steps", type=int, default=40, help="timed train steps of each version")
    args = parser.parse_args(argv)

    rows = kernel_rows(args.repeats) + [train_step_row(args.steps)]
    print(f"{'case':<55} {'pairs':>6} {'old ms':>9} {'new ms':>9} {'new/old':>8}")
    for row in rows:
        pairs = "" if row["pairs"] is None else row["pairs"]
        print(f"{row['case']:<55} {pairs:>6} {row['old_ms']:>9.3f} {row['new_ms']:>9.3f} {row['ratio']:>8.3f}")
    print(f"(tf.function call overhead, a trivial function: {call_overhead(args.repeats) * 1e3:.3f} ms)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
