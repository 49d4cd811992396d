"""The final training's configuration: the ``train`` params section as a typed, hashed config."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import ConfigError
from .io import sha256_json

OPTIMIZERS = ("sgd", "adam")
CLASS_WEIGHTINGS = ("none", "median_frequency")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the result of a training run (its hash guards checkpoints)."""

    epochs: int = 1000
    time_budget_s: float | None = None
    optimizer: str = "sgd"
    lr: float = 5e-2
    momentum: float = 0.9
    weight_decay: float = 1e-5
    poly_power: float = 0.9
    batch_size: int = 10
    crop_size: tuple[int, int] = (360, 480)
    scale_range: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    class_weighting: str = "none"
    input_size: tuple[int, int] | None = None
    agg_width: int = 64
    sep_conv_units: int = 2
    stem_weights: str = "none"
    seed: int = 0
    channels_last: bool = True
    amp: bool = True
    # not part of the result: how often to save and validate, loader workers
    checkpoint_every: int = field(default=5, metadata={"hashed": False})
    val_every: int = field(default=1, metadata={"hashed": False})
    num_workers: int = field(default=0, metadata={"hashed": False})

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "train") -> TrainConfig:
        """Build from a params mapping; unknown keys and bad values name ``where.key``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
        values = dict(values)
        for key in ("crop_size", "scale_range", "input_size"):
            if values.get(key) is not None:
                value = values[key]
                value = [value, value] if isinstance(value, int | float) else value
                if not isinstance(value, list | tuple) or len(value) != 2:
                    raise ConfigError(f"{where}.{key} must be two numbers, got {values[key]!r}")
                kind = float if key == "scale_range" else int
                values[key] = (kind(value[0]), kind(value[1]))
        config = cls(**values)
        config.check(where)
        return config

    def check(self, where: str = "train") -> None:
        """Raise :class:`ConfigError` naming the first invalid key."""
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"{where}.optimizer: {self.optimizer!r} is not one of {OPTIMIZERS}")
        if self.class_weighting not in CLASS_WEIGHTINGS:
            raise ConfigError(
                f"{where}.class_weighting: {self.class_weighting!r} is not one of "
                f"{CLASS_WEIGHTINGS}"
            )
        positive = ("epochs", "lr", "batch_size", "agg_width", "sep_conv_units")
        positive += ("checkpoint_every", "val_every")
        for key in positive:
            if not getattr(self, key) > 0:
                raise ConfigError(f"{where}.{key} must be > 0, got {getattr(self, key)!r}")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise ConfigError(f"{where}.time_budget_s must be null or > 0 seconds")
        if min(self.crop_size) < 8:
            raise ConfigError(f"{where}.crop_size must be at least 8x8, got {self.crop_size}")
        if not 0 < self.scale_range[0] <= self.scale_range[1]:
            raise ConfigError(f"{where}.scale_range must be 0 < low <= high")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @property
    def hash(self) -> str:
        """16 hex digits over the fields that change the trained weights."""
        hashed = {
            f.name: self.to_dict()[f.name] for f in fields(self) if f.metadata.get("hashed", True)
        }
        return sha256_json(hashed)[:16]
