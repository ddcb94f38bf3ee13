"""``tfrs-irns``: train, evaluate, export and query retrieval models, and check their data.

Subcommand and flag names are a contract that outside scripts use.
Every user mistake ends as one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

from tfrs_irns.errors import UserError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfrs-irns", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model from a YAML config, evaluate it, export it")
    train.add_argument("--config", required=True, help="YAML config (see configs/)")
    train.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="override config keys")
    train.add_argument("--output", help="run directory (default runs/<config name>-<timestamp>)")

    evaluate = sub.add_parser("evaluate", help="re-evaluate a finished run from its checkpoint")
    evaluate.add_argument("--run", required=True, help="run directory written by train")
    evaluate.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="override eval.* keys")

    export = sub.add_parser("export", help="export a finished run as a versioned SavedModel")
    export.add_argument("--run", required=True, help="run directory written by train")
    export.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="override export.* keys")

    data = sub.add_parser("data", help="load and split a config's data; print what training will see")
    data.add_argument("--config", required=True, help="YAML config (see configs/)")
    data.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="override config keys")
    data.add_argument("--json", help="also write the summary to this file")

    recommend = sub.add_parser("recommend", help="top items for a user from an exported model")
    recommend.add_argument("--model", required=True, help="saved_models/<name> or saved_models/<name>/<version>")
    recommend.add_argument("--user", required=True, help="raw user id")
    recommend.add_argument("-k", type=int, default=10, help="how many items (default 10)")
    recommend.add_argument("--index", action="store_true", help="answer from the export's ANN index (export.index)")
    return parser


def _train(args: argparse.Namespace) -> None:
    from tfrs_irns.config import load_config

    config = load_config(args.config, args.set)
    from tfrs_irns.runs import export_run, train  # after the config is known good: TensorFlow is slow to load
    from tfrs_irns.runs.build import check_export_extras, export_name

    if config.export.enabled:
        export_name(config)  # a bad name stops now, not after training
        check_export_extras(config)  # so does a missing optional dependency
    run = train(config, args.output)
    if config.export.enabled:
        path = export_run(run)
        print(f"exported to {path}")
    print(f"run written to {run.directory}")


def _evaluate(args: argparse.Namespace) -> None:
    from tfrs_irns.runs.training import evaluate_run, load_run, summary_line, write_metrics

    run = load_run(args.run, tuple(args.set))
    metrics = evaluate_run(run.config, run.data, run.model)
    # Keep what only training knows (timings, history) next to the fresh numbers.
    path = os.path.join(args.run, "metrics.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as fh:
            previous = json.load(fh)
        for key, value in previous.items():
            metrics.setdefault(key, value)
    write_metrics(args.run, metrics)
    print(summary_line(metrics, run.config))


def _export(args: argparse.Namespace) -> None:
    from tfrs_irns.runs import export_run, load_run

    run = load_run(args.run, tuple(args.set))
    print(f"exported to {export_run(run)}")


def _data(args: argparse.Namespace) -> None:
    from tfrs_irns.config import load_config
    from tfrs_irns.data.summary import data_report, format_summary

    if args.json and os.path.isdir(args.json):
        raise UserError(f"--json {args.json}: is a folder, expected a file name")
    report = data_report(load_config(args.config, args.set).data)
    print(format_summary(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)


def _recommend(args: argparse.Namespace) -> None:
    from tfrs_irns.export import recommend

    recommend(args.model, args.user, args.k, index=args.index)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"train": _train, "evaluate": _evaluate, "export": _export, "data": _data, "recommend": _recommend}[
        args.command
    ]
    try:
        handler(args)
    except UserError as exc:
        print(f"tfrs-irns {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tfrs-irns {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
