"""Does early stopping pick a model near its best epoch?

For each dataset and negatives mode, trains one long run (``--epochs``,
early stopping off) that logs the full-corpus validation AND test
``hit_rate@100`` after every epoch, then:

* ``best test`` — the best test value over all epochs (an oracle nobody can
  use: it selects on the test split);
* ``early-stopped test`` — the test value of the epoch that
  ``EarlyStopping(monitor=val_hit_rate@100, patience=P, restore_best_weights)``
  keeps, replayed on the same trajectory (training is seeded, so a run that
  really stops follows the same path up to its stop);
* ``default config`` — a real ``train`` with the config as shipped (early
  stopping on), to show the replay matches what users get.

    python benchmarks/early_stopping.py                 # ml-latest-small + synthetic
    python benchmarks/early_stopping.py --epochs 40

Writes ``docs/results/early_stopping.md`` and ``early_stopping_curves.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tfrs_irns  # noqa: E402,F401
from tfrs_irns.config import load_config  # noqa: E402
from tfrs_irns.data.prepare import prepare_data  # noqa: E402
from tfrs_irns.evaluation.validation import EpochMetrics  # noqa: E402
from tfrs_irns.runs.training import train  # noqa: E402

from _report import require  # noqa: E402  (benchmarks/_report.py)

SHARED = ROOT.parent / "shared" / "data" / "ml-latest-small"
MODES = {
    "in_batch": ["negatives.mode=in_batch", "negatives.logq=false"],
    "in_batch+logQ": ["negatives.mode=in_batch", "negatives.logq=true"],
    "mixed": ["negatives.mode=mixed", "negatives.logq=false"],
    "mixed+logQ": ["negatives.mode=mixed", "negatives.logq=true"],
}
DATASETS = {
    "ml-latest-small": ("configs/movielens-latest-small.yaml", [f"data.path={SHARED}"]),
    "synthetic": ("configs/quickstart.yaml", ["data.synthetic.num_interactions=100000"]),
}
KEY = "hit_rate@100"


def replay_early_stopping(val: list[float], patience: int) -> int:
    """0-based epoch EarlyStopping(mode=max, restore_best_weights) keeps."""
    best, best_epoch, wait = -np.inf, 0, 0
    for epoch, value in enumerate(val):
        if value > best:
            best, best_epoch, wait = value, epoch, 0
        else:
            wait += 1
            if wait >= patience:
                break
    return best_epoch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--modes", nargs="+", default=["in_batch", "mixed", "mixed+logQ"], choices=list(MODES))
    parser.add_argument("--set", nargs="+", default=[], help="extra overrides for every run")
    parser.add_argument("--out", default=str(ROOT / "docs" / "results"))
    args = parser.parse_args(argv)
    require("matplotlib")  # the plot comes last: fail now, not after the runs

    rows, curves = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.datasets:
            if dataset == "ml-latest-small" and not SHARED.is_dir():
                print(f"skipping ml-latest-small: {SHARED} not found")
                continue
            path, base = DATASETS[dataset]
            for mode in args.modes:
                common = base + MODES[mode] + ["export.enabled=false"] + args.set
                config = load_config(str(ROOT / path), common + [
                    f"train.epochs={args.epochs}", "train.early_stopping.enabled=false"])
                patience = config.train.early_stopping.patience
                # The same deterministic preparation train() does, for the test curve.
                data = prepare_data(config.data)
                test_curve = EpochMetrics(data, "test", ks=config.eval.ks, prefix="test_", keys=[KEY])
                run = train(config, f"{tmp}/{dataset}-{mode}-long", verbose=0, extra_callbacks=[test_curve])
                hist = run.metrics["history"]
                val, test = hist[f"val_{KEY}"], hist[f"test_{KEY}"]
                kept = replay_early_stopping(val, patience)
                default = train(load_config(str(ROOT / path), common), f"{tmp}/{dataset}-{mode}-default", verbose=0)
                row = {
                    "dataset": dataset,
                    "mode": mode,
                    "best_test": max(test),
                    "best_test_epoch": int(np.argmax(test)) + 1,
                    "early_stopped_test": test[kept],
                    "early_stopped_epoch": kept + 1,
                    "default_test": default.metrics[KEY],
                    "default_best_epoch": default.metrics["best_epoch"],
                    "default_epochs_run": default.metrics["epochs_run"],
                    "last_epoch_test": test[-1],
                    "popular": run.metrics["popular_baseline"][KEY],
                }
                row["gap"] = 1 - row["early_stopped_test"] / row["best_test"]
                rows.append(row)
                curves[(dataset, mode)] = (val, test)
                print(json.dumps(row), flush=True)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    lines = [
        "# Early stopping on a full-corpus validation metric",
        "",
        f"Command: `python benchmarks/early_stopping.py --epochs {args.epochs} --datasets {' '.join(args.datasets)} "
        f"--modes {' '.join(args.modes)}`. Test `hit_rate@100` "
        "(full corpus, TFRS protocol). *Gap* = 1 − early-stopped / best-over-all-epochs.",
        "",
        "| dataset | mode | best test (epoch) | early-stopped test (epoch) | gap | default config test (best epoch / epochs run) | last epoch test | most popular |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['mode']} | {r['best_test']:.4f} ({r['best_test_epoch']}) | "
            f"{r['early_stopped_test']:.4f} ({r['early_stopped_epoch']}) | {100 * r['gap']:.1f}% | "
            f"{r['default_test']:.4f} ({r['default_best_epoch']} / {r['default_epochs_run']}) | "
            f"{r['last_epoch_test']:.4f} | {r['popular']:.4f} |"
        )
    lines += ["", "![curves](early_stopping_curves.png)", ""]
    (out / "early_stopping.md").write_text("\n".join(lines))
    print("\n".join(lines))
    _plot(curves, out / "early_stopping_curves.png")
    return 0


def _plot(curves: dict, path: Path) -> None:
    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted({d for d, _ in curves})
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        for (d, mode), (val, test) in curves.items():
            if d != dataset:
                continue
            epochs = np.arange(1, len(test) + 1)
            line, = ax.plot(epochs, test, label=f"{mode} test")
            ax.plot(epochs, val, "--", color=line.get_color(), alpha=0.6, label=f"{mode} validation")
        ax.set_title(dataset)
        ax.set_xlabel("epoch")
        ax.set_ylabel(KEY)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
