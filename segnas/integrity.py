"""Integrity of stored artifacts: their checksums where they have them (hashed once per process
and file version), the zip CRCs of torch archives, and finite tensors in loaded checkpoints."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from .io import sha256_file

# (resolved path, device, inode, size, mtime) -> the SHA-256 that file version was found to have
_VERIFIED: dict[tuple[str, int, int, int, int], str] = {}


class DamagedArchive(ValueError):
    """A member of a torch zip archive fails its CRC-32 check."""


def _version(path: Path) -> tuple[str, int, int, int, int]:
    stat = path.stat()
    return (str(path.resolve()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


def sha256_mismatch(path: str | os.PathLike, expected: str) -> str | None:
    """``None`` when ``path`` has the SHA-256 ``expected``, else the digest it has. A file
    version (path, inode, size, mtime) that matched once in this process is not hashed again,
    so that every evaluation of a search worker does not rehash the same cache."""
    path = Path(path)
    version = _version(path)
    if _VERIFIED.get(version) == expected:
        return None
    found = sha256_file(path)
    if found != expected:
        return found
    _VERIFIED[version] = found
    return None


def damaged_member(path: str | os.PathLike) -> str | None:
    """The first member of the zip archive ``path`` whose CRC-32 fails (``torch.load`` does not
    check them); ``None`` when every member passes or the file is no zip archive, which
    ``torch.load`` then refuses itself."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip()
    except zipfile.BadZipFile:
        return None


def load_torch(path: str | os.PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, after checking the archive's CRCs
    (:class:`DamagedArchive` names the damaged member)."""
    member = damaged_member(path)
    if member is not None:
        raise DamagedArchive(f"its archive member {member} fails its CRC-32 check")
    return torch.load(path, map_location="cpu", weights_only=True)


def _tensors(value: object, name: str) -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(value, torch.Tensor):
        yield name, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _tensors(item, f"{name}.{key}" if name else str(key))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _tensors(item, f"{name}[{index}]")


def non_finite(value: object, name: str = "") -> str | None:
    """The first floating tensor under ``value`` (nested dicts, lists) holding NaN or infinite
    values, described as ``model.head.weight (3 of 96 values)``; ``None`` when all are finite."""
    for key, tensor in _tensors(value, name):
        if tensor.is_floating_point() or tensor.is_complex():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                return f"{key} ({bad} of {tensor.numel()} values)"
    return None
