"""Loading ``params.yaml`` (safe YAML) and reading sections with key-path errors.

Stage entry points call these; library functions take explicit arguments instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ConfigError
from .io import read_yaml


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read the params file with the safe loader; it must be a mapping."""
    params = read_yaml(path)
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {params!r}")
    return params


def section(params: dict[str, Any], key: str, path: str | Path = "params.yaml") -> dict[str, Any]:
    """Return ``params[key]``, which must be a mapping, with an error naming the key."""
    value = params.get(key)
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: section {key!r} is missing or not a mapping")
    return value
