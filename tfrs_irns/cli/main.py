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

# Examples shown under each command's --help.
_EXAMPLES = {
    "train": """examples:
  tfrs-irns train --config configs/quickstart.yaml
  tfrs-irns train --config configs/quickstart.yaml --set train.epochs=3 export.publish=never
  tfrs-irns train --resume runs/quickstart-20260101-120000   # continue an interrupted run""",
    "evaluate": """examples:
  tfrs-irns evaluate --run runs/quickstart-20260101-120000
  tfrs-irns evaluate --run runs/quickstart-20260101-120000 --set eval.exclude_seen=true""",
    "export": """examples:
  tfrs-irns export --run runs/quickstart-20260101-120000
  tfrs-irns export --run runs/quickstart-20260101-120000 --set export.name=candidate export.index=faiss""",
    "data": """examples:
  tfrs-irns data --config configs/quickstart.yaml
  tfrs-irns data --config configs/movielens-latest-small.yaml --json data-summary.json""",
}


def _with_examples(command: str) -> dict:
    return {"epilog": _EXAMPLES[command], "formatter_class": argparse.RawDescriptionHelpFormatter}


def _parser() -> argparse.ArgumentParser:
    from tfrs_irns._version import __version__
    from tfrs_irns.cli import models, report

    parser = argparse.ArgumentParser(
        prog="tfrs-irns", description=__doc__.splitlines()[0],
        epilog="examples:\n  tfrs-irns train --config configs/quickstart.yaml\n"
        "  tfrs-irns recommend --model saved_models/quickstart --user u42\n  tfrs-irns runs\n\n"
        "tfrs-irns COMMAND --help shows each command's options and examples.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tfrs-irns {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser(
        "train", help="train a model from a YAML config, evaluate it, export it", **_with_examples("train")
    )
    train.add_argument("--config", help="YAML config (see configs/)")
    train.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="override config keys")
    train.add_argument("--output", help="run directory (default runs/<config name>-<timestamp>); must not hold a run")
    train.add_argument("--resume", metavar="DIR", help="continue the interrupted run in DIR from its last backup")

    evaluate = sub.add_parser(
        "evaluate", help="re-evaluate a finished run; writes <run>/evaluations/<time>.json", **_with_examples("evaluate")
    )
    evaluate.add_argument("--run", required=True, help="run directory written by train")
    evaluate.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="override eval.* keys")
    evaluate.add_argument(
        "--allow-changed-data",
        action="store_true",
        help="evaluate even if the data under the run's config changed since training",
    )

    export = sub.add_parser(
        "export", help="publish a finished run as the next SavedModel version (needs no data)", **_with_examples("export")
    )
    export.add_argument("--run", required=True, help="run directory written by train")
    export.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="override export.* keys")

    data = sub.add_parser(
        "data", help="load and split a config's data; print what training will see", **_with_examples("data")
    )
    data.add_argument("--config", required=True, help="YAML config (see configs/)")
    data.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="override config keys")
    data.add_argument("--json", help="also write the summary to this file")

    add_recommend(sub)
    for module in (models, report):  # commands in their own modules
        _HANDLERS.update(module.add_parser(sub))
    return parser


# Handlers of the commands defined in their own modules (filled by _parser).
_HANDLERS: dict = {}


def _check_run_config(run_dir: str, overrides: Sequence[str], command: str) -> None:
    """A bad override of a run's config stops before TensorFlow loads (load_run checks the rest)."""
    from tfrs_irns.runs.rundir import RunDir

    folder = RunDir(run_dir)
    if folder.has_config():
        folder.read_config(overrides, sections=(_SECTIONS[command],))


# The only config section evaluate and export may override: the model is the run's.
_SECTIONS = {"evaluate": "eval", "export": "export"}


def _train(args: argparse.Namespace) -> None:
    from tfrs_irns.config import load_config
    from tfrs_irns.runs.rundir import RunDir, default_run_dir

    if args.resume is not None:
        # The run continues with the config it started with, saved in its folder.
        if args.config is not None or args.output is not None:
            raise UserError("--resume DIR takes the config and the output folder from DIR; drop --config and --output")
        if args.set:
            raise UserError(f"--set cannot change a run being resumed (its config is {RunDir(args.resume).config})")
        import_tensorflow()  # runs.training loads TensorFlow: quietly, as for the other commands
        from tfrs_irns.runs.training import resume_config

        config = resume_config(args.resume)
    elif args.config is None:
        raise UserError("the following arguments are required: --config (or --resume DIR)")
    else:
        config = load_config(args.config, args.set)
    import_tensorflow()  # after the config is known good: TensorFlow is slow to load
    from tfrs_irns.runs import train

    resume = args.resume is not None
    # Named now, so an interrupt can say which folder --resume continues.
    args.run_dir = args.resume if resume else (args.output or default_run_dir(config.name))
    run = train(config, args.run_dir, resume=resume)
    if not run.is_chief:  # a multi-worker run: the chief writes and exports
        print("worker done (the chief writes the run folder)")
        return
    if run.exported is not None:
        if run.exported.published:
            print(f"exported to {run.exported.published} ({run.exported.reason})")
        else:
            print(
                f"not published ({run.exported.reason}); the model is in {run.exported.local}; "
                f"to publish it: tfrs-irns export --run {run.directory}"
            )
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
    from tfrs_irns.cli.data import format_streamed_summary, format_summary
    from tfrs_irns.config import load_config
    from tfrs_irns.data.summary import data_report
    from tfrs_irns.runs.wording import config_words

    if args.json and os.path.isdir(args.json):
        raise UserError(f"--json {args.json}: is a folder, expected a file name")
    with config_words():
        config = load_config(args.config, args.set)
        if config.data.streaming:  # reported from the shards (the cache train would use), never loaded whole
            from tfrs_irns.data.streaming import streamed_summary
            from tfrs_irns.runs.rundir import RunDir, default_run_dir

            cache_root = RunDir(default_run_dir(config.name)).streaming_cache_root()
            report = streamed_summary(config.data, cache_root)
        else:
            report = data_report(config.data)
    print(format_streamed_summary(report) if config.data.streaming else format_summary(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report, fh, indent=2)


def _recommend(args: argparse.Namespace) -> None:
    run_recommend(args)


def _interrupted(args: argparse.Namespace) -> str:
    """The interrupt message; for train, how to continue the run if it has a backup to continue from."""
    run_dir = getattr(args, "run_dir", None)
    if args.command == "train" and run_dir:
        from tfrs_irns.runs.rundir import RunDir

        folder = RunDir(run_dir)
        if folder.holds_run() and not folder.finished():
            return f"interrupted; continue the run with: tfrs-irns train --resume {run_dir}"
    return "interrupted"


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"train": _train, "evaluate": _evaluate, "export": _export, "data": _data, "recommend": _recommend}
    handler = {**handlers, **_HANDLERS}[args.command]
    try:
        if args.command in ("evaluate", "export"):
            _check_run_config(args.run, args.set, args.command)
        handler(args)
    except UserError as exc:
        print(f"tfrs-irns {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tfrs-irns {args.command}: {_interrupted(args)}", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
