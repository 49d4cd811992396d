"""The final training's configuration: the ``train`` params section as a typed, hashed config.

Build it with ``segnas.config.load_config(TrainConfig, section, "train", stem_weights=...,
seed=...)``: the params schema holds every key's type and range, so there are no defaults
here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import ConfigError
from .io import sha256_json


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the result of a training run (its hash guards checkpoints)."""

    epochs: int
    time_budget_s: float | None
    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    poly_power: float
    batch_size: int
    crop_size: tuple[int, int]
    scale_range: tuple[float, float]
    flip: bool
    class_weighting: str
    input_size: tuple[int, int] | None
    agg_width: int
    sep_conv_units: int
    stem_weights: str
    seed: int
    channels_last: bool
    amp: bool
    # not part of the result: how often to save and validate, loader workers
    checkpoint_every: int = field(metadata={"hashed": False})
    val_every: int = field(metadata={"hashed": False})
    num_workers: int = field(metadata={"hashed": False})

    def check(self, where: str = "train") -> None:
        """The rule that relates fields (ranges and choices are in the params schema)."""
        if not self.scale_range[0] <= self.scale_range[1]:
            raise ConfigError(f"{where}.scale_range must be [low, high] with low <= high")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def hash(self) -> str:
        """16 hex digits over the fields that change the trained weights."""
        hashed = {
            f.name: self.to_dict()[f.name] for f in fields(self) if f.metadata.get("hashed", True)
        }
        return sha256_json(hashed)[:16]
