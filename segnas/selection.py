"""Which architectures the final training gets: published names, genotypes, the search's best."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ArtifactError, ConfigError
from .io import read_json
from .published import resolve_genotype
from .space import Genotype


def _top_entries(top_json: Path) -> list[dict[str, Any]]:
    data = read_json(top_json)
    entries = data.get("top", data.get("architectures")) if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise ArtifactError(f"{top_json}: expected a list of architectures (or a 'top' list)")
    out = []
    for i, entry in enumerate(entries):
        text = entry.get("genotype") if isinstance(entry, dict) else entry
        if not isinstance(text, str):
            raise ArtifactError(f"{top_json}: entry {i} has no 'genotype' text")
        out.append({"genotype": text})
    return out


def select_architectures(
    architectures: Sequence[str | dict[str, str]],
    top_k: int = 0,
    top_json: str | Path = "search/top.json",
    where: str = "train",
) -> dict[str, Genotype]:
    """Name -> genotype for the requested architectures.

    ``architectures`` holds published names (``arch0``), genotype texts/JSON (named
    ``g<hash>``) or ``{name: ..., genotype: ...}`` mappings; ``top_k`` adds the best ``k`` of
    ``top_json`` as ``top0``, ``top1``, ...
    """
    selected: dict[str, Genotype] = {}
    for i, spec in enumerate(architectures):
        if isinstance(spec, dict):
            if set(spec) != {"name", "genotype"}:
                raise ConfigError(f"{where}.architectures[{i}] must have keys name and genotype")
            name, genotype = str(spec["name"]), resolve_genotype(str(spec["genotype"]))
        else:
            genotype = resolve_genotype(str(spec))
            name = str(spec) if str(spec).isidentifier() else f"g{genotype.hash}"
        if name in selected:
            raise ConfigError(f"{where}.architectures: the name {name!r} appears twice")
        selected[name] = genotype
    if top_k:
        entries = _top_entries(Path(top_json))
        if len(entries) < top_k:
            raise ConfigError(
                f"{where}.top_k is {top_k} but {top_json} lists only {len(entries)} architectures"
            )
        for i, entry in enumerate(entries[:top_k]):
            selected[f"top{i}"] = resolve_genotype(entry["genotype"])
    if not selected:
        raise ConfigError(f"{where}: no architectures; set architectures: [arch0] or top_k: 1")
    return selected
