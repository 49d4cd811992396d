"""The stage registry: per stage its script, the params it reads, its inputs and outputs.

``dvc.yaml`` is generated from it (``segnas dvc-yaml``), the Snakemake rules take
their rerun triggers from it, and ``repro``, the tests and the docs read it. The stages are
listed in the order they run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..compare.layout import CompareLayout
from ..errors import ConfigError
from ..search.layout import SearchLayout
from .paths import (
    COMPARE,
    MODELS,
    PAPER_RESULTS,
    PREPARED,
    REPORT,
    RESULTS,
    SEARCH,
    SEARCH_CONTROLLER,
    SPLIT,
    STEM_CACHE,
)


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


_SEARCH_DATA = (PREPARED.as_posix(), SPLIT.as_posix(), STEM_CACHE.as_posix())
_SEARCH = SearchLayout(SEARCH)
_COMPARE = CompareLayout(COMPARE)

REGISTRY: tuple[Stage, ...] = (
    Stage(
        "prepare",
        "every dataset under params `datasets` -> data/prepared/<name>/",
        ("seed", "datasets"),
        (),
        (Output(PREPARED.as_posix()),),
    ),
    Stage(
        "split",
        "the search dataset's train split -> meta-train / meta-val",
        ("seed", "split"),
        (PREPARED.as_posix(),),
        (Output(SPLIT.as_posix()),),
    ),
    Stage(
        "cache_stem",
        "stem features of fixed meta-train crops (float16 memmaps)",
        ("seed", "stem", "split", "cache_stem"),
        (PREPARED.as_posix(), SPLIT.as_posix()),
        (Output(STEM_CACHE.as_posix()),),
    ),
    Stage(
        "search",
        "LSTM controller + PPO over sampled architectures (Snakemake fans it out per round)",
        ("seed", "device", "stem", "search"),
        _SEARCH_DATA,
        (
            Output(_SEARCH.rounds_dir.as_posix(), persist=True),
            Output(_SEARCH.controller_dir.as_posix(), persist=True),
            Output(_SEARCH.archs_csv.as_posix()),
            Output(_SEARCH.timings_csv.as_posix()),
            Output(_SEARCH.controller_csv.as_posix()),
            Output(_SEARCH.top.as_posix()),
            Output(_SEARCH.metrics.as_posix(), metric=True),
        ),
        run_only=("search.workers", "search.progress_interval"),
    ),
    Stage(
        "compare",
        "trained controller vs uniform sampling, search setup vs a longer one",
        ("seed", "device", "stem", "search", "compare"),
        (*_SEARCH_DATA, SEARCH_CONTROLLER.as_posix()),
        (
            Output(
                _COMPARE.samples.as_posix(),
                cache=False,
                note="not cached: DVC rewrites a cached single file after the stage, which "
                "would make it\nnewer than the evaluations (Snakemake's compare_trial jobs) "
                "that read it;\ngit keeps it instead (.gitignore leaves it out)",
            ),
            Output(_COMPARE.evals_dir.as_posix()),
            Output(_COMPARE.csv.as_posix()),
            Output(_COMPARE.metrics.as_posix(), metric=True),
        ),
        run_only=("search.workers", "search.progress_interval", "compare.workers"),
    ),
    Stage(
        "train",
        "full training of params `train.architectures` + the search's top_k -> models/<name>/",
        # search: top_k reads the search's results only after checking they are today's
        ("seed", "device", "stem", "search", "train"),
        (PREPARED.as_posix(), _SEARCH.top.as_posix()),
        (Output(MODELS.as_posix()),),
        run_only=("search.workers", "search.progress_interval"),
    ),
    Stage(
        "evaluate",
        "test-split scores, model facts, latency, ONNX -> results/<name>/, results/metrics.json",
        ("seed", "device", "stem", "train", "evaluate"),
        (PREPARED.as_posix(), MODELS.as_posix()),
        (Output(RESULTS.as_posix()),),
        run_only=("train.threads", "train.num_workers"),
    ),
    Stage(
        "report",
        "report/report.html + report.md + summary.json from every artifact",
        ("seed", "stem", "search", "compare", "report"),
        (
            PAPER_RESULTS.as_posix(),
            _SEARCH.archs_csv.as_posix(),
            _SEARCH.timings_csv.as_posix(),
            _SEARCH.controller_csv.as_posix(),
            _SEARCH.top.as_posix(),
            _COMPARE.csv.as_posix(),
            RESULTS.as_posix(),
        ),
        (Output(REPORT.as_posix()),),
        run_only=("search.workers", "search.progress_interval", "compare.workers"),
    ),
)
STAGES: tuple[str, ...] = tuple(s.name for s in REGISTRY)
# Metrics files inside a stage's output folder (DVC lists them at the top level).
NESTED_METRICS: tuple[str, ...] = (f"{RESULTS}/metrics.json",)


@dataclass(frozen=True)
class Plot:
    """A ``dvc plots`` definition: ``y`` maps a file to the column it draws, against ``x``
    (None: the row number, DVC's ``step``)."""

    name: str
    title: str
    y: dict[str, str]
    x: str | None = None
    template: str = "linear"


# What `dvc plots show` draws and `dvc plots diff` compares. Training curves: arch0's, which
# every shipped configuration trains (other models' DVCLive files sit beside them).
ARCH0_CURVES = f"{MODELS}/arch0/dvclive/plots/metrics"
PLOTS: tuple[Plot, ...] = (
    Plot(
        "search_reward",
        "Search: reward of each architecture, in the order evaluated",
        {f"{SEARCH}/archs.csv": "reward"},
    ),
    Plot(
        "controller_entropy",
        "Search: the controller's entropy after each round",
        {f"{SEARCH}/controller.csv": "entropy"},
        x="round",
    ),
    Plot(
        "controller_vs_random",
        "Compare: reward in the search setup (x) and the longer setup (y)",
        {f"{COMPARE}/compare.csv": "reward_long"},
        x="reward_search",
        template="scatter",
    ),
    Plot("arch0_loss", "Train: arch0's loss per epoch", {f"{ARCH0_CURVES}/train/loss.tsv": "loss"}),
    Plot(
        "arch0_val_miou",
        "Train: arch0's validation mIoU",
        {f"{ARCH0_CURVES}/val_miou.tsv": "val_miou"},
        x="step",
    ),
)


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
