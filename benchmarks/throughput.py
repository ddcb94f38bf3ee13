"""Training throughput of the negative-sampling modes, and what they cost.

Measures training examples/s of one compiled train step (the function
``model.fit`` runs) for ``in_batch``, ``mixed`` (IRNS, M = 3000), ``random``,
``full`` and, for comparison only, the naive per-positive layout (every
positive gets its own M negatives: B x M = 1.8M embedded items per step), at
B = 600, d = 64, ID-embedding towers and catalogues of 10k, 100k and 1M items.
Each variant runs in its own subprocess so its peak RSS is its own; the step
time is the median over timed steps after warm-up. The machine is shared, and
other jobs only ever slow a run down, so the cheap modes run in two rounds
(separate subprocesses, the second in reverse order) and the round with the
lower median is kept; the table also shows the quietest 5-step stretch.
Compare ratios from one run, not absolute numbers across runs.

    python benchmarks/throughput.py --quick          # the full grid, < 5 min
    python benchmarks/throughput.py --json out.json --plot out.png

Beside the grid (float32, one device), ``mixed`` at 10k items also runs in
``mixed_bfloat16`` (the towers and the logit matmul in bf16, the loss in
float32) and on ``mirrored`` over 2 logical CPUs (the same 2 cores split in
two: this shows the collective's overhead, not a speed-up).

    python benchmarks/throughput.py --modes mixed --items 10000   # just those three

Prints a table and the targets (mixed >= 40k examples/s at 10k items; mixed at
1M <= 1.3x its time at 10k; naive >= 30x slower than mixed; mixed <= 3.5x
in_batch; mixed peak RSS <= 1.5 GB; mixed_bfloat16 step <= 0.75x float32),
writes a PNG plot and, with ``--json``, a list of rows with the keys
``mode``, ``num_items``, ``batch_size``, ``num_negatives``, ``precision``,
``strategy``, ``examples_per_second``, ``step_ms``, ``peak_rss_mb``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
MODES = ["in_batch", "mixed", "random", "full", "naive"]
CATALOGUES = [10_000, 100_000, 1_000_000]
KEYS = [
    "mode", "num_items", "batch_size", "num_negatives", "precision", "strategy", "examples_per_second", "step_ms",
    "peak_rss_mb",
]
# (mode, items, precision, strategy) measured beside the float32 one-device grid.
EXTRA = [("mixed", 10_000, "mixed_bfloat16", "one_device"), ("mixed", 10_000, "float32", "mirrored")]


# ------------------------------------------------------------------ worker


def worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Build, warm up and time one variant; runs in its own process."""
    sys.path.insert(0, str(ROOT))
    import resource

    import tfrs_irns  # noqa: F401  (pins Keras 2 before tf.keras)
    import numpy as np
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    from tfrs_irns.tasks import IRNSRetrieval

    mode, n, b, m, d = spec["mode"], spec["num_items"], spec["batch_size"], spec["num_negatives"], spec["dim"]
    num_users = spec["num_users"]
    precision, strategy_name = spec.get("precision", "float32"), spec.get("strategy", "one_device")
    if strategy_name == "mirrored":  # before TF initialises its devices
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = tf.distribute.MirroredStrategy([dev.name for dev in tf.config.list_logical_devices("CPU")])
    else:
        strategy = tf.distribute.get_strategy()
    tf.keras.utils.set_random_seed(0)
    scope = strategy.scope()
    scope.__enter__()
    tf.keras.mixed_precision.set_global_policy(precision)  # the towers' policy; the task is float32 itself
    try:  # the package's towers when they exist (an ID embedding each here)
        from tfrs_irns.layers.towers import CandidateTower, QueryTower

        query_tower, candidate_tower = QueryTower(num_users + 1, d), CandidateTower(n + 1, d)
    except ImportError:
        query_tower, candidate_tower = tf.keras.layers.Embedding(num_users + 1, d), tf.keras.layers.Embedding(n + 1, d)

    counts = np.ones(n + 1)
    counts[0] = 0
    if mode == "naive":
        task: tf.keras.layers.Layer = NaivePerPositive(candidate_tower, n, m)
    else:
        task = IRNSRetrieval(
            candidate_tower, n, mode=mode, num_negatives=m, item_probabilities=counts / counts.sum(),
            full_max_items=max(n, 200_000), cross_replica=strategy.num_replicas_in_sync > 1,
        )

    class Model(tfrs.models.Model):
        def __init__(self) -> None:
            super().__init__()
            self.query_tower, self.candidate_tower, self.task = query_tower, candidate_tower, task

        def compute_loss(self, features: dict[str, tf.Tensor], training: bool = False) -> tf.Tensor:
            q = self.query_tower(features["user"], training=training)
            c = self.candidate_tower(features["item"], training=training)
            return self.task(q, c, candidate_ids=features["item"], query_ids=features["user"], training=training)

    model = Model()
    # Adagrad (the package default) updates only the rows a step touched;
    # Adam would rewrite every row of a 1M-item table every step.
    model.compile(optimizer=tf.keras.optimizers.Adagrad(0.1, initial_accumulator_value=1e-6))
    tf.keras.mixed_precision.set_global_policy("float32")
    scope.__exit__(None, None, None)
    rng = np.random.default_rng(0)
    batches = {
        "user": rng.integers(1, num_users + 1, (32, b)).astype(np.int32),
        "item": rng.integers(1, n + 1, (32, b)).astype(np.int32),
    }
    dataset = tf.data.Dataset.from_tensor_slices(batches).repeat().prefetch(2)
    data = iter(strategy.experimental_distribute_dataset(dataset) if strategy_name == "mirrored" else dataset)
    train_step = model.make_train_function()

    for _ in range(spec["warmup"]):
        train_step(data)["loss"].numpy()
    times = []
    for _ in range(spec["steps"]):
        start = time.perf_counter()
        train_step(data)["loss"].numpy()
        times.append(time.perf_counter() - start)
    step = float(np.median(times))
    # The quietest stretch: min over blocks of 5 steps of the block median.
    blocks = [np.median(times[i : i + 5]) for i in range(0, max(len(times) - 4, 1), 5)]
    return {
        "quiet_ms": round(float(min(blocks)) * 1000, 2),
        "mode": mode,
        "num_items": n,
        "batch_size": b,
        "num_negatives": 0 if mode in ("in_batch", "full") else m,
        "precision": precision,
        "strategy": strategy_name,
        "examples_per_second": round(b / step, 1),
        "step_ms": round(step * 1000, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _naive_task_class():
    import tensorflow as tf

    class NaivePerPositive(tf.keras.layers.Layer):
        """The per-positive reading, for comparison only: row i gets its own
        M negatives, so a step embeds B x M items ([B, M, d] activations)."""

        def __init__(self, candidate_tower: Any, num_items: int, num_negatives: int) -> None:
            super().__init__()
            self.candidate_tower, self.num_items, self.num_negatives = candidate_tower, num_items, num_negatives
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False)

        def call(self, query, positives, candidate_ids=None, query_ids=None, training=None):
            seed = tf.stack([tf.constant(0, tf.int64), self.step.assign_add(1)])
            rows = tf.shape(query)[0]
            ids = tf.random.stateless_uniform(
                [rows, self.num_negatives], seed, minval=1, maxval=self.num_items + 1, dtype=tf.int32
            )
            negatives = self.candidate_tower(ids, training=training)  # [B, M, d]
            logits = tf.concat(
                [tf.reduce_sum(query * positives, 1, keepdims=True), tf.einsum("bd,bmd->bm", query, negatives)], 1
            )
            return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(tf.zeros([rows], tf.int32), logits))

    return NaivePerPositive


def NaivePerPositive(*args: Any) -> Any:  # noqa: N802  (a lazily built class)
    return _naive_task_class()(*args)


# ------------------------------------------------------------------ driver


def run_variant(spec: dict[str, Any], timeout: float) -> Optional[dict[str, Any]]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        capture_output=True, text=True, timeout=timeout, env=env,
    )
    if proc.returncode != 0:
        print(f"  {_label(spec)} at {spec['num_items']:,} items failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _label(row: dict[str, Any]) -> str:
    """The mode, with the precision and strategy when not the defaults."""
    extra = [v for v in (row.get("precision"), row.get("strategy")) if v not in (None, "float32", "one_device")]
    return "+".join([row["mode"], *extra])


def grid(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[str]]:
    """Every (catalogue, mode) in its own subprocess; the cheap modes in
    ``args.rounds`` rounds (the later ones in reverse order), keeping the
    round with the lower median: other jobs on a shared CPU only ever slow a
    round down."""
    best: dict[tuple[str, int], dict[str, Any]] = {}
    notes: list[str] = []
    steps, warmup = (40, 5) if args.quick else (100, 10)
    jobs = [(n, mode, "float32", "one_device") for n in args.items for mode in args.modes]
    jobs += [(n, mode, p, st) for mode, n, p, st in EXTRA if mode in args.modes and n in args.items]
    for round_ in range(args.rounds):
        order = jobs if round_ % 2 == 0 else jobs[::-1]
        for n, mode, precision, strategy in order:
            if round_ > 0 and mode in ("full", "naive"):  # seconds per step: one round is plenty
                continue
            if mode == "full" and n > args.full_max_items:
                if round_ == 0:
                    notes.append(
                        f"full at {n:,} items skipped: above full_max_items={args.full_max_items:,} "
                        f"(its [B, N] logits alone are {args.batch_size * n * 4 / 2**30:.1f} GiB per step)"
                    )
                continue
            spec = {
                "mode": mode, "num_items": n, "batch_size": args.batch_size, "num_negatives": args.num_negatives,
                "dim": args.dim, "num_users": args.num_users, "steps": steps, "warmup": warmup,
                "precision": precision, "strategy": strategy,
            }
            if mode == "naive":  # seconds per step: a few steps say enough
                spec.update(steps=2 if args.quick else 5, warmup=1)
            if mode == "full":
                spec.update(steps=6 if args.quick else 20, warmup=2)
            start = time.perf_counter()
            row = run_variant(spec, timeout=args.timeout)
            if row is None:
                notes.append(f"{_label(spec)} at {n:,} items failed in round {round_ + 1} (see stderr)")
                continue
            print(
                f"  round {round_ + 1} {_label(spec):24s} {n:>9,} items: {row['step_ms']:9.1f} ms/step "
                f"(quietest {row['quiet_ms']:.1f}) {row['examples_per_second']:>10,.0f} ex/s "
                f"{row['peak_rss_mb']:>8,.0f} MB  ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )
            key = (mode, n, precision, strategy)
            if key in best:
                row["peak_rss_mb"] = max(row["peak_rss_mb"], best[key]["peak_rss_mb"])
                if best[key]["step_ms"] <= row["step_ms"]:
                    best[key]["peak_rss_mb"] = row["peak_rss_mb"]
                    continue
            best[key] = row
    rows = [best[(mode, n, p, st)] for n, mode, p, st in jobs if (mode, n, p, st) in best]
    return rows, notes


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| mode | items | B | M | examples/s | step ms (median) | quietest 5 steps ms | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {_label(r)} | {r['num_items']:,} | {r['batch_size']} | {r['num_negatives']} | "
            f"{r['examples_per_second']:,.0f} | {r['step_ms']:.1f} | {r['quiet_ms']:.1f} | {r['peak_rss_mb']:,.0f} |"
        )
    return "\n".join(lines)


def targets(rows: list[dict[str, Any]]) -> list[str]:
    def get(mode: str, n: int, precision: str = "float32", strategy: str = "one_device") -> Optional[dict[str, Any]]:
        return next(
            (
                r for r in rows if r["mode"] == mode and r["num_items"] == n
                and r.get("precision", "float32") == precision and r.get("strategy", "one_device") == strategy
            ),
            None,
        )

    out = []

    def check(name: str, value: Optional[float], limit: float, higher: bool, unit: str = "") -> None:
        if value is None:
            out.append(f"  {name}: not measured")
            return
        ok = value >= limit if higher else value <= limit
        bound = f"{'>=' if higher else '<='} {limit:,}{unit}"
        out.append(f"  [{'PASS' if ok else 'MISS'}] {name}: {value:,.2f}{unit} ({bound})")

    small = min(CATALOGUES)
    mixed_small, mixed_big = get("mixed", small), get("mixed", max(CATALOGUES))
    check("mixed examples/s at 10k items", mixed_small and mixed_small["examples_per_second"], 40_000, True)
    check(
        "mixed step time at 1M / at 10k",
        mixed_small and mixed_big and mixed_big["step_ms"] / mixed_small["step_ms"], 1.3, False, "x",
    )
    def ratios(slow: str, fast: str) -> list[float]:
        pairs = [(get(slow, n), get(fast, n)) for n in CATALOGUES]
        return [s["step_ms"] / f["step_ms"] for s, f in pairs if s and f]

    naive = ratios("naive", "mixed")
    check("naive step time / mixed (smallest over catalogues)", min(naive) if naive else None, 30, True, "x")
    in_batch = ratios("mixed", "in_batch")
    check("mixed step time / in_batch (largest over catalogues)", max(in_batch) if in_batch else None, 3.5, False, "x")
    bf16, mirrored = get("mixed", small, "mixed_bfloat16"), get("mixed", small, strategy="mirrored")
    check(
        "mixed_bfloat16 step time / float32 at 10k items",
        bf16 and mixed_small and bf16["step_ms"] / mixed_small["step_ms"], 0.75, False, "x",
    )
    if mirrored and mixed_small:  # no target: the same 2 cores, the collective's overhead
        out.append(
            f"  [info] mirrored over 2 logical CPUs / one device at 10k items: "
            f"{mirrored['step_ms'] / mixed_small['step_ms']:.2f}x (same cores: collective overhead, not a speed-up)"
        )
    rss = [r["peak_rss_mb"] for r in rows if r["mode"] == "mixed" and r.get("strategy", "one_device") == "one_device"]
    check("mixed peak RSS (largest over catalogues)", max(rss) if rss else None, 1536, False, " MB")
    return out


def plot(rows: list[dict[str, Any]], path: str) -> None:
    from _report import require  # benchmarks/_report.py

    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for mode in MODES:
        pts = sorted(
            (r["num_items"], r["examples_per_second"], r["peak_rss_mb"]) for r in rows
            if r["mode"] == mode and r.get("precision", "float32") == "float32" and r.get("strategy") == "one_device"
        )
        if not pts:
            continue
        xs, eps, rss = zip(*pts)
        ax1.plot(xs, eps, marker="o", label=mode)
        ax2.plot(xs, rss, marker="o", label=mode)
    for ax, label in ((ax1, "training examples / s"), (ax2, "peak RSS (MB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("catalogue size (items)")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    ax1.legend()
    b = rows[0]["batch_size"] if rows else 600
    fig.suptitle(f"IRNS training throughput, B = {b}, M = 3000, d = 64 (CPU)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer timed steps (the whole grid in < 5 min)")
    parser.add_argument("--modes", nargs="+", default=MODES, choices=MODES)
    parser.add_argument("--items", nargs="+", type=int, default=CATALOGUES)
    parser.add_argument("--batch-size", type=int, default=600)
    parser.add_argument("--num-negatives", type=int, default=3000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--num-users", type=int, default=10_000)
    parser.add_argument("--full-max-items", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the cheap modes; the faster round is kept")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--json", help="write the rows here")
    parser.add_argument("--plot", default=str(ROOT / "benchmarks" / "out" / "throughput.png"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    if args.plot:
        from _report import require  # benchmarks/_report.py

        require("matplotlib")  # the plot comes last: fail now, not after the runs

    start = time.perf_counter()
    print(f"B = {args.batch_size}, M = {args.num_negatives}, d = {args.dim}; one subprocess per variant")
    rows, notes = grid(args)
    print()
    print(table(rows))
    for note in notes:
        print(f"note: {note}")
    print("targets:")
    print("\n".join(targets(rows)))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump([{k: r[k] for k in KEYS} for r in rows], fh, indent=2)
    if rows and args.plot:
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        plot(rows, args.plot)
        print(f"plot: {args.plot}")
    print(f"total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
