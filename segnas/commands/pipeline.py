"""``segnas dvc-yaml``: write ``dvc.yaml`` from the stage registry, or check that it is current."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..io import write_text
from ..pipeline.dvcgen import render_dvc_yaml


def _dvc_yaml(args: argparse.Namespace) -> int:
    path = Path(args.root) / "dvc.yaml"
    text = render_dvc_yaml(args.root)
    current = path.read_text(encoding="utf-8") if path.is_file() else None
    if args.check:
        if current == text:
            print(f"{path} is up to date")
            return 0
        print(f"{path} differs from the stage registry; run `segnas dvc-yaml` to regenerate it")
        return 1
    if current != text:
        write_text(path, text)
    print(f"wrote {path}" if current != text else f"{path} is up to date")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dvc-yaml``."""
    parser = subparsers.add_parser(
        "dvc-yaml", help="write dvc.yaml from the stage registry (--check: only compare)"
    )
    parser.add_argument("--root", default=".", help="repository root (default .)")
    parser.add_argument("--check", action="store_true", help="exit 1 when dvc.yaml is stale")
    parser.set_defaults(func=_dvc_yaml)
