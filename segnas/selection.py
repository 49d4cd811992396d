"""Which architectures the final training gets: published names, genotypes, the search's best."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class SizeCap:
    """At most ``max_params`` parameters in the final network (``num_classes`` outputs,
    ``agg_width``, ``sep_conv_units``) of a search result that final training takes."""

    max_params: int
    num_classes: int
    agg_width: int = 64
    sep_conv_units: int = 2

    def params(self, genotype: Genotype) -> int:
        """Parameters of ``genotype``'s final network."""
        from .complexity import count_params
        from .model import build_model

        model = build_model(genotype, self.num_classes, self.agg_width, self.sep_conv_units)
        return count_params(model)


def select_architectures(
    architectures: Sequence[str | dict[str, str]],
    top_k: int = 0,
    top_json: str | Path = "search/top.json",
    where: str = "train",
    cap: SizeCap | None = None,
) -> dict[str, Genotype]:
    """Name -> genotype for the requested architectures.

    ``architectures`` holds published names (``arch0``), genotype texts/JSON (named
    ``g<hash>``) or ``{name: ..., genotype: ...}`` mappings; ``top_k`` adds the best ``k`` of
    ``top_json`` as ``top0``, ``top1``, ..., skipping those whose final network is over
    ``cap`` (the search reward does not see size).
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
        entries = [resolve_genotype(e["genotype"]) for e in _top_entries(Path(top_json))]
        if cap is not None:
            entries = [g for g in entries if cap.params(g) <= cap.max_params]
        if len(entries) < top_k:
            within = f" with at most {where}.max_params = {cap.max_params:,}" if cap else ""
            raise ConfigError(
                f"{where}.top_k is {top_k} but {top_json} lists only {len(entries)} "
                f"architectures{within}; lower top_k, raise max_params or keep more in "
                "search.top_k"
            )
        for i, genotype in enumerate(entries[:top_k]):
            selected[f"top{i}"] = genotype
    if not selected:
        raise ConfigError(f"{where}: no architectures; set architectures: [arch0] or top_k: 1")
    return selected


def trained_names(
    architectures: Sequence[str | dict[str, str]], top_k: int, where: str = "train"
) -> dict[str, Genotype | None]:
    """The model names the train stage writes for these params: each of ``architectures``
    with its genotype, then ``top0`` ... ``top<top_k - 1>`` (their genotypes are in the
    search's ``top.json``, not read here: ``None``)."""
    named = select_architectures(architectures, where=where) if architectures else {}
    return {**named, **{f"top{i}": None for i in range(top_k)}}
