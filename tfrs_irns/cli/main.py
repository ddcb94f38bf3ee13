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

from tfrs_irns.cli.quiet import import_tensorflow
from tfrs_irns.cli.recommend import add_parser as add_recommend
from tfrs_irns.cli.recommend import run as run_recommend
from tfrs_irns.errors import UserError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfrs-irns", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model from a YAML config, evaluate it, export it")
    train.add_argument("--config", help="YAML config (see configs/)")
    train.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="override config keys")
    train.add_argument("--output", help="run directory (default runs/<config name>-<timestamp>); must not hold a run")
    train.add_argument("--resume", metavar="DIR", help="continue the interrupted run in DIR from its last backup")

    evaluate = sub.add_parser("evaluate", help="re-evaluate a finished run; writes <run>/evaluations/<time>.json")
    evaluate.add_argument("--run", required=True, help="run directory written by train")
    evaluate.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="override eval.* keys")
    evaluate.add_argument(
        "--allow-changed-data",
        action="store_true",
        help="evaluate even if the data under the run's config changed since training",
    )

    export = sub.add_parser("export", help="publish a finished run as the next SavedModel version (needs no data)")
    export.add_argument("--run", required=True, help="run directory written by train")
    export.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="override export.* keys")

    data = sub.add_parser("data", help="load and split a config's data; print what training will see")
    data.add_argument("--config", required=True, help="YAML config (see configs/)")
    data.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="override config keys")
    data.add_argument("--json", help="also write the summary to this file")

    add_recommend(sub)
    return parser


def _check_run_config(run_dir: str, overrides: Sequence[str], command: str) -> None:
    """A bad override of a run's config stops before TensorFlow loads (load_run checks the rest)."""
    from tfrs_irns.config import load_config

    path = os.path.join(run_dir, "config.yaml")
    if os.path.isfile(path):
        load_config(path, overrides, sections=(_SECTIONS[command],))


# The only config section evaluate and export may override: the model is the run's.
_SECTIONS = {"evaluate": "eval", "export": "export"}


def _train(args: argparse.Namespace) -> None:
    from tfrs_irns.config import load_config

    if args.resume is not None:
        # The run continues with the config it started with, saved in its folder.
        if args.config is not None or args.output is not None:
            raise UserError("--resume DIR takes the config and the output folder from DIR; drop --config and --output")
        if args.set:
            raise UserError(f"--set cannot change a run being resumed (its config is {args.resume}/config.yaml)")
        from tfrs_irns.runs.training import resume_config

        config = resume_config(args.resume)
    elif args.config is None:
        raise UserError("the following arguments are required: --config (or --resume DIR)")
    else:
        config = load_config(args.config, args.set)
    import_tensorflow()  # after the config is known good: TensorFlow is slow to load
    from tfrs_irns.runs.build import check_export_extras, export_name

    if config.export.enabled:
        export_name(config)  # a bad name stops now, not after training
        check_export_extras(config)  # so does a missing optional dependency
    from tfrs_irns.runs import train
    from tfrs_irns.runs.exporting import export_trained_run

    resume = args.resume is not None
    run = train(config, args.resume if resume else args.output, resume=resume)
    if not run.is_chief:  # a multi-worker run: the chief writes and exports
        print("worker done (the chief writes the run folder)")
        return
    if config.export.enabled:
        local, published, reason = export_trained_run(run)
        if published:
            print(f"exported to {published} ({reason})")
        else:
            print(f"not published ({reason}); the model is in {local}; to publish it: tfrs-irns export --run {run.directory}")
    print(f"run written to {run.directory}")


def _evaluate(args: argparse.Namespace) -> None:
    import_tensorflow()
    from tfrs_irns.runs.evaluating import evaluate_saved_run
    from tfrs_irns.runs.training import summary_line

    run, metrics, path = evaluate_saved_run(args.run, args.set, args.allow_changed_data)
    print(summary_line(metrics, run.config))
    print(f"evaluation written to {path}")


def _export(args: argparse.Namespace) -> None:
    import_tensorflow()
    from tfrs_irns.runs import export_run, load_run

    run = load_run(args.run, args.set, sections=(_SECTIONS["export"],), with_data=False)
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
    run_recommend(args)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    handler = {"train": _train, "evaluate": _evaluate, "export": _export, "data": _data, "recommend": _recommend}[
        args.command
    ]
    try:
        if args.command in ("evaluate", "export"):
            _check_run_config(args.run, args.set, args.command)
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
