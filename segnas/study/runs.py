"""One run of a study: a whole search with one strategy and one search seed (the project's
search runner, in the study's work folder, resumable), then its best architecture under the
parameter cap trained with the final recipe and scored on the **val** split (the reward
audit's final training). A run's small results land in ``runs/<strategy>-s<seed>/``:
``curve.csv`` (every evaluation's reward and the best so far), ``final.json`` and
``run.json`` (which marks the run done)."""

from __future__ import annotations

import copy
import csv
import io
import subprocess
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from ..audit.data import AuditData, stamp
from ..audit.finals import FinalJob, run_final_job
from ..audit.plan import AuditArch
from ..config import changed_keys, load_params
from ..data.prepared import load_prepared
from ..errors import ArtifactError, ConfigError
from ..io import read_json, write_json, write_text
from ..named_configs import config_path
from ..pipeline.paths import PREPARED
from ..search.identity import search_identity
from ..search.layout import SearchLayout
from ..search.log import Record
from ..search.runner import run_search
from ..seeds import derive_seed
from ..selection import SizeCap
from ..space import DEFAULT_SPACE, Genotype
from ..trial.spec import TrialSpec
from ..workers import set_cpu_threads
from .plan import StudyLayout, StudyPlan, run_name

CURVE_COLUMNS = ("evaluation", "round", "index", "hash", "status", "reward", "best_so_far")
VARIED = ("search.strategy", "search.seed")


def check_configuration(plan: StudyPlan, params: dict, params_path: str) -> None:
    """Refuse params that are not the plan's configuration (strategy and seed aside)."""
    named = Path(plan.configuration)
    source = named if named.suffix in (".yaml", ".yml") else config_path(plan.configuration)
    differ = [k for k in changed_keys(load_params(source), params) if k not in VARIED]
    if differ:
        raise ConfigError(
            f"{params_path} is not the study's configuration {plan.configuration!r} ({source}): "
            f"{', '.join(differ)} differ; run `segnas config use {plan.configuration}` or "
            "change the plan (and say why in PLAN.md)"
        )


def run_params(params: dict, strategy: str, seed: int) -> dict:
    """``params`` with the run's strategy and search seed."""
    params = copy.deepcopy(params)
    params["search"]["strategy"] = strategy
    params["search"]["seed"] = seed
    return params


def curve_rows(records: Sequence[Record]) -> list[dict[str, Any]]:
    """Every evaluation in search order with the best reward so far."""
    rows, best = [], 0.0
    ordered = sorted(records, key=lambda r: (r.round, r.index))
    for number, record in enumerate(ordered, start=1):
        best = max(best, record.result.reward)
        rows.append(
            {
                "evaluation": number,
                "round": record.round,
                "index": record.index,
                "hash": record.result.hash,
                "status": record.result.status,
                "reward": repr(record.result.reward),
                "best_so_far": repr(best),
            }
        )
    return rows


def best_within_cap(records: Sequence[Record], cap: SizeCap) -> tuple[Record, int]:
    """The highest-reward architecture whose final network has at most ``cap.max_params``
    parameters (earlier in the search on a tie), and that count."""
    ordered = sorted(records, key=lambda r: (-r.result.reward, r.round, r.index))
    for record in ordered:
        size = cap.params(DEFAULT_SPACE.from_text(record.result.genotype))
        if size <= cap.max_params:
            return record, size
    raise ArtifactError(
        f"no architecture of the search has a final network of at most {cap.max_params:,} "
        "parameters; raise max_params in the study plan"
    )


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CURVE_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def final_job(
    layout: StudyLayout,
    data: AuditData,
    strategy: str,
    seed: int,
    genotype: Genotype,
    result_path: Path | None = None,
) -> FinalJob:
    """The final training of the run's best architecture (resumable, in the run's work folder;
    its result in ``final.json`` unless ``result_path`` says otherwise). Every strategy's best
    of one search seed trains with the same seed (paired noise)."""
    train_seed = derive_seed(data.seed, "study", "final", seed) % 2**31
    return FinalJob(
        AuditArch(run_name(strategy, seed), strategy, genotype),
        0,
        stamp(data.final_identity()),
        replace(data.train, seed=train_seed),
        data,
        result_path or layout.final(strategy, seed),
        layout.final_work(strategy, seed),
        log_prefix="study final",
    )


def run_one(
    layout: StudyLayout,
    plan: StudyPlan,
    params: dict,
    params_path: str,
    strategy: str,
    seed: int,
    stream: TextIO,
) -> dict[str, Any]:
    """Search with ``strategy`` and search seed ``seed``, then train its best; the run's
    summary (also written to ``run.json``). A finished run is read back, not redone."""
    result_path = layout.run_result(strategy, seed)
    params = run_params(params, strategy, seed)
    config, extra, params_hash = search_identity(params, params_path)
    if result_path.is_file():
        done = read_json(result_path)
        if done.get("params_hash") != params_hash:
            raise ArtifactError(
                f"{result_path} holds a run of other params (hash {done.get('params_hash')}, "
                f"today {params_hash}); move {result_path.parent} aside to rerun it"
            )
        return done
    start = time.monotonic()
    spec = TrialSpec.from_params(config, params, params_path)
    stream.write(f"[study] {run_name(strategy, seed)}: search ({config.total} architectures)\n")
    records = run_search(
        SearchLayout(layout.search_dir(strategy, seed)),
        config,
        params_hash,
        spec,
        stream,
        extra=extra,
    )
    rows = curve_rows(records)
    write_text(layout.curve(strategy, seed), _csv_text(rows))
    data = AuditData.from_params(params, params_path)
    prepared = load_prepared(PREPARED / data.train_dataset)
    cap = SizeCap(
        plan.max_params, prepared.num_classes, data.train.agg_width, data.train.sep_conv_units
    )
    best, size = best_within_cap(records, cap)
    summary: dict[str, Any] = {
        "strategy": strategy,
        "seed": seed,
        "params_hash": params_hash,
        "evaluations": len(records),
        "best": {
            "genotype": best.result.genotype,
            "hash": best.result.hash,
            "reward": best.result.reward,
            "final_params": size,
            "round": best.round,
            "index": best.index,
        },
        "best_reward_any_size": max(r.result.reward for r in records),
        "search_wall_s": time.monotonic() - start,
    }
    stream.write(f"[study] {run_name(strategy, seed)}: final training of {best.result.hash}\n")
    genotype = DEFAULT_SPACE.from_text(best.result.genotype)
    set_cpu_threads(data.train_threads)
    trained = run_final_job(final_job(layout, data, strategy, seed, genotype))
    summary["final"] = {
        key: trained[key] for key in ("val_miou", "best_val_miou", "epochs", "seed", "core_s")
    }
    summary["final_stamp"] = trained["params_hash"]
    summary["wall_clock_s"] = time.monotonic() - start
    write_json(result_path, summary)
    return summary


def commit_run(layout: StudyLayout, strategy: str, seed: int) -> None:
    """``git add`` and ``git commit`` the run's small results (``--commit``)."""
    folder = layout.run_dir(strategy, seed)
    subprocess.run(["git", "add", str(folder)], check=True)
    message = f"study: run {run_name(strategy, seed)} ({folder})"
    subprocess.run(["git", "commit", "-q", "-m", message, "--", str(folder)], check=True)
