"""Atomic, fsync'ed file writing and safe reading helpers used by every stage."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, SegnasError


class WriteError(SegnasError, OSError):
    """Writing an artifact failed (disk full, read-only directory, ...)."""


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def _default_mode() -> int:
    return 0o666 & ~_umask()


def _describe(exc: OSError, path: Path) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the device while writing {path}; free some space and rerun"
    if exc.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return f"cannot write {path}: the directory is read-only or not writable ({exc.strerror})"
    return f"writing {path} failed: {exc}"


def write_error(exc: OSError, path: str | os.PathLike) -> WriteError:
    """A :class:`WriteError` for ``exc`` (disk full, read-only, ...) that names ``path``."""
    if isinstance(exc, WriteError):
        return exc
    return WriteError(_describe(exc, Path(path)))


def dir_write_error(exc: OSError, tmp: str | os.PathLike, out_dir: str | os.PathLike) -> OSError:
    """The error to show when building directory ``out_dir`` in its temporary twin ``tmp`` failed.

    Failures while writing inside ``tmp`` (or renaming it) become a :class:`WriteError` naming
    the final path (the file under ``out_dir`` when known), never the hidden temporary one.
    Other errors (e.g. reading an input) are returned unchanged.
    """
    cause = exc.__cause__ if isinstance(exc, WriteError) else exc
    if not isinstance(cause, OSError) or isinstance(cause, WriteError):
        return exc
    tmp, out_dir = Path(tmp), Path(out_dir)
    target = Path(cause.filename) if isinstance(cause.filename, str) else None
    inside = target is not None and target.is_relative_to(tmp)
    if inside and not isinstance(exc, WriteError):
        return write_error(cause, out_dir / target.relative_to(tmp))
    if inside or target is None or cause.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return write_error(cause, out_dir)
    return exc


def _temp_pattern(final: Path) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(final.name)}\.[A-Za-z0-9_.]+\.tmp$")


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete the temporary files or directories an interrupted writer of ``path`` left behind.

    They are the hidden ``.<name>.<random>.tmp`` siblings of ``path`` made by
    :func:`atomic_path` and :func:`temp_dir`. Call it only while no other process writes
    ``path`` (e.g. at the start of the stage that owns it). Returns what was removed.
    """
    final = Path(path)
    if not final.parent.is_dir():
        return []
    pattern = _temp_pattern(final)
    removed = []
    for entry in final.parent.iterdir():
        if pattern.match(entry.name):
            _remove_entry(entry)
            removed.append(entry)
    return removed


def _remove_entry(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)


_ANY_TEMP = re.compile(r"^\..+\.[A-Za-z0-9_]+\.tmp$")


def remove_stale_temps_under(root: str | os.PathLike) -> list[Path]:
    """Delete every temporary file or directory that interrupted writers left anywhere under
    ``root`` (the hidden ``.<name>.<random>.tmp`` entries of :func:`atomic_path` and
    :func:`temp_dir`). Call it only while no other process writes under ``root``, e.g. when a
    local run of the stage that owns ``root`` starts. Returns what was removed."""
    root = Path(root)
    if not root.is_dir():
        return []
    stale = sorted(
        (p for p in root.rglob(".*.tmp") if _ANY_TEMP.match(p.name)),
        key=lambda p: len(p.parts),
    )
    removed = []
    for entry in stale:
        if not entry.exists() and not entry.is_symlink():
            continue  # inside a stale directory removed just before
        _remove_entry(entry)
        removed.append(entry)
    return removed


def temp_dir(path: str | os.PathLike) -> Path:
    """A fresh hidden directory next to ``path`` (umask permissions), to be renamed onto it."""
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        tmp.chmod(0o777 & ~_umask())
    except OSError as exc:
        raise write_error(exc, final) from exc
    return tmp


def replace_dir(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Move the finished directory ``tmp`` onto ``path``, never leaving a partial ``path``.

    An existing ``path`` is first renamed aside (atomically), then ``tmp`` is renamed into
    place and the old one deleted. A crash in between leaves ``path`` absent (never half
    deleted); the hidden leftovers are removed by :func:`remove_stale_temps`.
    """
    tmp, final = Path(tmp), Path(path)
    try:
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
            os.replace(final, old)
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    except OSError as exc:
        raise write_error(exc, final) from exc
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temporary directory next to ``path`` (stale ones of killed runs are removed
    first); on success it replaces ``path``, on any error it is deleted and OS errors name
    ``path``, so a half-written directory never appears under the final name."""
    remove_stale_temps(path)
    tmp = temp_dir(path)
    try:
        yield tmp
        replace_dir(tmp, path)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        failure = dir_write_error(exc, tmp, path)
        if failure is exc:
            raise
        raise failure from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and rename it into place.

    On any error the temporary file is removed, so a half-written file never appears under
    the final name.
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.fchmod(fd, _default_mode())
        os.close(fd)
    except OSError as exc:
        raise write_error(exc, final) from exc
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(exc, final) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Atomically write ``data`` to ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write ``text`` (UTF-8) to ``path``."""
    write_bytes(path, text.encode("utf-8"))


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """Atomically ``torch.save`` ``obj`` to ``path`` with reproducible bytes.

    ``torch.save`` to a file path names the archive inside after that path; saving to the
    random temporary name of :func:`atomic_path` would make every file's bytes differ.
    """
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_bytes(path, buffer.getvalue())


def torch_load_reason(exc: BaseException) -> str:
    """Why ``torch.load(..., weights_only=True)`` refused a file, in one line, without torch's
    advice to retry with ``weights_only=False`` (which would run the file's code)."""
    text = str(exc)
    found = re.search(r"Unsupported global: (GLOBAL [\w.]+)", text)
    if found:
        return f"it refers to code ({found.group(1)}), which is never loaded"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    safe = [line for line in lines if "weights_only" not in line and "still be loaded" not in line]
    return safe[0] if safe else type(exc).__name__


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON (stable bytes for hashing)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file, with an error naming the file when it is missing or malformed."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SegnasError(f"{path} does not exist; run the stage that produces it first") from exc
    except json.JSONDecodeError as exc:
        raise SegnasError(f"{path} is not valid JSON ({exc}); delete it and rerun") from exc


class _RepeatedKey(yaml.YAMLError):
    """A mapping names the same key twice (the safe loader would keep the last silently)."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """The safe loader, refusing a key that repeats within one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            try:
                earlier = first.get(key)
                first[key] = line
            except TypeError:
                continue  # an unhashable key: the base loader reports it
            if earlier is not None:
                where = (
                    f"appears twice on line {line}"
                    if earlier == line
                    else f"repeats the key on line {earlier}"
                )
                raise _RepeatedKey(f"line {line}: key {key!r} {where}; keep one of them")
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | os.PathLike) -> Any:
    """Read a YAML file with the safe loader; errors name the file and the line.

    A key repeated within one mapping is an error (naming both lines), as is a file that is
    not UTF-8 text or a path that is a directory.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} does not exist") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path} is a directory, not a YAML file; name the file") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x}); "
            "save it as UTF-8"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror or exc}") from exc
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except _RepeatedKey as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{path} is not valid YAML: {what}{where}") from exc


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hex SHA-256 of the canonical JSON form of ``obj``."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode("utf-8")).hexdigest()
