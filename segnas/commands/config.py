"""``segnas config``: switch ``params.yaml`` to a named configuration and validate params files."""

from __future__ import annotations

import argparse

from ..config import (
    CONFIGS_DIR,
    available_configs,
    config_path,
    load_params,
    use_config,
)


def _use(args: argparse.Namespace) -> int:
    changed = use_config(args.name, args.params, args.configs_dir)
    if changed:
        shown = ", ".join(changed[:12]) + (
            f", ... ({len(changed)} in all)" if len(changed) > 12 else ""
        )
        print(f"{args.params} now holds configuration {args.name!r}; changed: {shown}")
    else:
        print(f"{args.params} already held configuration {args.name!r}; nothing changed")
    return 0


def _validate(args: argparse.Namespace) -> int:
    files = args.files or [args.params]
    for name in files:
        path = config_path(name[1:], args.configs_dir) if name.startswith("@") else name
        load_params(path, require_all=True)
        print(f"{path}: valid")
    return 0


def _list(args: argparse.Namespace) -> int:
    for name in available_configs(args.configs_dir):
        print(name)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``config use|validate|list``."""
    config = subparsers.add_parser("config", help="switch and validate params.yaml")
    config.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    config.add_argument(
        "--configs-dir", default=str(CONFIGS_DIR), help="named configurations (default configs/)"
    )
    sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")

    use = sub.add_parser("use", help="copy configs/NAME.yaml to params.yaml (after validating it)")
    use.add_argument("name", help="configuration name, e.g. quickstart, camvid-cpu, paper")
    use.set_defaults(func=_use)

    validate = sub.add_parser(
        "validate", help="check params files against segnas/params.schema.yaml"
    )
    validate.add_argument(
        "files", nargs="*", help="files to check (default params.yaml); @NAME = configs/NAME.yaml"
    )
    validate.set_defaults(func=_validate)

    listing = sub.add_parser("list", help="list the named configurations")
    listing.set_defaults(func=_list)
