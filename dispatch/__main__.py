"""The ``dispatch`` command line (also ``python -m dispatch``).

Sub-commands:
    serve              run the service (REST + websockets) under uvicorn
    summary            the county dataset at a glance and a first 1-3-5 coverage table
    dataset build      regenerate data/gucheng/ from its sources (deterministic, seeded)
    dataset validate   check every invariant of a county dataset folder
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from dispatch.errors import DispatchError

DEFAULT_DATASET = Path(__file__).resolve().parent.parent / "data" / "gucheng"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dispatch", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the dispatch service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--demo", action="store_true", help="load the Gucheng roster and print tokens"
    )

    summary = sub.add_parser("summary", help="dataset summary and a first coverage table")
    summary.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)

    dataset = sub.add_parser("dataset", help="build or validate a county dataset")
    dsub = dataset.add_subparsers(dest="action", required=True)
    build = dsub.add_parser("build", help="regenerate the Gucheng dataset from its sources")
    build.add_argument("--out", type=Path, default=DEFAULT_DATASET)
    build.add_argument("--seed", type=int, default=None, help="default: the documented seed")
    validate = dsub.add_parser("validate", help="check every invariant of a dataset folder")
    validate.add_argument("path", type=Path, nargs="?", default=DEFAULT_DATASET)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            from dispatch.serve import serve
            from dispatch.settings import Settings

            return serve(Settings.from_env(), host=args.host, port=args.port, demo=args.demo)
        if args.command == "summary":
            from dispatch.summary import print_summary

            print_summary(args.dataset)
        elif args.action == "build":
            from geo.dataset.build import DEFAULT_SEED, build

            build(args.out, seed=DEFAULT_SEED if args.seed is None else args.seed)
        else:
            from geo.dataset.validate import validate

            report = validate(args.path)
            print(report)
            return 0 if report.ok else 1
    except DispatchError as exc:
        print(f"dispatch: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
