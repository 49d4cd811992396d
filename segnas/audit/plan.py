"""Which architectures a reward audit measures, and where its files live.

Two groups of equal size: ``uniform`` (drawn uniformly from the search space) and
``controller_band`` (drawn from a list of architectures a trained controller produced, e.g. a
search's last rounds or the compare stage's controller samples). A *role* keeps the held-out
architectures (which report fidelity) apart from the selection architectures (on which recipes
are chosen): each role draws its own uniform architectures, and the band's list is split in a
seeded order, the held-out role first.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, GenotypeError
from ..seeds import derive_seed
from ..space import DEFAULT_SPACE, Genotype, SearchSpace

UNIFORM = "uniform"
BAND = "controller_band"
GROUPS = (UNIFORM, BAND)
ROLES = ("heldout", "selection")


@dataclass(frozen=True)
class AuditArch:
    """One audited architecture: a short name (``u03``, ``c01``), its group and genotype."""

    name: str
    group: str
    genotype: Genotype

    def to_dict(self) -> dict:
        return {"name": self.name, "group": self.group, **self.genotype.to_record()}


class AuditLayout:
    """Files of an audit under ``root``: small JSON results under ``jobs/`` (worth keeping in
    git: they are the audit's whole state), large working files under ``work/``."""

    def __init__(self, root: str | Path, finals: str | Path | None = None) -> None:
        self.root = Path(root)
        self.finals = Path(finals) if finals is not None else self.root / "jobs" / "final"

    @property
    def plan(self) -> Path:
        return self.root / "plan.json"

    @property
    def work(self) -> Path:
        return self.root / "work"

    def cache(self, replicate: int) -> Path:
        return self.work / "caches" / f"r{replicate}"

    def reward(self, name: str, replicate: int) -> Path:
        return self.root / "jobs" / "reward" / f"{name}-s{replicate}.json"

    def proxies(self, name: str) -> Path:
        return self.root / "jobs" / "proxies" / f"{name}.json"

    def final(self, genotype_hash: str, trial: int) -> Path:
        return self.finals / f"{genotype_hash}-t{trial}.json"

    def final_work(self, genotype_hash: str, trial: int) -> Path:
        return self.work / "final" / f"{genotype_hash}-t{trial}"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def table(self) -> Path:
        return self.root / "table.md"

    @property
    def figure(self) -> Path:
        return self.root / "figure.png"


def read_band(path: str | Path, space: SearchSpace = DEFAULT_SPACE) -> list[Genotype]:
    """The distinct genotypes listed in ``path``, in file order: a ``.txt`` (one genotype text
    a line, ``#`` comments), a ``.csv`` with a ``genotype`` column (a search's ``archs.csv``) or
    a ``.json`` list of records or the compare stage's ``samples.json`` (its controller list)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--band {path} does not exist; give a .txt, .csv or .json file")
    try:
        if path.suffix == ".txt":
            lines = path.read_text().splitlines()
            texts = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        elif path.suffix == ".csv":
            with path.open(newline="") as handle:
                texts = [row["genotype"] for row in csv.DictReader(handle)]
        elif path.suffix == ".json":
            data = json.loads(path.read_text())
            records = data["samples"]["controller"] if isinstance(data, dict) else data
            texts = [record["genotype"] for record in records]
        else:
            raise ConfigError(f"--band {path}: expected a .txt, .csv or .json file")
        genotypes = [space.parse(text) for text in texts]
    except (KeyError, TypeError, ValueError, GenotypeError) as exc:
        raise ConfigError(f"--band {path}: cannot read its genotypes ({exc})") from exc
    distinct = list({genotype.hash: genotype for genotype in genotypes}.values())
    if not distinct:
        raise ConfigError(f"--band {path} lists no genotype")
    return distinct


def uniform_architectures(
    count: int, seed: int, role: str, space: SearchSpace = DEFAULT_SPACE
) -> list[Genotype]:
    """``count`` distinct uniform genotypes of ``role`` (each role its own draws)."""
    rng = random.Random(derive_seed(seed, "audit", UNIFORM, role))
    drawn: dict[str, Genotype] = {}
    while len(drawn) < count:
        genotype = space.sample(rng)
        drawn.setdefault(genotype.hash, genotype)
    return list(drawn.values())


def band_architectures(pool: list[Genotype], count: int, seed: int, role: str) -> list[Genotype]:
    """``count`` genotypes of ``pool`` for ``role``: the pool in a seeded order, the held-out
    role takes the first ``count``, the selection role the next ``count``."""
    needed = count * (ROLES.index(role) + 1)
    if len(pool) < needed:
        raise ConfigError(
            f"the band lists {len(pool)} distinct architectures but role {role!r} with "
            f"--per-group {count} needs {needed}; give a longer --band list or a smaller "
            "--per-group"
        )
    order = list(pool)
    random.Random(derive_seed(seed, "audit", BAND)).shuffle(order)
    start = ROLES.index(role) * count
    return order[start : start + count]


def plan_architectures(
    per_group: int,
    seed: int,
    role: str,
    band: list[Genotype] | None,
    space: SearchSpace = DEFAULT_SPACE,
) -> list[AuditArch]:
    """The audited architectures: ``per_group`` uniform ones, and as many from ``band`` when
    given."""
    if role not in ROLES:
        raise ConfigError(f"--role must be one of {', '.join(ROLES)}, got {role!r}")
    if per_group < 2:
        raise ConfigError(f"--per-group must be at least 2, got {per_group}")
    archs = [
        AuditArch(f"u{i:02d}", UNIFORM, genotype)
        for i, genotype in enumerate(uniform_architectures(per_group, seed, role, space))
    ]
    if band is not None:
        archs += [
            AuditArch(f"c{i:02d}", BAND, genotype)
            for i, genotype in enumerate(band_architectures(band, per_group, seed, role))
        ]
    return archs
