"""The stage registry: per stage its script, the params it reads, its inputs and outputs.

``dvc.yaml`` is generated from it (``segnas dvc-yaml``), the Snakemake rules take
their rerun triggers from it, and ``repro``, the tests and the docs read it. The stages are
listed in the order they run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError


@dataclass(frozen=True)
class Output:
    """One declared output; ``persist`` keeps it across reruns, ``cache: false`` leaves it in
    place (DVC neither stores nor rewrites it), ``metric`` lists it under ``metrics``."""

    path: str
    persist: bool = False
    cache: bool = True
    metric: bool = False
    note: str = ""


@dataclass(frozen=True)
class Stage:
    """A pipeline stage: ``stages/<name>.py`` run with ``--params params.yaml``."""

    name: str
    desc: str
    sections: tuple[str, ...]
    inputs: tuple[str, ...]
    outputs: tuple[Output, ...]
    run_only: tuple[str, ...] = ()

    @property
    def script(self) -> str:
        return f"stages/{self.name}.py"

    @property
    def cmd(self) -> str:
        return f"python {self.script} --params params.yaml"

    def params(self, values: dict[str, Any]) -> dict[str, Any]:
        """The params sections this stage reads, without the keys that only change how it
        runs (``run_only``, dotted ``section.key``): what decides its results."""
        chosen: dict[str, Any] = {}
        for section in self.sections:
            value = values.get(section)
            dropped = {k.split(".", 1)[1] for k in self.run_only if k.startswith(f"{section}.")}
            if dropped and isinstance(value, dict):
                value = {k: v for k, v in value.items() if k not in dropped}
            chosen[section] = value
        return chosen


_SEARCH_DATA = ("data/prepared", "data/split", "cache/stem")

REGISTRY: tuple[Stage, ...] = (
    Stage(
        "prepare",
        "every dataset under params `datasets` -> data/prepared/<name>/",
        ("seed", "datasets"),
        (),
        (Output("data/prepared"),),
    ),
    Stage(
        "split",
        "the search dataset's train split -> meta-train / meta-val",
        ("seed", "split"),
        ("data/prepared",),
        (Output("data/split"),),
    ),
    Stage(
        "cache_stem",
        "stem features of fixed meta-train crops (float16 memmaps)",
        ("seed", "stem", "cache_stem"),
        ("data/prepared", "data/split"),
        (Output("cache/stem"),),
    ),
    Stage(
        "search",
        "LSTM controller + PPO over sampled architectures (Snakemake fans it out per round)",
        ("seed", "device", "stem", "search"),
        _SEARCH_DATA,
        (
            Output("search/rounds", persist=True),
            Output("search/controller", persist=True),
            Output("search/archs.csv"),
            Output("search/timings.csv"),
            Output("search/top.json"),
            Output("search/metrics.json", cache=False, metric=True),
        ),
        run_only=("search.workers", "search.progress_interval"),
    ),
    Stage(
        "compare",
        "trained controller vs uniform sampling, search setup vs a longer one",
        ("seed", "device", "stem", "search", "compare"),
        (*_SEARCH_DATA, "search/controller/final.pt"),
        (
            Output(
                "compare/samples.json",
                cache=False,
                note="not cached: DVC rewrites a cached single file after the stage, which "
                "would make it\nnewer than the evaluations (Snakemake's compare_evaluate jobs) "
                "that read it",
            ),
            Output("compare/evals"),
            Output("compare/compare.csv"),
            Output("compare/metrics.json", cache=False, metric=True),
        ),
        run_only=("search.workers", "search.progress_interval", "compare.workers"),
    ),
    Stage(
        "train",
        "full training of params `train.architectures` + the search's top_k -> models/<name>/",
        ("seed", "device", "stem", "train"),
        ("data/prepared", "search/top.json"),
        (Output("models"),),
    ),
    Stage(
        "evaluate",
        "test-split scores, model facts, latency, ONNX -> results/<name>/, results/metrics.json",
        ("device", "evaluate"),
        ("data/prepared", "models"),
        (Output("results"),),
    ),
    Stage(
        "report",
        "report/report.html + report.md from every artifact",
        ("report",),
        (
            "segnas/report/paper_results.yaml",
            "search/archs.csv",
            "search/top.json",
            "compare/compare.csv",
            "compare/metrics.json",
            "results",
        ),
        (Output("report"),),
    ),
)
STAGES: tuple[str, ...] = tuple(s.name for s in REGISTRY)
# Metrics files inside a stage's output folder (DVC lists them at the top level).
NESTED_METRICS: tuple[str, ...] = ("results/metrics.json",)


def stage_outputs() -> dict[str, list[str]]:
    """Each stage's declared outputs (metrics files included)."""
    return {s.name: [o.path for o in s.outputs] for s in REGISTRY}


def metric_files() -> list[str]:
    """Every metrics file: those a stage declares, then those inside an output folder."""
    return [o.path for s in REGISTRY for o in s.outputs if o.metric] + list(NESTED_METRICS)


def stage(name: str) -> Stage:
    """The registered stage ``name``."""
    for candidate in REGISTRY:
        if candidate.name == name:
            return candidate
    raise ConfigError(f"unknown stage {name!r}; the stages are {', '.join(STAGES)}")
