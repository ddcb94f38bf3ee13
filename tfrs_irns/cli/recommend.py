"""``tfrs-irns recommend``: one user, one history, or a file of users, from an export.

:mod:`tfrs_irns.export.recommend` answers and names its own arguments; this
module words its errors and notes as the flags a user typed, with the hint of
how to export a model that can answer.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Iterator

from tfrs_irns.cli.quiet import import_tensorflow
from tfrs_irns.errors import UserError

#: The library's arguments → this command's flags.
FLAGS = {
    "k": "-k", "history": "--history", "files": "--history-file", "index": "--index",
    "include_seen": "--include-seen", "output": "--output", "path": "--users",
}

EXAMPLES = """examples:
  tfrs-irns recommend --model saved_models/quickstart --user u42
  tfrs-irns recommend --model saved_models/quickstart --user u42 -k 20 --include-seen --json
  tfrs-irns recommend --model saved_models/hist --history m1 --history "Toy Story, The" --history-file recent.txt
  tfrs-irns recommend --model saved_models/quickstart --users users.txt --output recs.parquet -k 100
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    recommend = sub.add_parser(
        "recommend", help="top items for a user from an exported model", epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    recommend.add_argument("--model", required=True, help="saved_models/<name> or saved_models/<name>/<version>")
    who = recommend.add_mutually_exclusive_group()
    who.add_argument("--user", help="raw user id")
    who.add_argument("--users", metavar="FILE", help="a file of user ids, one per line (with --output)")
    recommend.add_argument(
        "--history", metavar="ID", action="append", default=[],
        help="an item id the user interacted with, oldest first; repeat the flag for more (ID,ID,... is split "
             "on commas unless the model knows the whole value as one id); models with a history user tower",
    )
    recommend.add_argument(
        "--history-file", metavar="FILE", action="append", default=[],
        help="item ids of a history, one per line, taken whole (ids may contain commas)",
    )
    recommend.add_argument("-k", type=int, default=10, help="how many items (default 10)")
    recommend.add_argument("--index", action="store_true", help="answer from the export's ANN index (export.index)")
    recommend.add_argument(
        "--include-seen", action="store_true",
        help="keep the items the user already has (their training interactions; left out by default)",
    )
    recommend.add_argument("--json", action="store_true", help="print one user's answer as one JSON object")
    recommend.add_argument("--output", metavar="PATH", help="with --users: write .jsonl or .parquet, one row per user")


def _hints(args: argparse.Namespace) -> dict[str, str]:
    """How to export a model that answers, by the argument an error names (the other
    errors naming these arguments are caught before the export is asked)."""
    return {
        "k": f" or re-export with --set export.k={args.k}",
        "index": "; export with --set export.index=faiss",
        "history": '; train with --set "model.user_features=[history]"',
    }


@contextlib.contextmanager
def _flag_words(args: argparse.Namespace) -> Iterator[None]:
    """Reraise the library's errors naming its arguments as this command's flags, with their hint."""
    try:
        yield
    except UserError as exc:
        if not exc.arguments:
            raise
        hints = _hints(args)
        extra = "".join(hints[a] for a in exc.arguments if a in hints)
        raise UserError(str(exc.reworded(FLAGS)) + extra) from None


def run(args: argparse.Namespace) -> None:
    has_history = bool(args.history or args.history_file)
    if sum(x for x in (args.user is not None, args.users is not None, has_history)) != 1:
        raise UserError("give one of --user ID, --users FILE, or --history ID / --history-file FILE")
    if args.users is not None and args.output is None:
        raise UserError("--users FILE needs --output PATH (.jsonl or .parquet)")
    if args.output is not None and args.users is None:
        raise UserError("--output writes the answers for --users FILE; for one user use --json")
    if args.json and args.users is not None:
        raise UserError("--json prints one user's answer; --users writes to --output")
    if has_history and args.include_seen:
        raise UserError("--include-seen is for --user/--users: a --history excludes the items it names")
    if has_history and args.index:
        raise UserError("--index answers for a --user; --history goes through recommend_from_history")
    if args.k < 1:
        raise UserError(f"-k: must be at least 1, got {args.k}")
    import_tensorflow()
    with _flag_words(args):
        _answer(args, has_history)


def _answer(args: argparse.Namespace, has_history: bool) -> None:
    from tfrs_irns.export.recommend import history_ids, read_user_ids, recommend, recommend_json, recommend_many

    if args.users is not None:
        users = read_user_ids(args.users)
        done = recommend_many(args.model, users, args.output, args.k, index=args.index, include_seen=args.include_seen)
        print(
            f"wrote {done['users']:,} users' top {args.k} to {done['output']} "
            f"({done['users_per_second']:,} users/s; {done['unknown_users']:,} unknown users got the "
            "out-of-vocabulary answer)"
        )
        return
    history = history_ids(args.model, args.history, args.history_file) if has_history else None
    if has_history and not history:
        raise UserError("--history: give at least one item id (--history ID, repeated, or --history-file FILE)")
    answer = recommend_json if args.json else recommend
    answer(args.model, args.user, args.k, out=sys.stdout, index=args.index, history=history,
           include_seen=args.include_seen, names=FLAGS)
