"""Grid search that chose the shipped defaults (learning rate, embedding L2).

Every run uses early stopping on the validation split; the table reports the
best validation ``hit_rate@100`` (what the choice is made on) and the test
value of the kept weights (for information only — never choose on test).

    python benchmarks/tune.py --dataset ml-latest-small \\
        --grid train.learning_rate=0.05,0.1,0.2,0.5 model.embedding_l2=0,0.001,0.01

Writes ``docs/results/tune-<dataset>.md``.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tfrs_irns  # noqa: E402,F401
from tfrs_irns.config import load_config  # noqa: E402
from tfrs_irns.runs.training import train  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "ml-latest-small"
DATASETS = {
    "ml-latest-small": ("configs/movielens-latest-small.yaml", [f"data.path={SHARED}"]),
    "synthetic": ("configs/quickstart.yaml", []),
    "synthetic-100k": ("configs/quickstart.yaml", ["data.synthetic.num_interactions=100000"]),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=list(DATASETS), default="ml-latest-small")
    parser.add_argument("--grid", nargs="+", required=True, help="key=v1,v2,... (the product is searched)")
    parser.add_argument("--set", nargs="+", default=[], help="fixed overrides for every run")
    parser.add_argument("--out", default=str(ROOT / "docs" / "results"))
    args = parser.parse_args(argv)

    path, base = DATASETS[args.dataset]
    axes = [(key, values.split(",")) for key, values in (g.split("=", 1) for g in args.grid)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, combo in enumerate(itertools.product(*[values for _, values in axes])):
            point = [f"{key}={value}" for (key, _), value in zip(axes, combo)]
            config = load_config(str(ROOT / path), base + args.set + point + ["export.enabled=false"])
            start = time.perf_counter()
            run = train(config, f"{tmp}/{i}", verbose=0)
            m = run.metrics
            rows.append((point, max(m["history"]["val_hit_rate@100"]), m["hit_rate@100"], m["best_epoch"],
                         m["epochs_run"], time.perf_counter() - start))
            print(" ".join(point), "val", round(rows[-1][1], 4), "test", round(rows[-1][2], 4),
                  "best_epoch", m["best_epoch"], "of", m["epochs_run"], flush=True)
    rows.sort(key=lambda r: -r[1])
    lines = [f"# Tuning on {args.dataset}", "",
             f"Command: `python benchmarks/tune.py --dataset {args.dataset} --grid {' '.join(args.grid)}"
             + (f" --set {' '.join(args.set)}" if args.set else "") + "`", "",
             "| setting | best val hit_rate@100 | test hit_rate@100 (kept weights) | best epoch / run | seconds |",
             "|---|---|---|---|---|"]
    for point, val, test, best_epoch, epochs, secs in rows:
        lines.append(f"| {' '.join(point)} | {val:.4f} | {test:.4f} | {best_epoch} / {epochs} | {secs:.0f} |")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"tune-{args.dataset}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
