"""The ``search`` params section as typed configs, and the hash of what decides its results."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from ..errors import ConfigError
from ..io import sha256_json
from ..published import resolve_genotype
from .ppo import PPOConfig
from .reward import EvalSetup

OBJECTIVES = ("train", "target")


@dataclass(frozen=True)
class ControllerConfig:
    """Controller architecture knobs (``search.controller``)."""

    hidden_size: int = 100
    num_layers: int = 2
    init_range: float = 0.1


def _from_mapping(cls: type, data: object, where: str) -> object:
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {data!r}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known keys are {sorted(known)}")
    return cls(**data)


@dataclass(frozen=True)
class SearchConfig:
    """Everything that decides the search's results, plus how to run it (``workers``)."""

    seed: int = 0
    rounds: int = 2
    archs_per_round: int = 2
    objective: str = "train"
    target: str = "arch0"
    top_k: int = 5
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    eval: EvalSetup = field(default_factory=EvalSetup)
    workers: int = 1
    progress_interval: float = 10.0

    @classmethod
    def from_params(cls, search: dict, root_seed: int, where: str = "search") -> SearchConfig:
        """Build from the ``search`` params section; ``search.seed: null`` uses the root seed."""
        values = dict(search)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown}; known keys are {sorted(known)}")
        seed = values.pop("seed", None)
        config = cls(
            seed=int(root_seed if seed is None else seed),
            controller=_from_mapping(
                ControllerConfig, values.pop("controller", None), f"{where}.controller"
            ),
            ppo=PPOConfig.from_dict(values.pop("ppo", None) or {}, f"{where}.ppo"),
            eval=EvalSetup.from_dict(values.pop("eval", None) or {}, f"{where}.eval"),
            **values,
        )
        config.check(where)
        return config

    def check(self, where: str = "search") -> None:
        for key in ("rounds", "archs_per_round", "workers", "top_k"):
            if not isinstance(getattr(self, key), int) or getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key} must be an int >= 1, got {getattr(self, key)!r}")
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"{where}.objective {self.objective!r} is not one of {OBJECTIVES}")
        if self.objective == "target":
            resolve_genotype(self.target)

    def result_fields(self) -> dict:
        """The fields that decide the results (hashed); not the worker count."""
        return {
            "seed": self.seed,
            "rounds": self.rounds,
            "archs_per_round": self.archs_per_round,
            "objective": self.objective,
            "target": self.target if self.objective == "target" else None,
            "controller": self.controller.__dict__,
            "ppo": self.ppo.to_dict(),
            "eval": self.eval.to_dict() if self.objective == "train" else None,
        }

    @property
    def total(self) -> int:
        return self.rounds * self.archs_per_round


def params_hash_of(config: SearchConfig, extra: dict | None = None) -> str:
    """16 hex digits identifying the result-deciding params (plus ``extra``, e.g. data)."""
    return sha256_json({"search": config.result_fields(), **(extra or {})})[:16]
