"""The ``segnas`` console script."""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from typing import NoReturn

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


class _RequiredMissing(Exception):
    """argparse found a required argument missing (its message)."""


_NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


class _Parser(argparse.ArgumentParser):
    """argparse, except that an unknown option is named as such even where a required
    argument (the COMMAND) is also missing: ``segnas --frobnicate`` said only "the following
    arguments are required: COMMAND"."""

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        argv = list(sys.argv[1:] if args is None else args)
        try:
            return super().parse_known_args(argv, namespace)
        except _RequiredMissing as exc:
            unknown = [
                arg
                for arg in argv
                if arg.startswith("-")
                and arg != "-"
                and not _NEGATIVE_NUMBER.match(arg)
                and arg.split("=", 1)[0] not in self._option_string_actions
            ]
            if unknown:
                argparse.ArgumentParser.error(
                    self,
                    f"unrecognized option {unknown[0]!r}; see {self.prog} --help for the "
                    "options and commands it takes (a command's options follow the command)",
                )
            argparse.ArgumentParser.error(self, str(exc))

    def error(self, message: str) -> NoReturn:
        if message.startswith("the following arguments are required"):
            raise _RequiredMissing(message)
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    parser = _Parser(
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
