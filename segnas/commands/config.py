"""``segnas config``: switch ``params.yaml`` to a named configuration and validate params files."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

import yaml

from ..config import flatten, load_params
from ..errors import ConfigError
from ..io import write_text
from ..named_configs import CONFIGS_DIR, available_configs, config_path, config_text, use_config

_ABSENT = "(absent)"


def _parsed(text: str) -> Any:
    with contextlib.suppress(yaml.YAMLError):
        return yaml.safe_load(text)
    return None


def _known_configuration(text: str, configs_dir: str) -> bool:
    """Whether ``text`` is, character for character, one of the named configurations.

    Values alone are not enough: a file that differs only in comments or layout holds edits
    (notes) that copying a configuration over it would lose.
    """
    return any(config_text(name, configs_dir) == text for name in available_configs(configs_dir))


def _same_values_as(text: str, configs_dir: str) -> str | None:
    """The name of a configuration with the values of ``text`` (its text differs), if any."""
    values = _parsed(text)
    if values is None:
        return None
    for name in available_configs(configs_dir):
        if _parsed(config_text(name, configs_dir)) == values:
            return name
    return None


def _backup_path(params: Path) -> Path:
    number = 1
    while (path := params.with_name(f"{params.name}.backup-{number}")).exists():
        number += 1
    return path


def _diff_lines(old: Any, new: Any, keys: list[str]) -> list[str]:
    flat_old = flatten(old) if isinstance(old, dict) else {}
    flat_new = flatten(new) if isinstance(new, dict) else {}
    return [
        f"  {key}: {flat_old.get(key, _ABSENT)} -> {flat_new.get(key, _ABSENT)}" for key in keys
    ]


def _use(args: argparse.Namespace) -> int:
    params = Path(args.params)
    config_path(args.name, args.configs_dir)  # an unknown name fails before anything else
    if params.is_dir():
        raise ConfigError(f"{params} is a directory, not a params file")
    old_text = params.read_text(encoding="utf-8", errors="replace") if params.is_file() else None
    backup = None
    if old_text is not None and not _known_configuration(old_text, args.configs_dir):
        backup = _backup_path(params)
        if not args.force:
            same = _same_values_as(old_text, args.configs_dir)
            how = (
                f"has the values of configuration {same!r} but not its text (comments or "
                "layout edited by hand?)"
                if same
                else f"differs from every configuration in {args.configs_dir}/ (edited by hand?)"
            )
            raise ConfigError(
                f"{params} {how}; it was left unchanged. Rerun with --force to replace it "
                f"(a copy is kept as {backup}), or save it as {args.configs_dir}/<name>.yaml first"
            )
        write_text(backup, old_text)
    changed = use_config(args.name, args.params, args.configs_dir)
    if backup is not None:
        print(f"kept the previous {params} as {backup}")
    if changed:
        new = _parsed(config_text(args.name, args.configs_dir))
        lines = _diff_lines(_parsed(old_text or ""), new, changed)
        print(f"{params} now holds configuration {args.name!r}; {len(changed)} keys changed:")
        print("\n".join(lines))
    else:
        print(f"{params} already held configuration {args.name!r}; nothing changed")
    return 0


def _validate(args: argparse.Namespace) -> int:
    files = args.files or [args.params]
    for name in files:
        path = config_path(name[1:], args.configs_dir) if name.startswith("@") else name
        load_params(path, require_all=True)
        print(f"{path}: valid")
    return 0


def _show(args: argparse.Namespace) -> int:
    sys.stdout.write(config_text(args.name, args.configs_dir))
    return 0


def _list(args: argparse.Namespace) -> int:
    for name in available_configs(args.configs_dir):
        print(name)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``config use|show|validate|list``."""
    config = subparsers.add_parser("config", help="switch and validate params.yaml")
    config.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    config.add_argument(
        "--configs-dir", default=str(CONFIGS_DIR), help="named configurations (default configs/)"
    )
    sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")

    use = sub.add_parser(
        "use",
        help="write configuration NAME (configs/base.yaml + configs/NAME.yaml) to params.yaml",
    )
    use.add_argument("name", help="configuration name, e.g. quickstart, camvid-cpu, paper")
    use.add_argument(
        "--force",
        action="store_true",
        help="replace a params file that matches no configuration (a backup copy is kept)",
    )
    use.set_defaults(func=_use)

    validate = sub.add_parser(
        "validate", help="check params files against segnas/params.schema.yaml"
    )
    validate.add_argument(
        "files", nargs="*", help="files to check (default params.yaml); @NAME = configs/NAME.yaml"
    )
    validate.set_defaults(func=_validate)

    show = sub.add_parser("show", help="print the complete params file configuration NAME is")
    show.add_argument("name", help="configuration name")
    show.set_defaults(func=_show)

    listing = sub.add_parser("list", help="list the named configurations")
    listing.set_defaults(func=_list)
