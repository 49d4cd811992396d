"""Per-stage params files: what lets Snakemake see a params change after a DVC run.

Snakemake's params rerun trigger compares with its own metadata, which outputs made by
``dvc repro`` do not have; without it Snakemake decides by modification times only and misses
an edit of ``params.yaml``. So every Snakemake rule of a stage also reads a small file holding
the params that decide the stage's results (``Stage.params``: its sections, less the run-only
keys), and that file changes only when those params do:

* its content is today's params; it is rewritten only when they differ from what it holds, so
  an unchanged file keeps its time and triggers nothing;
* a rewritten file is dated now (newer than the stage's outputs: Snakemake reruns the stage and
  everything after it), unless the outputs were made with exactly these params: then it is
  dated long ago. What they were made with is the newer of two records: ``dvc.lock``'s entry
  for the stage (DVC ran it) and ``<stage>.made.json``, the params file the stage's last rule
  copies once it succeeded (Snakemake ran it; :func:`made_path`).

The files live under ``.snakemake/segnas-params/`` (Snakemake's own state, not versioned).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from .stages import stage

PARAMS_DIR = Path(".snakemake") / "segnas-params"
DVC_LOCK = "dvc.lock"
# The time given to a params file whose params the existing outputs were made with (before any
# output, so that it triggers nothing).
LONG_AGO = 946_684_800  # 2000-01-01 UTC


class _LockLoader(yaml.SafeLoader):
    """The safe loader, reading ``1e-05`` as a float as DVC (YAML 1.2) writes and means it
    (YAML 1.1 wants a dot: ``1.0e-05``)."""


_LockLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, indent=1) + "\n"


def locked_params(root: str | Path = ".", params_file: str = "params.yaml") -> dict[str, dict]:
    """``{stage: params}`` that ``dvc.lock`` records each stage ran with, in the form of
    ``Stage.params`` (``section.key`` entries nested under their section); ``{}`` without a
    readable lock."""
    try:
        text = (Path(root) / DVC_LOCK).read_text(encoding="utf-8")
        lock = yaml.load(text, Loader=_LockLoader) or {}  # noqa: S506 (a safe loader)
    except (OSError, yaml.YAMLError):
        return {}
    found: dict[str, dict] = {}
    stages = lock.get("stages") if isinstance(lock, dict) else None
    for name, entry in (stages or {}).items():
        values = ((entry or {}).get("params") or {}).get(params_file)
        if not isinstance(values, dict):
            continue
        nested: dict[str, Any] = {}
        for key, value in values.items():
            section, _, sub = str(key).partition(".")
            if sub:
                nested.setdefault(section, {})[sub] = value
            else:
                nested[section] = value
        found[name] = nested
    return found


def made_path(name: str) -> str:
    """Where the last rule of stage ``name`` copies its params file once it succeeded."""
    return (PARAMS_DIR / f"{name}.made.json").as_posix()


def made_with(name: str, root: str | Path = ".", params_path: str = "params.yaml") -> str | None:
    """The canonical params that stage ``name``'s outputs were last made with, from the newer
    of dvc.lock's entry and Snakemake's made record; ``None`` without either."""
    records: list[tuple[int, str]] = []
    entry = locked_params(root, params_path).get(name)
    if entry is not None:
        records.append(((Path(root) / DVC_LOCK).stat().st_mtime_ns, _canonical(entry)))
    made = Path(root) / made_path(name)
    with contextlib.suppress(OSError):
        records.append((made.stat().st_mtime_ns, made.read_text(encoding="utf-8")))
    return max(records)[1] if records else None


def params_file(
    name: str,
    values: dict[str, Any],
    root: str | Path = ".",
    params_path: str = "params.yaml",
) -> str:
    """Bring stage ``name``'s params file up to date with ``values`` (the params) and return its
    path relative to ``root`` (the rules' input). See the module docstring for its dating."""
    relative = PARAMS_DIR / f"{name}.json"
    path = Path(root) / relative
    text = _canonical(stage(name).params(values))
    try:
        if path.read_text(encoding="utf-8") == text:
            return relative.as_posix()
    except OSError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text, encoding="utf-8")
    if made_with(name, root, params_path) == text:
        os.utime(temp, (LONG_AGO, LONG_AGO))
    os.replace(temp, path)
    return relative.as_posix()
