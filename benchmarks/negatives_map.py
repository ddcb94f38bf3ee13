"""The negatives map: which negatives (and which batching) win where.

Every variant below trains on each dataset with the same protocol — the
dataset config's optimizer and learning rate (Adagrad 0.1, batch 600, tuned
for ``mixed`` on ml-latest-small and the synthetic catalogue by
``benchmarks/tune.py``), early stopping on ``val_hit_rate@100`` with patience
3 and the best epoch's weights restored, at most ``--max-epochs`` — and is
evaluated with the package's full-corpus evaluation (every item ranked, the
user's training items excluded). Per dataset the script reports
``hit_rate@100``, ``ndcg@10``, head/tail ``hit_rate@100`` (the evaluation's
popularity bands), the median step time, the total training time and the
headroom: ``full`` minus the best sampled variant (when ``full`` ran).

Variants (``--variants``, names as below):

* ``in_batch+logQ`` / ``mixed+logQ`` — the standard mixture correction;
* ``…+refined`` — ``experimental.logq_variant=refined`` (Khrylchenko et al. 2025);
* ``…+GCBS`` — ``batching.strategy=gcbs`` with the default graph, and for
  ``in_batch`` (GCBS's own regime: in-batch negatives only) the ``cosine``,
  ``item_item``, guarded and ``quantile``-threshold graphs;
* ``mixed+logQ+hard100`` — TFRS's hard-negative mining, the 100 highest
  negatives per row kept;
* ``full`` — the exact softmax, skipped where the catalogue exceeds
  ``--full-max-items``.

Datasets (``--datasets``):

* ``ml-random`` — ml-latest-small, random 70/10/20 split (the package's
  tuning data);
* ``synthetic`` — a ``--synthetic-items`` catalogue (default 200,000) with
  planted clusters and a Zipf long tail (``tfrs_irns.data.synthetic``), where
  ``full`` is expensive and sampled negatives may leave headroom;
* ``ml-llo`` — ml-latest-small, leave-last-out split (each user's last
  interaction is the test).

The full map (3 seeds, every variant, every dataset) is hours of CPU:

    python benchmarks/negatives_map.py --seeds 0 1 2 --json benchmarks/out/negatives-map.json

What fits on a shared 2-core machine, e.g.:

    python benchmarks/negatives_map.py --seeds 0 --datasets ml-random ml-llo --max-epochs 30 \\
        --json benchmarks/out/negatives-map-ml.json

Writes the rows as JSON (``--json``), a Markdown table per dataset to
``--report`` (default ``docs/results/negatives-map.md``) and, when matplotlib
is installed, a hit-rate-vs-step-time plot per dataset beside it.
Runs train one after another in this process; compare timings within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tfrs_irns  # noqa: E402,F401  (pins Keras 2 first)
from tfrs_irns.config import load_config  # noqa: E402

from _report import print_table, write_json  # noqa: E402  (benchmarks/_report.py)

SHARED = ROOT.parent / "shared" / "data" / "ml-latest-small"

IN_BATCH = ["negatives.mode=in_batch", "negatives.logq=true"]
MIXED = ["negatives.mode=mixed", "negatives.logq=true"]
GCBS = ["batching.strategy=gcbs"]
REFINED = ["experimental.logq_variant=refined"]

# name -> config overrides
VARIANTS: dict[str, list[str]] = {
    "in_batch+logQ": IN_BATCH,
    "in_batch+logQ+GCBS": IN_BATCH + GCBS,
    "in_batch+logQ+GCBS cosine": IN_BATCH + GCBS + ["experimental.gcbs_similarity=cosine"],
    "in_batch+logQ+GCBS item_item": IN_BATCH + GCBS + ["experimental.gcbs_graph=item_item"],
    "in_batch+logQ+GCBS guard": IN_BATCH + GCBS + ["experimental.gcbs_exclude_above_positive=true"],
    "in_batch+logQ+GCBS quantile": IN_BATCH + GCBS + ["experimental.gcbs_threshold=quantile"],
    "in_batch+refined": IN_BATCH + REFINED,
    "mixed+logQ": MIXED,
    "mixed+logQ+GCBS": MIXED + GCBS,
    "mixed+refined": MIXED + REFINED,
    "mixed+logQ+hard100": MIXED + ["negatives.num_hard_negatives=100"],
    "full": ["negatives.mode=full"],
}

COMMON = ["export.enabled=false", "eval.ks=[10, 100]", "train.early_stopping.enabled=true",
          "train.early_stopping.monitor=val_hit_rate@100", "train.early_stopping.patience=3"]


def datasets(args: argparse.Namespace) -> dict[str, tuple[str, list[str], int]]:
    """name -> (config file, overrides, catalogue size or 0 when the data decide)."""
    ml = [f"data.path={args.data}"]
    return {
        "ml-random": ("configs/movielens-latest-small.yaml", ml + ["data.split=random"], 0),
        "synthetic": ("configs/quickstart.yaml", [
            f"data.synthetic.num_items={args.synthetic_items}",
            f"data.synthetic.num_users={args.synthetic_users}",
            f"data.synthetic.num_interactions={args.synthetic_interactions}",
            "data.synthetic.num_clusters=50",
        ], args.synthetic_items),
        "ml-llo": ("configs/movielens-latest-small.yaml", ml + ["data.split=leave_last_out"], 0),
    }


def one_run(config_file: str, overrides: list[str], run_dir: str) -> dict[str, Any]:
    from tfrs_irns.runs.training import train

    config = load_config(str(ROOT / config_file), overrides)
    start = time.perf_counter()
    run = train(config, run_dir, verbose=0)
    m = run.metrics
    steps = -(-m["num_train"] // config.train.batch_size) * m["epochs_run"]
    history = m.get("history", {})
    gcbs_seconds = float(np.nansum([v for v in history.get("gcbs_seconds", []) if v is not None]))
    return {
        "hit_rate@100": m["hit_rate@100"],
        "ndcg@10": m["ndcg@10"],
        "head_hit_rate@100": m.get("head", {}).get("hit_rate@100", float("nan")),
        "tail_hit_rate@100": m.get("tail", {}).get("hit_rate@100", float("nan")),
        "popular_hit_rate@100": m["popular_baseline"]["hit_rate@100"],
        "train_seconds": m["train_seconds"],
        # Fit time per step, validation and GCBS recomputes included.
        "step_ms": 1000.0 * m["train_seconds"] / max(steps, 1),
        "gcbs_seconds": gcbs_seconds,
        "epochs_run": m["epochs_run"],
        "best_epoch": m["best_epoch"],
        "num_items": int(run.data.num_items),
        "wall_seconds": time.perf_counter() - start,
    }


def run_map(args: argparse.Namespace) -> list[dict[str, Any]]:
    specs = datasets(args)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up, not recorded: a process's first fit pays tracing and caches.
        config_file, overrides, _ = specs[args.datasets[0]]
        one_run(config_file, overrides + VARIANTS[args.variants[0]] + COMMON + ["train.epochs=1"],
                os.path.join(tmp, "warm-up"))
        for name in args.datasets:
            config_file, overrides, items = specs[name]
            for variant in args.variants:
                if variant == "full" and items > args.full_max_items:
                    print(f"{name}: skipping full ({items:,} items > --full-max-items {args.full_max_items:,})")
                    continue
                for seed in args.seeds:
                    extra = VARIANTS[variant] + COMMON + [
                        f"train.seed={seed}", f"negatives.seed={seed}", f"train.epochs={args.max_epochs}",
                        f"negatives.full_max_items={max(args.full_max_items, 1)}",
                    ]
                    print(f"{name} | {variant} | seed {seed} ...", flush=True)
                    found = one_run(config_file, overrides + extra, os.path.join(tmp, f"{name}-{variant}-{seed}"))
                    rows.append({"dataset": name, "variant": variant, "seed": seed, **found})
                    print(f"  hit_rate@100 {found['hit_rate@100']:.4f}  ndcg@10 {found['ndcg@10']:.4f}  "
                          f"{found['train_seconds']:.0f} s, {found['epochs_run']} epochs", flush=True)
                    if args.json:  # after every run: a long map killed midway keeps what it measured
                        write_json(args.json, rows)
    return rows


def _cell(values: list[float], digits: int = 4) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values):.{digits}f}"


def summary(rows: list[dict[str, Any]], dataset: str) -> tuple[list[list[str]], dict[str, Any]]:
    """Table cells (mean ± std over seeds) and the headroom of one dataset."""
    picked = [r for r in rows if r["dataset"] == dataset]
    variants = list(dict.fromkeys(r["variant"] for r in picked))
    cells, means = [], {}
    for v in variants:
        runs = [r for r in picked if r["variant"] == v]
        col = lambda key: [r[key] for r in runs]  # noqa: E731
        means[v] = float(np.mean(col("hit_rate@100")))
        cells.append([
            v, str(len(runs)), _cell(col("hit_rate@100")), _cell(col("ndcg@10")), _cell(col("head_hit_rate@100")),
            _cell(col("tail_hit_rate@100")), f"{statistics.median(col('step_ms')):.0f}",
            f"{statistics.median(col('train_seconds')):.0f}", f"{statistics.median(col('best_epoch')):.0f}",
        ])
    sampled = {v: m for v, m in means.items() if v != "full"}
    best = max(sampled, key=sampled.get) if sampled else None
    head = {"best_sampled": best, "best_sampled_hit_rate@100": sampled.get(best) if best else None,
            "full_hit_rate@100": means.get("full")}
    head["headroom"] = None if head["full_hit_rate@100"] is None or best is None else (
        head["full_hit_rate@100"] - head["best_sampled_hit_rate@100"])
    if picked:
        head["popular_hit_rate@100"] = picked[0]["popular_hit_rate@100"]
    return cells, head


HEADER = ("| variant | seeds | hit_rate@100 | ndcg@10 | head hr@100 | tail hr@100 | step ms | train s | best epoch |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|")


def report(rows: list[dict[str, Any]], path: Path, command: str) -> None:
    lines = ["# The negatives map", "", f"Command: `{command}`", "",
             "Full-corpus test metrics; mean ± std over seeds when more than one; step ms = fit seconds "
             "(validation and GCBS recomputes included) per training step.", ""]
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        cells, head = summary(rows, dataset)
        print_table(f"== {dataset} ==", *HEADER, cells)
        headroom = "—" if head["headroom"] is None else f"{head['headroom']:+.4f}"
        note = (f"Best sampled: {head['best_sampled']} ({head['best_sampled_hit_rate@100']:.4f}); "
                f"headroom (full − best sampled): {headroom}; most popular: {head['popular_hit_rate@100']:.4f}.")
        print(note)
        lines += [f"## {dataset}", "", *HEADER, *("| " + " | ".join(c) + " |" for c in cells), "", note, ""]
        plot = _plot(rows, dataset, path.parent)
        if plot:
            lines += [f"![{dataset}]({plot.name})", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def _plot(rows: list[dict[str, Any]], dataset: str, out_dir: Path) -> Path | None:
    """hit_rate@100 against step time, one point per variant (mean over seeds)."""
    try:
        import matplotlib
    except ImportError:  # the Markdown table stands alone
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picked = [r for r in rows if r["dataset"] == dataset]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for v in dict.fromkeys(r["variant"] for r in picked):
        runs = [r for r in picked if r["variant"] == v]
        x = statistics.median([r["step_ms"] for r in runs])
        y = float(np.mean([r["hit_rate@100"] for r in runs]))
        ax.scatter([x], [y])
        ax.annotate(v, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("ms per training step (log)")
    ax.set_ylabel("hit_rate@100 (full corpus)")
    ax.set_title(f"negatives map: {dataset}")
    fig.tight_layout()
    path = out_dir / f"negatives-map-{dataset}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["ml-random", "synthetic", "ml-llo"],
                        choices=["ml-random", "synthetic", "ml-llo"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--max-epochs", type=int, default=50, help="early stopping usually ends runs sooner")
    parser.add_argument("--data", default=str(SHARED), help="ml-latest-small folder")
    parser.add_argument("--synthetic-items", type=int, default=200_000)
    parser.add_argument("--synthetic-users", type=int, default=20_000)
    parser.add_argument("--synthetic-interactions", type=int, default=1_000_000)
    parser.add_argument("--full-max-items", type=int, default=200_000, help="skip full above this catalogue size")
    parser.add_argument("--json", help="write the rows here (after every run)")
    parser.add_argument("--report", default=str(ROOT / "docs" / "results" / "negatives-map.md"))
    parser.add_argument("--from-json", nargs="+", metavar="PATH",
                        help="train nothing: write the report of rows saved by earlier --json runs")
    args = parser.parse_args(argv)
    command = "python benchmarks/negatives_map.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.from_json:
        rows = [row for path in args.from_json for row in json.loads(Path(path).read_text(encoding="utf-8"))]
        report(rows, Path(args.report), command)
        return 0
    if any(d.startswith("ml-") for d in args.datasets) and not Path(args.data).is_dir():
        parser.error(f"{args.data}: ml-latest-small not found (use --data, or --datasets synthetic)")
    rows = run_map(args)
    report(rows, Path(args.report), command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
