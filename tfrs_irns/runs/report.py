"""A run a person can read: ``report.md`` with plots, from a run folder's ``metrics.json``.

A metrics file answers "how good is it" only to someone who knows what to
compare: whether training converged (the loss curve), whether the epoch kept
was the right one (the validation curves), whether the model beats the
most-popular list it must beat (side by side at every K), and whether it
serves the long tail or only the head items everybody already finds (head
and tail bars). The report shows exactly those, from the files a finished run
already holds: nothing is recomputed, no data or TensorFlow is needed.

Plots are PNGs drawn with matplotlib, an optional dependency
(``pip install 'tfrs-irns[report]'``), imported only here and only when
plots are asked for; ``plots=False`` writes the tables alone.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

import yaml

from tfrs_irns.errors import UserError
from tfrs_irns.runs.rundir import RunDir

REPORT_FILE = "report.md"
PLOTS_DIR = "report"
_MISSING_MPL = (
    "the report's plots need matplotlib, which is not installed: pip install 'tfrs-irns[report]' "
    "(or pass --no-plots for the tables alone)"
)


def read_run(run_dir: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(metrics, config)`` of a finished run; one clear error otherwise."""
    folder = RunDir(run_dir)
    folder.check_is_run()
    if not folder.finished():
        raise UserError(
            f"{run_dir}: the run has not finished (no metrics.json); an interrupted run continues with: "
            f"tfrs-irns train --resume {run_dir}"
        )
    try:
        metrics = folder.read_metrics()
        with open(folder.config, encoding="utf-8") as fh:
            config = yaml.safe_load(fh) or {}
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise UserError(f"{run_dir}: cannot read the run's files ({str(exc).splitlines()[0]})") from None
    if not isinstance(metrics, dict) or not isinstance(config, dict):
        raise UserError(f"{run_dir}: metrics.json or config.yaml is not a mapping")
    return metrics, config


def cutoffs(metrics: dict[str, Any]) -> list[int]:
    """The K of every ``hit_rate@K`` the run reports, ascending."""
    return sorted(int(key.split("@")[1]) for key in metrics if key.startswith("hit_rate@"))


def _fmt(value: Any) -> str:
    return "–" if value is None else f"{float(value):.4f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def model_vs_popular(metrics: dict[str, Any]) -> list[list[str]]:
    """Rows ``K, model hit rate, most-popular hit rate, ratio, model recall, model NDCG``."""
    popular = metrics.get("popular_baseline") or {}
    rows = []
    for k in cutoffs(metrics):
        mine, theirs = metrics.get(f"hit_rate@{k}"), popular.get(f"hit_rate@{k}")
        ratio = f"{mine / theirs:.2f}×" if mine is not None and theirs else "–"
        rows.append([str(k), _fmt(mine), _fmt(theirs), ratio, _fmt(metrics.get(f"recall@{k}")),
                     _fmt(metrics.get(f"ndcg@{k}"))])
    return rows


def head_tail(metrics: dict[str, Any], k: int) -> dict[str, dict[str, Optional[float]]]:
    """``hit_rate@k`` of the model and of the most-popular list on the head and the tail items."""
    popular = metrics.get("popular_baseline") or {}
    return {
        who: {band: (source.get(band) or {}).get(f"hit_rate@{k}") for band in ("head", "tail")}
        for who, source in (("model", metrics), ("most popular", popular))
    }


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only, no display
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError(_MISSING_MPL) from None
    return plt


def _plots(metrics: dict[str, Any], folder: str, k: int) -> list[tuple[str, str]]:
    """Draw the PNGs into ``folder``; returns ``(title, file name)`` pairs."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator as integer_ticks

    os.makedirs(folder, exist_ok=True)
    history = metrics.get("history") or {}
    drawn = []

    def save(fig: Any, name: str, title: str) -> None:
        fig.tight_layout()
        fig.savefig(os.path.join(folder, name), dpi=100)
        plt.close(fig)
        drawn.append((title, name))

    best = metrics.get("best_epoch")
    losses = {key: v for key, v in history.items() if key.endswith("loss") and v}
    if losses:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for key, values in losses.items():
            ax.plot(range(1, len(values) + 1), values, marker="o", label=key)
        ax.set(xlabel="epoch", ylabel="loss", title="Training loss")
        ax.xaxis.set_major_locator(integer_ticks(integer=True))
        ax.legend()
        save(fig, "loss.png", "Training loss")
    validation = {key: v for key, v in history.items() if key.startswith("val_") and v}
    if validation:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for key, values in validation.items():
            ax.plot(range(1, len(values) + 1), [float("nan") if x is None else x for x in values], marker="o", label=key)
        if best:
            ax.axvline(best, color="grey", linestyle="--", label=f"kept epoch {best}")
        ax.set(xlabel="epoch", ylabel="metric", title="Validation metrics")
        ax.xaxis.set_major_locator(integer_ticks(integer=True))
        ax.legend(fontsize="small")
        save(fig, "validation.png", "Validation metrics per epoch")
    rows = model_vs_popular(metrics)
    if rows:
        ks = cutoffs(metrics)
        fig, ax = plt.subplots(figsize=(6, 3.5))
        x = range(len(ks))
        popular = metrics.get("popular_baseline") or {}
        ax.bar([i - 0.2 for i in x], [metrics.get(f"hit_rate@{c}") or 0 for c in ks], 0.4, label="model")
        ax.bar([i + 0.2 for i in x], [popular.get(f"hit_rate@{c}") or 0 for c in ks], 0.4, label="most popular")
        ax.set_xticks(list(x), [f"@{c}" for c in ks])
        ax.set(ylabel="hit rate", title="Model vs most-popular baseline (test)")
        ax.legend()
        save(fig, "baseline.png", "Model beside the most-popular baseline")
    bands = head_tail(metrics, k)
    if any(v is not None for who in bands.values() for v in who.values()):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for i, (who, values) in enumerate(bands.items()):
            ax.bar([j + (i - 0.5) * 0.4 for j in range(2)], [values["head"] or 0, values["tail"] or 0], 0.4, label=who)
        ax.set_xticks([0, 1], ["head items", "tail items"])
        ax.set(ylabel=f"hit rate@{k}", title=f"Head and tail (test hit_rate@{k})")
        ax.legend()
        save(fig, "head_tail.png", "Head and tail items")
    return drawn


def write_report(run_dir: str, output: Optional[str] = None, plots: bool = True) -> str:
    """Write ``report.md`` (default in ``run_dir``) and its PNGs beside it
    (``report/``); returns the report's path. ``plots=False``: tables only."""
    metrics, config = read_run(run_dir)
    if plots:
        _pyplot()  # missing matplotlib stops before anything is written
    path = output or os.path.join(run_dir, REPORT_FILE)
    if os.path.isdir(path):
        raise UserError(f"--output {path}: is a folder, expected a file name (e.g. {os.path.join(path, REPORT_FILE)})")
    ks = cutoffs(metrics)
    if not ks:
        raise UserError(f"{run_dir}/metrics.json: reports no hit_rate@K; was it written by tfrs-irns train?")
    k = max(ks)
    name = os.path.basename(os.path.normpath(run_dir))
    data = config.get("data") or {}
    val = metrics.get("validation") or {}
    lines = [
        f"# Run {name}",
        "",
        f"Data: {data.get('source', '?')} ({data.get('split', '?')} split), "
        f"{metrics.get('num_users', '?')} users, {metrics.get('num_items', '?')} items; "
        f"train {metrics.get('num_train', '?')}, validation {metrics.get('num_validation', '?')}, "
        f"test {metrics.get('num_test', '?')} interactions.",
        f"Training: {metrics.get('epochs_run', '?')} epochs in {metrics.get('train_seconds', '?')} s; "
        f"kept epoch {metrics.get('best_epoch', '?')}"
        + (f" ({val['monitor']} = {_fmt(val.get('value'))})" if val.get("monitor") else "") + ".",
        "",
        "## Test metrics beside the most-popular baseline",
        "",
        _table(["K", "hit rate", "most-popular hit rate", "model / popular", "recall", "NDCG"],
               model_vs_popular(metrics)),
        "",
        f"MRR {_fmt(metrics.get('mrr'))} (most popular {_fmt((metrics.get('popular_baseline') or {}).get('mrr'))}).",
        "",
        f"## Head and tail items (hit_rate@{k})",
        "",
        "Head: the most popular items holding half of the training interactions; tail: the rest.",
        "",
        _table(["", "head", "tail"], [[who, _fmt(v["head"]), _fmt(v["tail"])] for who, v in head_tail(metrics, k).items()]),
    ]
    ann = metrics.get("ann")
    if isinstance(ann, dict):
        recall = next((f"{key} = {_fmt(v)}" for key, v in ann.items() if key.startswith("recall@")), "")
        lines += ["", "## ANN index", "", f"{ann.get('kind', ann.get('type', 'index'))}: {recall}".rstrip(": ")]
    if plots:
        folder = os.path.join(os.path.dirname(os.path.abspath(path)), PLOTS_DIR)
        drawn = _plots(metrics, folder, k)
        lines += ["", "## Plots", ""]
        for title, file in drawn:
            lines += [f"### {title}", "", f"![{title}]({PLOTS_DIR}/{file})", ""]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines).rstrip() + "\n")
    return path
