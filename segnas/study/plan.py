"""A study's plan (``study.yaml``, committed beside ``PLAN.md`` before any run) and where its
files live: small results under the study folder (worth committing), large working files
(search checkpoints, final-training checkpoints) under a separate work folder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..io import read_yaml
from ..search.strategies import STRATEGIES

TESTS = ("wilcoxon", "paired_t")
REQUIRED = ("configuration", "strategies", "seeds", "comparisons", "alpha", "test", "max_params")


@dataclass(frozen=True)
class StudyPlan:
    """Which runs a study holds and how it decides: every strategy searches once per seed;
    each comparison ``(a, b)`` asks whether ``a``'s endpoint beats ``b``'s, paired by seed,
    with a one-sided ``test`` at ``alpha``. A comparison is decided when all ``seeds`` have
    finished; once the study is ``closed`` (its budget spent: the plan's dated note), over the
    seeds both strategies reached, if at least ``min_seeds`` (default: all ``seeds``)."""

    configuration: str
    strategies: tuple[str, ...]
    seeds: tuple[int, ...]
    comparisons: tuple[tuple[str, str], ...]
    alpha: float
    test: str
    max_params: int
    min_seeds: int
    closed: bool = False

    @classmethod
    def from_file(cls, path: str | Path) -> StudyPlan:
        """Read and check ``path`` (a ``study.yaml``), naming the key that is wrong."""
        raw = read_yaml(Path(path))
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a mapping with keys {', '.join(REQUIRED)}")
        missing = [key for key in REQUIRED if key not in raw]
        if missing:
            raise ConfigError(f"{path}: missing {', '.join(missing)}")
        seeds = tuple(int(s) for s in raw["seeds"])
        plan = cls(
            configuration=str(raw["configuration"]),
            strategies=tuple(str(s) for s in raw["strategies"]),
            seeds=seeds,
            comparisons=tuple((str(a), str(b)) for a, b in raw["comparisons"]),
            alpha=float(raw["alpha"]),
            test=str(raw["test"]),
            max_params=int(raw["max_params"]),
            min_seeds=int(raw.get("min_seeds", len(seeds))),
            closed=raw.get("closed", False),
        )
        plan.check(str(path))
        return plan

    def check(self, where: str) -> None:
        """Refuse a plan that cannot run or decide, naming the key."""
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown or not self.strategies:
            raise ConfigError(
                f"{where}: strategies {list(self.strategies)}: each must be one of "
                f"{', '.join(STRATEGIES)}"
            )
        if len(set(self.seeds)) != len(self.seeds) or not self.seeds:
            raise ConfigError(f"{where}: seeds {list(self.seeds)} must be distinct, at least one")
        for a, b in self.comparisons:
            if a not in self.strategies or b not in self.strategies or a == b:
                raise ConfigError(
                    f"{where}: comparison [{a}, {b}] must pair two of the strategies "
                    f"{list(self.strategies)}"
                )
        if not 0 < self.alpha < 1:
            raise ConfigError(f"{where}: alpha {self.alpha} must lie in (0, 1)")
        if self.test not in TESTS:
            raise ConfigError(f"{where}: test {self.test!r} must be one of {', '.join(TESTS)}")
        if self.max_params < 1:
            raise ConfigError(f"{where}: max_params {self.max_params} must be positive")
        if not 1 <= self.min_seeds <= len(self.seeds):
            raise ConfigError(
                f"{where}: min_seeds {self.min_seeds} must lie between 1 and the number of "
                f"seeds ({len(self.seeds)})"
            )
        if not isinstance(self.closed, bool):
            raise ConfigError(
                f"{where}: closed {self.closed!r} must be true (budget spent: decide over the "
                "seeds reached) or false (still running)"
            )

    def runs(self, only: Sequence[str] = ()) -> list[tuple[str, int]]:
        """(strategy, seed) of every run, seed-major (so a study cut short stays paired), or
        those named in ``only`` (``strategy:seed``)."""
        every = [(strategy, seed) for seed in self.seeds for strategy in self.strategies]
        if not only:
            return every
        chosen = []
        for text in only:
            strategy, _, seed = text.partition(":")
            if not seed.lstrip("-").isdigit() or (strategy, int(seed)) not in every:
                raise ConfigError(
                    f"--only {text!r}: not a run of the plan; write strategy:seed with a "
                    f"strategy of {list(self.strategies)} and a seed of {list(self.seeds)}"
                )
            chosen.append((strategy, int(seed)))
        return chosen

    def to_dict(self) -> dict[str, Any]:
        return {
            "configuration": self.configuration,
            "strategies": list(self.strategies),
            "seeds": list(self.seeds),
            "comparisons": [list(pair) for pair in self.comparisons],
            "alpha": self.alpha,
            "test": self.test,
            "max_params": self.max_params,
            "min_seeds": self.min_seeds,
            "closed": self.closed,
        }


def run_name(strategy: str, seed: int) -> str:
    """The folder name of one run, e.g. ``random-s3``."""
    return f"{strategy}-s{seed}"


class StudyLayout:
    """A study's files: the plan and results under ``root``, working files under ``work``."""

    def __init__(self, root: str | Path, work: str | Path) -> None:
        self.root = Path(root)
        self.work = Path(work)

    @property
    def plan(self) -> Path:
        return self.root / "study.yaml"

    def run_dir(self, strategy: str, seed: int) -> Path:
        return self.root / "runs" / run_name(strategy, seed)

    def run_result(self, strategy: str, seed: int) -> Path:
        return self.run_dir(strategy, seed) / "run.json"

    def curve(self, strategy: str, seed: int) -> Path:
        return self.run_dir(strategy, seed) / "curve.csv"

    def final(self, strategy: str, seed: int) -> Path:
        return self.run_dir(strategy, seed) / "final.json"

    def search_copy(self, strategy: str, seed: int) -> Path:
        """A finished run's search ``archs.csv`` and ``timings.csv``, kept for the cost."""
        return self.root / "searches" / run_name(strategy, seed)

    def search_dir(self, strategy: str, seed: int) -> Path:
        return self.work / run_name(strategy, seed) / "search"

    def final_work(self, strategy: str, seed: int) -> Path:
        return self.work / run_name(strategy, seed) / "final"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def test_numbers(self) -> Path:
        return self.root / "test.json"

    @property
    def table(self) -> Path:
        return self.root / "table.md"

    @property
    def anytime_figure(self) -> Path:
        return self.root / "anytime.png"

    @property
    def endpoint_figure(self) -> Path:
        return self.root / "endpoint.png"
