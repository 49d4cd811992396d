"""The ``search`` params section as typed configs (the controller, PPO and evolution knobs
included, so that readers of a search's identity import none of the search code), and the hash
of what decides its results."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..config import load_config
from ..errors import ConfigError
from ..io import sha256_json
from ..published import resolve_genotype
from ..trial.recipe import TrialSetup


@dataclass(frozen=True)
class PPOConfig:
    """PPO knobs (the ``search.ppo`` params; the schema holds their ranges)."""

    clip: float
    lr: float
    max_grad_norm: float
    baseline_decay: float
    buffer_size: int
    entropy_weight: float
    epochs: int

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EvolutionConfig:
    """Regularized evolution's knobs (``search.evolution``)."""

    population: int
    tournament: int

    def check(self, where: str = "search.evolution") -> None:
        """A tournament draws from the population, so it cannot be larger."""
        if self.tournament > self.population:
            raise ConfigError(
                f"{where}.tournament ({self.tournament}) must not exceed {where}.population "
                f"({self.population})"
            )


@dataclass(frozen=True)
class ControllerConfig:
    """Controller architecture knobs (``search.controller``)."""

    hidden_size: int
    num_layers: int
    init_range: float


@dataclass(frozen=True)
class SearchConfig:
    """Everything that decides the search's results, plus how to run it (``workers``)."""

    seed: int
    rounds: int
    archs_per_round: int
    strategy: str
    evolution: EvolutionConfig
    objective: str
    target: str
    top_k: int
    controller: ControllerConfig
    ppo: PPOConfig
    eval: TrialSetup
    workers: int
    progress_interval: float

    @classmethod
    def from_params(cls, search: dict, root_seed: int, where: str = "search") -> SearchConfig:
        """Build from the ``search`` params section; ``search.seed: null`` uses the root seed."""
        seed = search.get("seed") if isinstance(search, dict) else None
        return load_config(cls, search, where, seed=int(root_seed if seed is None else seed))

    def check(self, where: str = "search") -> None:
        """A ``target`` objective needs a known target architecture."""
        if self.objective == "target":
            resolve_genotype(self.target)

    def result_fields(self) -> dict:
        """The fields that decide the results (hashed); not the worker count."""
        return {
            "seed": self.seed,
            "rounds": self.rounds,
            "archs_per_round": self.archs_per_round,
            "strategy": self.strategy,
            "evolution": self.evolution.__dict__ if self.strategy == "evolution" else None,
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
