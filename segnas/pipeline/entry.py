"""The one entry every stage script goes through: ``--params``, the project root checked, the
params restricted to the sections the stage registry declares for the stage (reading another
one is a bug, and fails), user errors printed as one line ``<stage>: error: ...`` with exit
status 2, and the stage's closing line on success."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..config import load_params
from ..errors import SegnasError
from .paths import require_project_root
from .stages import stage

# the repository the stage scripts live in (where a user should cd to)
REPO = Path(__file__).resolve().parents[2]


class UndeclaredSection(KeyError):
    """A stage read a params section its registry entry does not declare (a bug in the stage
    or the registry, never the user's)."""


class DeclaredParams(dict):
    """The params sections ``stage`` declares; any other section raises
    :class:`UndeclaredSection` (so DVC's and Snakemake's rerun triggers stay true)."""

    def __init__(self, params: Mapping[str, Any], stage_name: str) -> None:
        sections = stage(stage_name).sections
        super().__init__({k: v for k, v in params.items() if k in sections})
        self.stage_name = stage_name
        self.sections = sections

    def _refuse(self, key: object) -> UndeclaredSection:
        return UndeclaredSection(
            f"stage {self.stage_name!r} read params section {key!r}, which the stage registry "
            f"(segnas/pipeline/stages.py) does not declare for it (declared: "
            f"{', '.join(self.sections)}); declare it there or stop reading it"
        )

    def __missing__(self, key: object) -> Any:
        raise self._refuse(key)

    def get(self, key: object, default: Any = None) -> Any:
        if key not in self.sections:
            raise self._refuse(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        if key not in self.sections:
            raise self._refuse(key)
        return super().__contains__(key)


Body = Callable[[DeclaredParams, argparse.Namespace], str]


def run_stage(
    name: str,
    body: Body,
    argv: list[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    description: str | None = None,
) -> int:
    """Parse ``--params`` (and ``add_arguments``'), refuse to run outside a project root,
    read the params as the stage may see them, run ``body(params, args)`` and print the line
    it returns; a user error (``SegnasError``) prints ``<name>: error: ...`` and returns 2."""
    parser = argparse.ArgumentParser(description=description or stage(name).desc)
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        require_project_root(REPO / stage(name).script)
        params = DeclaredParams(load_params(args.params), name)
        message = body(params, args)
    except SegnasError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    if message:
        print(message)
    return 0
