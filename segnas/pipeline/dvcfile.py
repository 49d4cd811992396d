"""Reading ``dvc.yaml``: its stages, their declared outputs and the metrics files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..io import read_yaml


def dvc_stages(root: str | Path = ".") -> dict[str, dict[str, Any]]:
    """The ``stages`` mapping of ``dvc.yaml`` in file order (prepare ... report)."""
    path = Path(root) / "dvc.yaml"
    stages = (read_yaml(path) or {}).get("stages")
    if not isinstance(stages, dict):
        raise ConfigError(f"{path}: no 'stages' mapping")
    return stages


def _out_paths(entries: list[Any]) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else str(e) for e in entries or []]


def stage_outputs(root: str | Path = ".") -> dict[str, list[str]]:
    """Each stage's declared outputs (``outs``, ``metrics`` and ``plots``) from ``dvc.yaml``."""
    return {
        name: _out_paths(spec.get("outs")) + _out_paths(spec.get("metrics"))
        for name, spec in dvc_stages(root).items()
    }


def metric_files(root: str | Path = ".") -> list[str]:
    """All files declared as ``metrics`` in ``dvc.yaml`` (by stages and at the top level)."""
    staged = [p for spec in dvc_stages(root).values() for p in _out_paths(spec.get("metrics"))]
    top = (read_yaml(Path(root) / "dvc.yaml") or {}).get("metrics") or []
    return staged + [str(p) for p in top]
