"""``tfrs-irns models list | rollback``: the published versions of a model folder."""

from __future__ import annotations

import argparse
from typing import Any, Callable

from tfrs_irns.cli.quiet import import_tensorflow
from tfrs_irns.errors import UserError

EPILOG = """examples:
  tfrs-irns models list saved_models/quickstart
  tfrs-irns models rollback saved_models/quickstart --to 3

TF Serving (and tfrs-irns recommend) serve the highest version number; a
rollback publishes a copy of the chosen version as the next number."""


def add_parser(sub: Any) -> dict[str, Callable[[argparse.Namespace], None]]:
    """Add ``models`` to the CLI's subparsers; returns its handler by command name."""
    models = sub.add_parser(
        "models", help="list a model folder's published versions, or roll back to one",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    action = models.add_subparsers(dest="models_command", required=True)
    listing = action.add_parser(
        "list", help="version, time, data fingerprint, validation metric, size",
        epilog="example:\n  tfrs-irns models list saved_models/quickstart",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    listing.add_argument("model_dir", metavar="MODEL_DIR", help="<export.base_dir>/<name>, e.g. saved_models/quickstart")
    back = action.add_parser(
        "rollback", help="republish version V as the newest version (atomically)",
        epilog="example:\n  tfrs-irns models rollback saved_models/quickstart --to 3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    back.add_argument("model_dir", metavar="MODEL_DIR", help="<export.base_dir>/<name>, e.g. saved_models/quickstart")
    back.add_argument("--to", required=True, metavar="V", help="the version to serve again")
    return {"models": run}


def run(args: argparse.Namespace) -> None:
    import_tensorflow()  # the export package loads TensorFlow: quietly
    from tfrs_irns.export.published import format_versions, list_versions, rollback

    if args.models_command == "list":
        print(format_versions(list_versions(args.model_dir)))
        return
    if not str(args.to).isdigit():
        raise UserError(f"--to {args.to}: expected a version number (see tfrs-irns models list {args.model_dir})")
    published = rollback(args.model_dir, int(args.to))
    if published is None:
        print(f"version {args.to} is already the served (highest) version of {args.model_dir}; nothing published")
    else:
        print(f"published version {args.to} again as {published}; TF Serving serves it now")
