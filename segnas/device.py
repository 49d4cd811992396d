"""Device selection from a ``device: auto | cpu | cuda`` setting."""

from __future__ import annotations

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
