"""The compare stage (``stages/compare.py``): today's comparison from the params (its search
checked to be the one that wrote the controller checkpoint), then every step locally or one
fan-out step, each ending in the stage's closing line."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..config import section, setting
from ..errors import ConfigError
from ..identity import describe_difference
from ..search.config import SearchConfig
from ..search.controller import load_controller, read_checkpoint
from ..search.identity import identity_of, recorded_identity, refuse_stale, search_identity
from ..trial.spec import TrialSpec
from .config import CompareConfig, compare_hash
from .steps import (
    GROUPS,
    CompareLayout,
    assemble,
    long_setup,
    run_compare,
    run_compare_trial,
    write_samples,
)


@dataclass(frozen=True)
class ComparePlan:
    """Today's comparison: the compare params, the search's seed, the two setups' trial specs
    (``search``, ``long``), the comparison's params hash and the controller it samples."""

    config: CompareConfig
    seed: int
    specs: dict[str, TrialSpec]
    params_hash: str
    controller_path: Path


def require_controller(search: SearchConfig, params_path: str) -> None:
    """Compare samples the trained controller: refuse a search of another strategy, whose
    saved controller was never trained."""
    if search.strategy != "controller":
        raise ConfigError(
            f"{params_path}: search.strategy is {search.strategy!r}; the compare stage samples "
            "the trained controller (search.strategy: controller). Compare strategies with "
            "`segnas study` (docs/study.md)"
        )


def check_controller_matches(
    controller: Path, params: dict, params_path: str, reader: str
) -> tuple[SearchConfig, str]:
    """Today's search config and params hash, once the controller checkpoint ``controller``
    is known to come from the search of today's params (else refuse, naming the keys that
    differ when its search directory's ``state.json`` records them)."""
    config, extra, expected = search_identity(params, params_path)
    found = str(read_checkpoint(controller).get("params_hash"))
    if found != expected:
        stored = recorded_identity(controller.parent.parent, found)
        why = describe_difference(stored, identity_of(config, extra), found, expected)
        raise refuse_stale(f"{controller} comes from a search", params_path, why, reader)
    return config, expected


def plan_compare(
    params: dict, params_path: str, config: CompareConfig, controller_path: Path
) -> ComparePlan:
    """The comparison that ``params`` and ``config`` describe, once ``controller_path`` is
    known to hold the trained controller of today's search; its trials on the device the
    params name."""
    search = SearchConfig.from_params(
        section(params, "search", params_path), int(setting(params, "seed", params_path))
    )
    require_controller(search, params_path)
    search, search_hash = check_controller_matches(controller_path, params, params_path, "compare")
    base = TrialSpec.from_params(search, params, params_path)
    specs = {
        "search": base,
        "long": replace(base, setup=long_setup(search.eval, config.long_phase2_epochs)),
    }
    return ComparePlan(
        config, search.seed, specs, compare_hash(search_hash, config), controller_path
    )


def run_one_trial(
    layout: CompareLayout, plan: ComparePlan, group: str, setup: str, index: int, start: float
) -> str:
    """The fan-out step ``trial``: architecture ``index`` of ``group`` in ``setup``; the
    closing line, timed from ``start`` (``time.monotonic()``)."""
    result = run_compare_trial(
        layout, plan.params_hash, plan.seed, group, setup, index, plan.specs[setup].build()
    )
    return (
        f"compare: {group} {setup} #{index} {result.hash} "
        f"{result.status} reward {result.reward:.4f} ({time.monotonic() - start:.1f} s)"
    )


def run_compare_step(layout: CompareLayout, plan: ComparePlan, step: str, start: float) -> str:
    """Every step locally (``run``), or the fan-out step ``sample`` or ``assemble``; the
    closing line, timed from ``start`` (``time.monotonic()``)."""
    config = plan.config
    if step == "assemble":
        provenance = plan.specs["search"].provenance()
        metrics = assemble(layout, config, plan.params_hash, run_provenance=provenance)
    else:
        controller = load_controller(plan.controller_path)
        if step == "sample":
            write_samples(layout, controller, config, plan.seed, plan.params_hash)
            return f"compare: sampled {config.num_archs} + {config.num_archs} architectures"
        metrics = run_compare(layout, controller, config, plan.specs, plan.seed, plan.params_hash)
    return _correlation_line(config, metrics, start, layout.root)


def _correlation_line(
    config: CompareConfig, metrics: dict[str, Any], start: float, root: Path
) -> str:
    rho = {g: metrics[g]["spearman_rho"] for g in GROUPS}
    return (
        f"compare: {4 * config.num_archs} evaluations; Spearman rho search vs long: "
        + ", ".join(f"{g} {'n/a' if r is None else f'{r:.3f}'}" for g, r in rho.items())
        + f" ({time.monotonic() - start:.0f} s) -> {root}"
    )
