"""A clean run of the pipeline and its comparison with the committed reference metrics."""

from __future__ import annotations

import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import SegnasError
from ..provenance import differing_packages, package_versions
from .stages import REGISTRY

REFERENCE = Path("workflow/reference/quickstart_metrics.json")
# Across CPU models (e.g. Intel AVX-512 vs AMD EPYC) oneDNN rounds differently and the short
# trainings amplify it: search and compare rewards of the quickstart drift by up to ~2e-3.
# Bit-identity on one machine is what `repro-hash` checks; the reference check allows this.
DEFAULT_ABS_TOL = 0.01

# Paths copied into a fresh run directory (everything the stages and engines read).
SOURCE_PATHS = (
    "segnas",
    "stages",
    "configs",
    "workflow",
    "dvc.yaml",
    "params.yaml",
    "Snakefile",
    ".dvc/config",
    ".dvc/.gitignore",
    ".dvcignore",
    ".gitignore",
)


def compare_metrics(
    reference: dict[str, float], current: dict[str, float], abs_tol: float, rel_tol: float
) -> list[tuple[str, float | None, float | None, float | None, bool]]:
    """Rows ``(key, reference, current, |diff|, ok)`` for every key of ``reference``."""
    rows = []
    for key in sorted(reference):
        ref, cur = reference[key], current.get(key)
        if cur is None:
            rows.append((key, ref, None, None, False))
            continue
        both_nan = math.isnan(ref) and math.isnan(cur)
        ok = both_nan or math.isclose(ref, cur, rel_tol=rel_tol, abs_tol=abs_tol)
        rows.append((key, ref, cur, None if both_nan else abs(cur - ref), ok))
    return rows


def format_table(rows: list[tuple[str, Any, Any, Any, bool]]) -> str:
    """A plain-text table of metric differences."""

    def fmt(value: Any) -> str:
        return "missing" if value is None else f"{value:.6g}"

    header = ("metric", "reference", "current", "|diff|", "status")
    body = [(k, fmt(r), fmt(c), fmt(d), "ok" if ok else "DIFF") for k, r, c, d, ok in rows]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(5)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        for row in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def copy_sources(source: Path, target: Path) -> None:
    """Copy what the pipeline needs (no outputs, caches or engine state) into ``target``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".snakemake")
    for name in SOURCE_PATHS:
        src = source / name
        if src.is_dir():
            shutil.copytree(src, target / name, ignore=ignore)
        elif src.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / name)


def run_stages(workdir: Path, log=sys.stderr) -> None:
    """Run every registered stage's command in order inside ``workdir``."""
    env = dict(os.environ, PYTHONHASHSEED="0")
    for stage in REGISTRY:
        start = time.monotonic()
        print(f"[repro-check] stage {stage.name}: {stage.cmd}", file=log, flush=True)
        done = subprocess.run(stage.cmd, shell=True, cwd=workdir, env=env, check=False)
        if done.returncode != 0:
            raise SegnasError(f"stage {stage.name} failed (exit {done.returncode}) in {workdir}")
        print(f"[repro-check] stage {stage.name} done in {time.monotonic() - start:.1f}s", file=log)


def environment() -> dict:
    """The Python and package versions a reference is recorded with."""
    return {"python": platform.python_version(), "packages": package_versions()}


def environment_note(recorded: dict | None) -> str:
    """What differs between the reference's environment and this one, for a drifting metric."""
    if recorded is None:
        return "the reference records no environment (regenerate it with --update to add one)"
    current = environment()
    changes = differing_packages(recorded, current)
    if recorded.get("python") != current["python"]:
        changes.insert(0, f"python {recorded.get('python')} -> {current['python']}")
    if not changes:
        return "same Python and packages as the reference: the drift is not from a package version"
    return "packages that differ from the reference's environment: " + "; ".join(changes)
