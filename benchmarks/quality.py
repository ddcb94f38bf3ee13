"""Quality ablation: which negatives (and which batching) retrieve best.

Trains every variant below on each dataset with the same epochs, learning
rate and early-stopping rule, for several seeds, and evaluates each model
with the package's full-corpus evaluation (no sampled metrics). Writes a
markdown table, PNG plots and the raw JSON:

    python benchmarks/quality.py --preset small   # ~10 min on 2 cores
    python benchmarks/quality.py --preset full

Outputs go to ``docs/results/`` (tables, plots) and ``benchmarks/out/``
(raw rows). Runs train in this process one after another; nothing else
should share the CPU if you want to compare timings.
"""

from __future__ import annotations

import argparse
import json
import os
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
from tfrs_irns.runs.training import train  # noqa: E402

from _report import require  # noqa: E402  (benchmarks/_report.py)

SHARED = ROOT.parent / "shared" / "data" / "ml-latest-small"

# name -> config overrides
VARIANTS: dict[str, list[str]] = {
    "in_batch": ["negatives.mode=in_batch", "negatives.logq=false"],
    "in_batch+logQ": ["negatives.mode=in_batch", "negatives.logq=true"],
    "random": ["negatives.mode=random"],
    "mixed": ["negatives.mode=mixed", "negatives.logq=false"],
    "mixed+logQ": ["negatives.mode=mixed", "negatives.logq=true"],
    "full": ["negatives.mode=full"],
    "mixed+logQ+gcbs": ["negatives.mode=mixed", "negatives.logq=true", "batching.strategy=gcbs"],
}

DATASETS: dict[str, dict[str, Any]] = {
    "synthetic": {
        "config": "configs/quickstart.yaml",
        "small": ["data.synthetic.num_interactions=100000"],
        "full": ["data.synthetic.num_interactions=100000"],
    },
    "ml-latest-small": {
        "config": "configs/movielens-latest-small.yaml",
        "small": [f"data.path={SHARED}"],
        "full": [f"data.path={SHARED}"],
    },
}

PRESETS = {
    "small": {"seeds": [0], "variants": list(VARIANTS)},
    "full": {"seeds": [0, 1, 2], "variants": list(VARIANTS)},
}


def run_grid(preset: str, datasets: list[str], variants: list[str], seeds: list[int], extra: list[str]) -> list[dict]:
    tqdm = require("tqdm").tqdm

    jobs = [(d, v, s) for d in datasets for v in variants for s in seeds]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, tqdm(total=len(jobs), desc="quality runs", unit="run") as bar:
        for dataset, variant, seed in jobs:
            spec = DATASETS[dataset]
            overrides = spec[preset] + VARIANTS[variant] + [
                f"train.seed={seed}",
                f"negatives.seed={seed}",
                "export.enabled=false",
            ] + extra
            config = load_config(str(ROOT / spec["config"]), overrides)
            bar.set_postfix_str(f"{dataset} {variant} seed={seed}")
            start = time.perf_counter()
            run = train(config, os.path.join(tmp, f"{dataset}-{variant}-{seed}"), verbose=0)
            rows.append(
                {
                    "dataset": dataset,
                    "variant": variant,
                    "seed": seed,
                    "seconds": round(time.perf_counter() - start, 2),
                    "metrics": run.metrics,
                }
            )
            bar.update(1)
    return rows


def _mean_std(values: list[float]) -> str:
    return f"{np.mean(values):.4f} ± {np.std(values):.4f}"


def table(rows: list[dict], dataset: str, ks: list[int]) -> str:
    """Markdown table: mean ± std over seeds of the main metrics per variant."""
    picked = [r for r in rows if r["dataset"] == dataset]
    if not picked:
        return ""
    kmax = max(ks)
    cols = [f"hit_rate@{kmax}", "hit_rate@10", "recall@10", "ndcg@10", "mrr",
            f"head/hit_rate@{kmax}", f"tail/hit_rate@{kmax}", f"coverage@{kmax}", "epochs", "seconds"]
    lines = ["| variant | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    variants = list(dict.fromkeys(r["variant"] for r in picked))
    for v in variants + ["most popular"]:
        runs = [r for r in picked if r["variant"] == (v if v != "most popular" else variants[0])]
        cells = []
        for c in cols:
            vals = []
            for r in runs:
                m = r["metrics"] if v != "most popular" else r["metrics"]["popular_baseline"]
                if c == "seconds":
                    vals.append(r["seconds"] if v != "most popular" else float("nan"))
                elif c == "epochs":
                    vals.append(r["metrics"].get("best_epoch", r["metrics"].get("epochs_run", np.nan)) if v != "most popular" else float("nan"))
                elif "/" in c:
                    band, key = c.split("/")
                    vals.append(m.get(band, {}).get(key, np.nan))
                else:
                    vals.append(m.get(c, np.nan))
            if c in ("seconds", "epochs"):
                cells.append("—" if np.isnan(vals).all() else f"{np.nanmedian(vals):.0f}")
            else:
                cells.append(_mean_std(vals))
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plots(rows: list[dict], dataset: str, ks: list[int], out_dir: Path) -> list[str]:
    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    picked = [r for r in rows if r["dataset"] == dataset]
    if not picked:
        return []
    variants = list(dict.fromkeys(r["variant"] for r in picked))
    paths = []

    fig, ax = plt.subplots(figsize=(6, 4))
    for v in variants:
        curve = [np.mean([r["metrics"][f"hit_rate@{k}"] for r in picked if r["variant"] == v]) for k in ks]
        ax.plot(ks, curve, marker="o", label=v)
    pop = [np.mean([r["metrics"]["popular_baseline"][f"hit_rate@{k}"] for r in picked if r["variant"] == variants[0]]) for k in ks]
    ax.plot(ks, pop, "k--", label="most popular")
    ax.set_xscale("log")
    ax.set_xlabel("K")
    ax.set_ylabel("hit rate@K (full corpus)")
    ax.set_title(f"{dataset}: hit rate@K by negatives")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out_dir / f"quality_{dataset}_hitrate.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(str(path))

    kmax = max(ks)
    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(variants))
    for offset, band in ((-0.2, "head"), (0.2, "tail")):
        vals = [np.mean([r["metrics"][band][f"hit_rate@{kmax}"] for r in picked if r["variant"] == v]) for v in variants]
        ax.bar(x + offset, vals, width=0.4, label=band)
    ax.set_xticks(x, variants, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"hit rate@{kmax}")
    ax.set_title(f"{dataset}: head vs tail items")
    ax.legend()
    fig.tight_layout()
    path = out_dir / f"quality_{dataset}_head_tail.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(str(path))
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int)
    parser.add_argument("--set", nargs="+", default=[], help="extra config overrides for every run")
    parser.add_argument("--out", default=str(ROOT / "docs" / "results"))
    args = parser.parse_args(argv)
    require("tqdm"), require("matplotlib")  # the plots come last: fail now, not after the runs

    preset = PRESETS[args.preset]
    datasets = [d for d in args.datasets if d != "ml-latest-small" or SHARED.is_dir()]
    if len(datasets) < len(args.datasets):
        print(f"skipping ml-latest-small: {SHARED} not found")
    rows = run_grid(args.preset, datasets, args.variants or preset["variants"], args.seeds or preset["seeds"], args.set)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw = ROOT / "benchmarks" / "out"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / f"quality-{args.preset}.json").write_text(json.dumps(rows, indent=1, default=float))
    ks = load_config(str(ROOT / "configs" / "quickstart.yaml")).eval.ks
    report = [f"# Quality ablation ({args.preset} preset)", "",
              f"Command: `python benchmarks/quality.py --preset {args.preset}`", ""]
    for d in datasets:
        report += [f"## {d}", "", table(rows, d, ks), ""]
        for p in plots(rows, d, ks, out):
            report.append(f"![{Path(p).stem}]({Path(p).name})")
        report.append("")
    text = "\n".join(report)
    (out / f"quality-{args.preset}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
