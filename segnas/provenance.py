"""Where a result came from: the code's git commit, the Python packages, the device.

Every stage's metrics file carries it under ``provenance``. Output digests and the reference
metrics leave it out (``segnas.pipeline.digests``): it describes the run, not the result.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

import torch

from .device import processor_name, resolve_device

KEY = "provenance"
CODE = Path(__file__).resolve().parent
PACKAGES = ("torch", "torchvision", "numpy", "onnxruntime", "dvc", "snakemake")
# Files the engines rewrite while running; a change to them does not make the code dirty.
ENGINE_FILES = ("dvc.lock",)


def git_state(root: str | Path = CODE) -> dict[str, str | bool | None]:
    """``{"commit": hash, "dirty": bool}`` of the git checkout holding ``root``; both None
    outside a checkout (e.g. a copied tree) or without git. Dirty = a tracked file differs
    from the commit, engine state files (``dvc.lock``) aside."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
            )
        except OSError:
            return None
        return done.stdout if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    excluded = [f":(top,exclude){name}" for name in ENGINE_FILES]
    status = git("status", "--porcelain", "--untracked-files=no", "--", ":/", *excluded)
    return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (None when it is not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def describe_device(device: torch.device | str) -> str:
    """``device``'s model (the thread count is recorded beside it); a configured GPU this
    process cannot see (e.g. a CPU-only job assembling GPU results) is named as configured."""
    device = resolve_device("auto") if str(device) == "auto" else torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        return f"{device} (as configured; not visible to the process that wrote this)"
    return f"{device.type}: {processor_name(device)}"


def provenance(
    device: torch.device | str, threads: int | None = None, root: str | Path = CODE
) -> dict:
    """The provenance block of a result computed on ``device`` with ``threads`` CPU threads
    (default: this process's torch threads) by the code at ``root`` (default: this package;
    its git state is that of the checkout holding it)."""
    return {
        "git": git_state(root),
        "python": platform.python_version(),
        "packages": package_versions(),
        "device": describe_device(device),
        "threads": torch.get_num_threads() if threads is None else threads,
    }


def differing_packages(reference: dict, current: dict) -> list[str]:
    """``"name a -> b"`` for every package whose version differs between two provenance
    blocks (the packages either block lists)."""
    mine, theirs = reference.get("packages", {}), current.get("packages", {})
    return [
        f"{name} {mine.get(name)} -> {theirs.get(name)}"
        for name in sorted(set(mine) | set(theirs))
        if mine.get(name) != theirs.get(name)
    ]
