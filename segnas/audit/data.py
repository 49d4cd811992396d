"""What an audit reads from ``params.yaml`` (the reward's setup and the final training's
recipe), and the stamps that tie each result file to what it depends on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import load_config, section, setting
from ..data.prepared import load_prepared
from ..data.split import read_split_info
from ..device import resolve_device
from ..errors import ConfigError
from ..io import sha256_file, sha256_json
from ..pipeline.paths import PREPARED, SPLIT
from ..search.config import SearchConfig
from ..trainconfig import TrainConfig
from ..trial.recipe import TrialSetup

STALE = "it belongs to another audit: give another --out (or remove the file)"


@dataclass(frozen=True)
class AuditData:
    """What the configuration in ``params.yaml`` says about the reward and the final training."""

    seed: int
    setup: TrialSetup
    cache_spec: dict[str, Any]
    dataset: str
    stem_weights: str
    device: str
    train: TrainConfig
    train_dataset: str
    train_splits: tuple[str, ...]
    train_threads: int

    @classmethod
    def from_params(cls, params: dict, params_path: str) -> AuditData:
        """Read the ``seed``, ``device``, ``stem``, ``cache_stem``, ``search`` and ``train``
        sections; the split and stem cache stages must have run."""
        seed = int(setting(params, "seed", params_path))
        search = SearchConfig.from_params(section(params, "search", params_path), seed)
        if search.objective != "train":
            raise ConfigError(
                f"{params_path}: search.objective is {search.objective!r}; the reward audit "
                "measures the trained reward (search.objective: train)"
            )
        spec = dict(section(params, "train", params_path))
        train_dataset = str(spec["dataset"])
        prepared = load_prepared(PREPARED / train_dataset)
        if "val" not in prepared.splits:
            raise ConfigError(
                f"{PREPARED / train_dataset} has no val split (splits: "
                f"{', '.join(prepared.splits)}); the audit scores final trainings on val"
            )
        sizes = prepared.index[["height", "width"]].drop_duplicates()
        if spec["input_size"] is None and len(sizes) == 1:
            spec["input_size"] = [int(v) for v in sizes.iloc[0]]
        stem_weights = str(section(params, "stem", params_path)["weights"])
        train = load_config(TrainConfig, spec, "train", stem_weights=stem_weights, seed=seed)
        if train.class_weighting != "none":
            raise ConfigError(
                f"{params_path}: train.class_weighting {train.class_weighting!r} is not "
                "supported by the reward audit yet; use none"
            )
        return cls(
            seed=seed,
            setup=search.eval,
            cache_spec=dict(section(params, "cache_stem", params_path)),
            dataset=str(read_split_info(SPLIT)["dataset"]),
            stem_weights=stem_weights,
            device=str(resolve_device(str(setting(params, "device", params_path)))),
            train=train,
            train_dataset=train_dataset,
            train_splits=tuple(spec["train_splits"]),
            train_threads=int(spec["threads"]),
        )

    def reward_identity(self) -> dict[str, Any]:
        """What a reward depends on besides the architecture and the job's seeds."""
        split = {
            name: sha256_file(SPLIT / name)[:16] for name in ("meta_train.txt", "meta_val.txt")
        }
        return {
            "eval": self.setup.to_dict(),
            "cache_stem": self.cache_spec,
            "dataset": self.dataset,
            "split": split,
            "stem_weights": self.stem_weights,
            "seed": self.seed,
        }

    def final_identity(self) -> dict[str, Any]:
        """What a final training depends on besides the architecture and its seed."""
        train = {k: v for k, v in self.train.to_dict().items() if k != "seed"}
        return {
            "train": train,
            "dataset": self.train_dataset,
            "train_splits": list(self.train_splits),
            "seed": self.seed,
        }


def stamp(identity: dict[str, Any]) -> str:
    """16 hex digits of ``identity``."""
    return sha256_json(identity)[:16]
