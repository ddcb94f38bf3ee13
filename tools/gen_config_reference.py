"""Write docs/configuration.md from the config fields (tfrs_irns/config.py).

    python tools/gen_config_reference.py            # regenerate the reference
    python tools/gen_config_reference.py --check    # exit 1 if it is stale

The reference is rendered, never hand-written, so it cannot drift from the
keys, defaults and rules that loading actually applies.
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # the checkout's package, installed or not

from tfrs_irns.config_reference import REFERENCE_COMMAND, reference_markdown  # noqa: E402

DEFAULT_OUTPUT = os.path.join(ROOT, "docs", "configuration.md")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the file is up to date")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="where the reference goes (default docs/configuration.md)")
    args = parser.parse_args(argv)
    text = reference_markdown()
    if args.check:
        try:
            with open(args.output, encoding="utf-8") as fh:
                current = fh.read()
        except OSError:
            current = None
        if current != text:
            print(f"{args.output} is stale: run `{REFERENCE_COMMAND}`", file=sys.stderr)
            return 1
        return 0
    with open(args.output, "w", encoding="utf-8") as fh:
        fh.write(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
