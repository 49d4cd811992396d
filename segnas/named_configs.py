"""Named configurations as a base and overlays: ``configs/base.yaml`` holds every key with a
comment (its values are the quickstart's), ``configs/<name>.yaml`` only what differs, with its
own header. ``render_config`` merges them into the complete, commented text (``config_text``)
that ``segnas config use`` (``use_config``) writes to ``params.yaml``. A configs folder without
``base.yaml`` holds complete files.

Merging: a mapping in the overlay merges key by key into the base's (a key's comment travels
with its new value); a value that is not a mapping, a flow-style mapping (one line) and the
mappings of names in ``REPLACED_WHOLE`` (e.g. ``datasets``) replace the base's whole.
"""

from __future__ import annotations

import contextlib
import difflib
import io
from pathlib import Path
from typing import Any

import yaml

from .config import changed_keys, is_overlay, load_params
from .errors import ConfigError
from .io import read_yaml, write_text

BASE = "base"
CONFIGS_DIR = Path("configs")
REPLACED_WHOLE = ("datasets",)


def _round_trip() -> Any:
    from ruamel.yaml import YAML  # loaded only where configurations are rendered

    loader = YAML()
    loader.preserve_quotes = True
    loader.width = 100
    loader.indent(mapping=2, sequence=4, offset=2)
    loader.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return loader


def split_header(text: str) -> tuple[str, str]:
    """(the leading comment block with the blank lines after it, the rest)."""
    lines = text.splitlines(keepends=True)
    end = 0
    while end < len(lines) and (lines[end].startswith("#") or not lines[end].strip()):
        end += 1
    return "".join(lines[:end]), "".join(lines[end:])


def _is_flow(node: Any) -> bool:
    return bool(getattr(getattr(node, "fa", None), "flow_style", lambda: False)())


def merge_overlay(base: Any, overlay: Any, where: str = "") -> None:
    """Merge the round-trip mapping ``overlay`` into ``base`` in place (see the module)."""
    for key, value in overlay.items():
        name = f"{where}{key}"
        if key not in base:
            raise ConfigError(f"{name}: not a key of {BASE}.yaml; add it there first")
        old = base[key]
        nested = hasattr(value, "items") and hasattr(old, "items")
        if nested and not _is_flow(value) and not _is_flow(old) and name not in REPLACED_WHOLE:
            merge_overlay(old, value, f"{name}.")
            continue
        base[key] = value
        comment = overlay.ca.items.get(key)
        if comment is not None:
            base.ca.items[key] = comment


def render_config(path: str | Path) -> str:
    """The complete text of the configuration in ``path``: the file itself, or, beside a
    ``base.yaml``, its header followed by the base with the file merged in."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    base_path = path.parent / f"{BASE}.yaml"
    if path.stem == BASE or not base_path.is_file():
        return text
    read_yaml(path)  # duplicate keys, bad YAML: refused naming the file and line
    read_yaml(base_path)
    loader = _round_trip()
    header, body = split_header(text)
    _, base_body = split_header(base_path.read_text(encoding="utf-8"))
    merged = loader.load(base_body)
    overlay = loader.load(body)
    if overlay:
        try:
            merge_overlay(merged, overlay)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    out = io.StringIO()
    loader.dump(merged, out)
    body = "".join(line.rstrip() + "\n" for line in out.getvalue().splitlines())
    return header + body


def merge_values(base: dict[str, Any], overlay: dict[str, Any], where: str = "") -> dict[str, Any]:
    """The values ``render_config`` gives, from plain mappings (no comments, no ruamel): a
    flow mapping is written whole in an overlay, so merging it key by key replaces it."""
    merged = dict(base)
    for key, value in overlay.items():
        name = f"{where}{key}"
        if key not in base:
            raise ConfigError(f"{name}: not a key of {BASE}.yaml; add it there first")
        nested = isinstance(value, dict) and isinstance(base[key], dict)
        if nested and name not in REPLACED_WHOLE:
            merged[key] = merge_values(base[key], value, f"{name}.")
        else:
            merged[key] = value
    return merged


def load_rendered(path: str | Path) -> dict[str, Any]:
    """The values of the configuration in ``path`` (merged with ``base.yaml`` when there),
    read with PyYAML alone (the bare GPU machine reads configurations this way)."""
    path = Path(path)
    values = read_yaml(path)
    base_path = path.parent / f"{BASE}.yaml"
    if path.stem != BASE and base_path.is_file():
        base = read_yaml(base_path)
        try:
            values = merge_values(base, values or {})
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of params sections")
    return values


def available_configs(configs_dir: str | Path = CONFIGS_DIR) -> list[str]:
    """Names of the named configurations (``configs/<name>.yaml``; ``base.yaml`` is what the
    others start from, not a configuration)."""
    return sorted(p.stem for p in Path(configs_dir).glob("*.yaml") if p.stem != "base")


def config_path(name: str, configs_dir: str | Path = CONFIGS_DIR) -> Path:
    """The file of configuration ``name``; an unknown name lists the known ones."""
    known = available_configs(configs_dir)
    if not known:
        raise ConfigError(
            f"no configurations found in {configs_dir}/; run segnas from the repository root"
        )
    if name not in known:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"unknown configuration {name!r}{hint}; known: {', '.join(known)} "
            f"(files in {configs_dir}/)"
        )
    return Path(configs_dir) / f"{name}.yaml"


def config_text(name: str, configs_dir: str | Path = CONFIGS_DIR) -> str:
    """The complete text ``segnas config use NAME`` writes: ``configs/<name>.yaml`` merged
    with ``configs/base.yaml`` where there is one."""
    source = config_path(name, configs_dir)
    if not is_overlay(source):
        return source.read_text(encoding="utf-8")
    return render_config(source)


def use_config(
    name: str, params_path: str | Path = "params.yaml", configs_dir: str | Path = CONFIGS_DIR
) -> list[str]:
    """Validate ``configs/<name>.yaml`` and write it (merged with ``configs/base.yaml``: the
    complete, commented text of ``config_text``) to ``params_path`` atomically.

    Returns the dotted keys whose values changed (empty when it was already in use).
    """
    source = config_path(name, configs_dir)
    text = config_text(name, configs_dir)
    new = load_params(source, require_all=True)
    old: Any = {}
    if Path(params_path).is_file():
        with contextlib.suppress(yaml.YAMLError):
            old = yaml.safe_load(Path(params_path).read_text(encoding="utf-8"))
    write_text(params_path, text)
    return changed_keys(old if isinstance(old, dict) else {}, new)
