"""What a trial runs: the reward of one architecture and seed, as a picklable description
that each worker process builds once (``TrialSpec.build``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config import section, setting
from ..device import resolve_device
from ..pipeline.paths import PREPARED, SPLIT, STEM_CACHE
from ..provenance import provenance
from ..published import resolve_genotype
from ..space import Genotype
from .data import TrialData
from .recipe import TrialResult, TrialSetup
from .reward import run_trial, target_similarity_result

if TYPE_CHECKING:
    from ..search.config import SearchConfig


@dataclass(frozen=True)
class TrialSpec:
    """The reward function of a trial: ``objective`` (``train`` or ``target``), the setup and
    where the data are (picklable; built once per worker process)."""

    objective: str
    setup: TrialSetup
    target: str = "arch0"
    prepared_dir: str = ""
    split_dir: str = "data/split"
    cache_dir: str = "cache/stem"
    stem_weights: str = "none"
    device: str = "cpu"

    @classmethod
    def from_params(cls, config: SearchConfig, params: dict, params_path: str) -> TrialSpec:
        """The reward of the search that ``params`` describe (``config`` their search section
        as a typed config) on the device they name, resolved (``auto`` -> cuda or cpu); the
        split must have run for a trained reward."""
        if config.objective != "train":
            return cls(config.objective, config.eval, config.target)
        from ..data.split import read_split_info

        dataset = read_split_info(SPLIT)["dataset"]
        return cls(
            config.objective,
            config.eval,
            config.target,
            prepared_dir=str(PREPARED / dataset),
            split_dir=str(SPLIT),
            cache_dir=str(STEM_CACHE),
            stem_weights=str(section(params, "stem", params_path)["weights"]),
            device=str(resolve_device(str(setting(params, "device", params_path)))),
        )

    def provenance(self) -> dict:
        """The provenance block of rewards computed from this recipe (``segnas.provenance``)."""
        return provenance(self.device, self.setup.threads)

    def build(self) -> Callable[[Genotype, int], TrialResult]:
        """``trial(genotype, seed) -> TrialResult``."""
        if self.objective == "target":
            target = resolve_genotype(self.target)
            return lambda genotype, seed: target_similarity_result(genotype, target)
        data = TrialData.from_paths(
            self.prepared_dir, self.split_dir, self.cache_dir, self.stem_weights
        )
        return lambda genotype, seed: run_trial(genotype, self.setup, data, seed, self.device)
