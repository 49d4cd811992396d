"""The search stage (``stages/search.py``): today's search from the params, then the whole
search on this machine or one fan-out step (Snakemake runs those side by side under a shared
lock), each ending in the stage's closing line."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from ..errors import ConfigError
from ..trial.spec import TrialSpec
from .config import SearchConfig
from .identity import search_identity
from .layout import SearchLayout
from .lock import directory_lock
from .runner import run_search
from .steps import assemble, run_trial_index, sample_round, update_round


@dataclass(frozen=True)
class SearchPlan:
    """Today's search: its config, what its params hash covers besides the config
    (``extra``), the hash, and the trial spec on its resolved device."""

    config: SearchConfig
    extra: dict
    params_hash: str
    spec: TrialSpec


def plan_search(params: dict, params_path: str) -> SearchPlan:
    """The search that ``params`` describe, its trials on the device they name."""
    config, extra, params_hash = search_identity(params, params_path)
    spec = TrialSpec.from_params(config, params, params_path)
    return SearchPlan(config, extra, params_hash, spec)


def run_whole_search(
    layout: SearchLayout, plan: SearchPlan, workers: int | None, start: float
) -> str:
    """Every round on this machine (``workers`` processes overriding ``search.workers`` when
    given); the closing line, timed from ``start`` (``time.monotonic()``)."""
    config = plan.config
    if workers is not None:
        if workers < 1:
            raise ConfigError(f"--workers must be at least 1, got {workers}")
        config = replace(config, workers=workers)
    records = run_search(layout, config, plan.params_hash, plan.spec, extra=plan.extra)
    best = max(records, key=lambda r: r.result.reward)
    return (
        f"search: {len(records)} architectures in {config.rounds} rounds "
        f"({config.workers} workers, {time.monotonic() - start:.0f} s); best reward "
        f"{best.result.reward:.4f} ({best.result.hash}) -> {layout.root}"
    )


def run_fan_out_step(
    layout: SearchLayout,
    plan: SearchPlan,
    step: str,
    round_index: int | None,
    index: int | None,
    start: float,
) -> str:
    """One fan-out step (``sample``, ``trial``, ``update`` or ``assemble``) under the search
    folder's shared lock; the closing line, timed from ``start`` (``time.monotonic()``)."""
    config, params_hash = plan.config, plan.params_hash
    with directory_lock(layout.root, params_hash, shared=True):
        if step == "sample":
            samples = sample_round(layout, config, params_hash, round_index)
            return f"search: sampled round {round_index} ({len(samples)} architectures)"
        if step == "trial":
            evaluate = plan.spec.build()
            result = run_trial_index(layout, config, params_hash, round_index, index, evaluate)
            return (
                f"search: round {round_index} index {index} {result.hash} "
                f"{result.status} reward {result.reward:.4f} "
                f"({time.monotonic() - start:.1f} s)"
            )
        if step == "update":
            stats = update_round(layout, config, params_hash, round_index)
            return f"search: updated the controller with round {round_index} {stats}"
        records = assemble(layout, config, params_hash, run_provenance=plan.spec.provenance())
        return f"search: assembled {len(records)} architectures -> {layout.root}"
