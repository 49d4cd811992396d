"""Device selection from a ``device: auto | cpu | cuda`` setting, its readable name; the CPU
allocator setting."""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from pathlib import Path

import torch

from .errors import ConfigError


def resolve_device(setting: str = "auto") -> torch.device:
    """Return the torch device for ``setting`` (auto = CUDA when available, else CPU)."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cpu":
        return torch.device("cpu")
    if setting.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device: {setting!r} was requested but no CUDA GPU is visible; "
                "set device: auto or cpu"
            )
        return torch.device(setting)
    raise ConfigError(f"device: {setting!r} is not one of auto, cpu, cuda")


def processor_name(device: torch.device) -> str:
    """The model of ``device``: the GPU's, or the CPU's."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return model


def device_name(device: torch.device) -> str:
    """A readable name of ``device``: the GPU model, or the CPU model and thread count."""
    if device.type == "cuda":
        return processor_name(device)
    return f"{processor_name(device)} ({torch.get_num_threads()} threads)"


KEEP_FREED_MEMORY_ENV = "SEGNAS_KEEP_FREED_MEMORY"
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_NEVER_TRIM = 2**31 - 1


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of returning it to the system.

    PyTorch's CPU tensors come from ``malloc``; glibc serves blocks over its mmap threshold
    (at most 32 MB) with a fresh ``mmap`` and unmaps them when freed, so every training step
    page-faults its large activations in again and the kernel zeroes each page. With mmap off
    and heap trimming off, freed blocks are reused: a training step gets 20-30% faster
    (``docs/performance.md``) and the peak resident memory grows by about 7%; the process keeps
    its peak heap until it exits. Results are unchanged, bit for bit. Entry points (stages,
    ``segnas bench``, spawned search workers) call this once; it is process-wide. Returns
    whether it took effect: not off glibc, nor when ``SEGNAS_KEEP_FREED_MEMORY=0``.
    """
    if os.environ.get(KEEP_FREED_MEMORY_ENV, "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, _NEVER_TRIM))
