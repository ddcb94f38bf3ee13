"""The IRNS train step against its floor and against the TFRS way, with and without XLA.

One process, every variant traced first, then timed in interleaved rounds
(each round runs every variant a few times, in turn), so a load spike on the
shared machine slows all of them alike; the figures are medians over all
timed calls and the ratios are taken inside this one run. Compare ratios,
not absolute times across runs.

Variants, all at B = 600 positives, M = 3000 sampled negatives, d = 64 and a
10k-item ID-embedding candidate tower (the queries are a ``[B, d]`` variable,
so every variant has the same inputs):

* ``floor`` — the bare float32 product ``[600, 64] x [64, 3600]`` forward and
  backward (the logits' matmul and the two matmuls of its gradient, with a
  fixed upstream gradient): what no softmax over these columns can beat;
* ``floor+lookup`` — the floor with its 3600 columns gathered from the item
  table and the table's (sparse) gradient: the lookup's cost;
* ``floor+lookup+softmax`` — plus a plain softmax cross-entropy over the
  logits: what is left for ``irns`` to add is the sampling, logQ and the
  accidental-hit mask (the breakdown that says what stands between the step
  and the floor);
* ``irns`` — :class:`~tfrs_irns.tasks.IRNSRetrieval` with its defaults
  (``mixed``, logQ, accidental hits removed): sampling, the negatives'
  lookup, the loss and the gradients of the queries and the item table;
* ``tfrs`` — the TFRS way: ``tfrs.tasks.Retrieval`` over the positives with
  the same 3000 sampled negatives appended and a logQ vector
  (``candidate_sampling_probability``); ``tfrs_hits`` adds its
  ``remove_accidental_hits``.

Each runs as a ``tf.function`` and, when it compiles, with
``jit_compile=True`` (XLA).

    python benchmarks/step.py --json step.json
    python benchmarks/step.py --rounds 5 --calls 10      # quicker, noisier

Targets: ``irns`` <= 2.0x ``floor`` and ``tfrs`` / ``irns`` >= 1.8 (each
compared at the same ``jit_compile``). With ``--json``, a list of rows with
the keys ``variant``, ``jit_compile``, ``step_ms``, ``ratio_to_floor``,
``batch_size``, ``num_negatives``, ``dim``, ``num_items``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import tfrs_irns  # noqa: E402,F401  (first: pins Keras 2 before tf.keras)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_recommenders as tfrs  # noqa: E402

from _report import print_table, write_json  # noqa: E402
from tfrs_irns.tasks import IRNSRetrieval  # noqa: E402
from tfrs_irns.tasks.kernels import log_count  # noqa: E402

B, M, D, N = 600, 3000, 64, 10_000


def build_variants() -> dict[str, Callable[[bool], Callable[[], Any]]]:
    """Each variant's step, as a maker taking ``jit_compile``."""
    tf.keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    items = tf.constant(rng.integers(1, N + 1, B).astype(np.int32))
    queries = tf.Variable(rng.normal(0, 0.1, (B, D)).astype(np.float32))
    columns = tf.Variable(rng.normal(0, 0.1, (B + M, D)).astype(np.float32))
    upstream = tf.constant(rng.normal(0, 1e-3, (B, B + M)).astype(np.float32))
    counts = rng.integers(1, 50, N + 1).astype(np.float64)
    counts[0] = 0
    p = counts / counts.sum()

    def tower() -> tf.keras.layers.Embedding:
        layer = tf.keras.layers.Embedding(N + 1, D)
        layer.build((None,))
        return layer

    irns_tower = tower()
    task = IRNSRetrieval(irns_tower, N, mode="mixed", num_negatives=M, item_probabilities=p)
    tfrs_tower = tower()
    p_table = tf.constant(p, tf.float32)
    tfrs_step = tf.Variable(0, dtype=tf.int64)

    def floor() -> Any:
        with tf.GradientTape() as tape:
            logits = tf.matmul(queries, columns, transpose_b=True)
        return tape.gradient(logits, [queries, columns], output_gradients=upstream)

    def irns() -> Any:
        with tf.GradientTape() as tape:
            loss = task(queries, irns_tower(items), candidate_ids=items, training=True)
        return loss, tape.gradient(loss, [queries, irns_tower.embeddings])

    def tfrs_way(hits: bool) -> Callable[[], Any]:
        retrieval = tfrs.tasks.Retrieval(remove_accidental_hits=hits)

        def step() -> Any:
            seed = tf.stack([tf.constant(0, tf.int64), tfrs_step.read_value()])
            tfrs_step.assign_add(1)
            negatives = tf.random.stateless_uniform([M], seed, minval=1, maxval=N + 1, dtype=tf.int32)
            ids = tf.concat([items, negatives], 0)
            with tf.GradientTape() as tape:
                candidates = tfrs_tower(ids)
                # logQ as a probability: expected copies / (B + M), TFRS's form of log(B p + M q).
                expected = B * tf.gather(p_table, ids) + M / N
                probability = tf.exp(log_count(expected)) / (B + M)
                loss = retrieval(
                    queries, candidates, candidate_sampling_probability=probability,
                    candidate_ids=ids if hits else None, compute_metrics=False,
                )
            return loss, tape.gradient(loss, [queries, tfrs_tower.embeddings])

        return step

    # The breakdown: the floor plus one more piece of the IRNS step at a time, so the
    # differences say what each piece costs (fixed ids: no sampling until ``irns``).
    fixed = tf.constant(np.concatenate([items.numpy(), rng.integers(1, N + 1, M)]).astype(np.int32))
    stage_tower = tower()
    labels = tf.range(B)

    def plus_lookup() -> Any:
        with tf.GradientTape() as tape:
            logits = tf.matmul(queries, stage_tower(fixed), transpose_b=True)
        return tape.gradient(logits, [queries, stage_tower.embeddings], output_gradients=upstream)

    def plus_softmax() -> Any:
        with tf.GradientTape() as tape:
            logits = tf.matmul(queries, stage_tower(fixed), transpose_b=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        return loss, tape.gradient(loss, [queries, stage_tower.embeddings])

    return {
        "floor": floor, "floor+lookup": plus_lookup, "floor+lookup+softmax": plus_softmax,
        "irns": irns, "tfrs": tfrs_way(False), "tfrs_hits": tfrs_way(True),
    }


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    out = fn()
    tf.nest.map_structure(lambda t: t.numpy() if hasattr(t, "numpy") else t, out)
    return time.perf_counter() - start


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", help="write the rows to this file")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per variant per round")
    parser.add_argument("--no-xla", action="store_true", help="only the plain tf.function variants")
    args = parser.parse_args(argv)

    makers = build_variants()
    steps: dict[tuple[str, bool], Callable[[], Any]] = {}
    errors = {}
    for jit in [False] if args.no_xla else [False, True]:
        for name, fn in makers.items():
            step = tf.function(fn, jit_compile=jit)
            try:
                for _ in range(3):  # trace, compile, warm up
                    timed(step)
            except Exception as error:  # noqa: BLE001  (a variant XLA cannot compile is a result)
                errors[(name, jit)] = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"
                continue
            steps[(name, jit)] = step
    times: dict[tuple[str, bool], list[float]] = {key: [] for key in steps}
    for _ in range(args.rounds):
        for key, step in steps.items():
            times[key].extend(timed(step) for _ in range(args.calls))

    rows = []
    for jit in [False] if args.no_xla else [False, True]:
        floor = np.median(times[("floor", jit)]) if ("floor", jit) in times else None
        for name in makers:
            key = (name, jit)
            ms = float(np.median(times[key])) * 1e3 if key in times else None
            rows.append({
                "variant": name, "jit_compile": jit, "step_ms": None if ms is None else round(ms, 3),
                "ratio_to_floor": None if ms is None or floor is None else round(ms / (floor * 1e3), 3),
                "batch_size": B, "num_negatives": M, "dim": D, "num_items": N, "error": errors.get(key),
            })
    print_table(
        f"Step medians, B={B}, M={M}, d={D}, {N} items ({args.rounds} rounds x {args.calls} calls)",
        "| variant | jit_compile | step ms | x floor |", "|---|---|---:|---:|",
        [[r["variant"], str(r["jit_compile"]), "-" if r["step_ms"] is None else f"{r['step_ms']:.2f}",
          "-" if r["ratio_to_floor"] is None else f"{r['ratio_to_floor']:.2f}"] for r in rows],
    )
    for key, error in errors.items():
        print(f"{key[0]} jit_compile={key[1]}: does not run: {error}")
    by = {(r["variant"], r["jit_compile"]): r for r in rows}
    print("\nTargets:")
    for jit in [False] if args.no_xla else [False, True]:
        irns, tfrs_row = by[("irns", jit)], by[("tfrs", jit)]
        if irns["step_ms"] is None:
            print(f"  jit_compile={jit}: irns does not run")
            continue
        speedup = tfrs_row["step_ms"] / irns["step_ms"] if tfrs_row["step_ms"] else float("nan")
        print(f"  jit_compile={jit}: irns {irns['ratio_to_floor']:.2f}x floor (target <= 2.0: "
              f"{'met' if irns['ratio_to_floor'] <= 2.0 else 'MISSED'}); tfrs / irns {speedup:.2f} "
              f"(target >= 1.8: {'met' if speedup >= 1.8 else 'MISSED'})")
    write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
