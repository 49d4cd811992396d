"""A lock on the search directory that names its holder.

A second local search in the same directory (other params or the same) would fight over or
duplicate the first one's files; it is refused with the first one's pid, host, command and
start time. The fan-out steps (Snakemake jobs, side by side) share the lock among themselves but
not with a local run. The lock is ``flock`` on ``<root>/.lock``: the kernel releases it when the
holder exits in any way (``kill -9`` included), so a stale lock never blocks a rerun.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import SegnasError

LOCK_NAME = ".lock"


class DirectoryBusy(SegnasError):
    """Another process holds the lock of a stage's output directory."""


def _holder_text(path: Path) -> str:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        return (
            f"pid {holder['pid']} on {holder['host']} since {holder['started']} "
            f"(params hash {holder['params_hash']}; command: {holder['command']})"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (no holder recorded: e.g. fan-out steps of Snakemake)"


@contextlib.contextmanager
def directory_lock(root: str | Path, params_hash: str, shared: bool = False) -> Iterator[None]:
    """Hold the lock of ``root`` (exclusive; ``shared`` for fan-out steps), or raise
    :class:`DirectoryBusy` naming the process that holds it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_NAME
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DirectoryBusy(
                f"{root} is in use by {_holder_text(path)}; wait for that run to finish or stop "
                "it, then rerun"
            ) from None
        handle.truncate(0)  # whatever it says is stale: nobody held the lock exclusively
        if not shared:
            holder = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "params_hash": params_hash,
                "command": " ".join(sys.argv),
            }
            handle.write(json.dumps(holder) + "\n")
        handle.flush()
        try:
            yield
        finally:
            if not shared:
                handle.truncate(0)
                handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
