"""The ``segnas`` console script."""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import SegnasError

COMMAND_MODULES = (
    "segnas.commands.arch",
    "segnas.commands.audit",
    "segnas.commands.bench",
    "segnas.commands.config",
    "segnas.commands.data",
    "segnas.commands.pipeline",
    "segnas.commands.predict",
    "segnas.commands.repro",
    "segnas.commands.study",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="segnas",
        description="Template-based search of compact semantic segmentation architectures.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; user errors print one clear line and exit with status 2."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SegnasError as exc:
        print(f"segnas: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
