"""``tfrs-irns report RUN`` and ``tfrs-irns runs [DIR]``: runs a person can read and compare."""

from __future__ import annotations

import argparse
from typing import Any, Callable

from tfrs_irns.cli.quiet import import_tensorflow

REPORT_EPILOG = """examples:
  tfrs-irns report runs/quickstart-20260101-120000
  tfrs-irns report runs/quickstart-20260101-120000 --output /tmp/quickstart.md
  tfrs-irns report runs/quickstart-20260101-120000 --no-plots

The plots need matplotlib: pip install 'tfrs-irns[report]'."""
RUNS_EPILOG = """examples:
  tfrs-irns runs
  tfrs-irns runs experiments/"""


def add_parser(sub: Any) -> dict[str, Callable[[argparse.Namespace], None]]:
    """Add ``report`` and ``runs`` to the CLI's subparsers; returns their handlers by command name."""
    report = sub.add_parser(
        "report", help="write report.md for a finished run: loss and validation curves, head/tail, baseline",
        epilog=REPORT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("run", metavar="RUN", help="run directory written by train")
    report.add_argument("--output", help="the report's file (default RUN/report.md); PNGs go to report/ beside it")
    report.add_argument("--no-plots", action="store_true", help="tables only (no matplotlib needed)")
    runs = sub.add_parser(
        "runs", help="list the runs in a folder with their key metrics side by side",
        epilog=RUNS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    runs.add_argument("folder", metavar="DIR", nargs="?", default="runs", help="folder of run directories (default runs)")
    return {"report": _report, "runs": _runs}


def _report(args: argparse.Namespace) -> None:
    import_tensorflow()  # the runs package loads TensorFlow: quietly
    from tfrs_irns.runs.report import write_report

    print(f"report written to {write_report(args.run, args.output, plots=not args.no_plots)}")


def _runs(args: argparse.Namespace) -> None:
    import_tensorflow()
    from tfrs_irns.runs.listing import find_runs, format_runs

    print(format_runs(find_runs(args.folder), args.folder))
