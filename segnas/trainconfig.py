"""The final training's configuration: the ``train`` params section as a typed, hashed config.

Build it with ``segnas.config.load_config(TrainConfig, section, "train", stem_weights=...,
seed=...)``: the params schema holds every key's type and range, so there are no defaults
here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from .config import load_config, section, setting
from .errors import ConfigError
from .io import sha256_json

if TYPE_CHECKING:
    from .data.prepared import PreparedDataset


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

    def hashed_fields(self) -> dict[str, Any]:
        """The fields that change the trained weights (what :attr:`hash` covers)."""
        values = self.to_dict()
        return {f.name: values[f.name] for f in fields(self) if f.metadata.get("hashed", True)}

    @property
    def hash(self) -> str:
        """16 hex digits over the fields that change the trained weights."""
        return sha256_json(self.hashed_fields())[:16]


def train_config_of(
    params: dict, params_path: str, prepared: PreparedDataset
) -> tuple[dict[str, Any], TrainConfig]:
    """The ``train`` section of ``params`` and its typed config; a null ``input_size`` becomes
    the image size of ``prepared`` (the training dataset) when all its images share one."""
    spec = dict(section(params, "train", params_path))
    sizes = prepared.index[["height", "width"]].drop_duplicates()
    if spec["input_size"] is None and len(sizes) == 1:
        # one image size: record it, so predict resizes raw images to what was trained
        spec["input_size"] = [int(v) for v in sizes.iloc[0]]
    config = load_config(
        TrainConfig,
        spec,
        "train",
        stem_weights=str(section(params, "stem", params_path)["weights"]),
        seed=int(setting(params, "seed", params_path)),
    )
    return spec, config
