"""The search's outputs: ``archs.csv`` (reproducible), ``timings.csv`` (wall clock),
``controller.csv`` (PPO's statistics per round), ``top.json`` (best distinct architectures) and
``metrics.json`` (DVC metrics)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..io import write_json, write_text
from ..provenance import KEY as PROVENANCE
from ..trial.recipe import STATUS_OK, TrialResult
from .layout import SearchLayout

ARCHS_COLUMNS = ("round", "index", *TrialResult.ROW_FIELDS)
TIMINGS_COLUMNS = ("round", "index", "hash", *TrialResult.TIMING_FIELDS)
PPO_STATS = ("entropy", "loss", "ratio_mean", "grad_norm")
CONTROLLER_COLUMNS = ("round", "archs", "mean_reward", *PPO_STATS)


@dataclass(frozen=True)
class Record:
    """One evaluated architecture at its place in the search."""

    round: int
    index: int
    result: TrialResult


def _format(value: object) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)
    return str(value)


def _csv_text(columns: Sequence[str], rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_format(row[c]) for c in columns])
    return buffer.getvalue()


def ordered(records: list[Record]) -> list[Record]:
    """Records in (round, index) order."""
    return sorted(records, key=lambda r: (r.round, r.index))


def archs_csv_text(records: list[Record]) -> str:
    """``archs.csv``: one row per architecture, only bit-for-bit reproducible fields."""
    rows = [{"round": r.round, "index": r.index, **r.result.to_row()} for r in ordered(records)]
    return _csv_text(ARCHS_COLUMNS, rows)


def timings_csv_text(records: list[Record]) -> str:
    """``timings.csv``: latency and seconds per phase (wall clock, not reproducible)."""
    rows = [
        {"round": r.round, "index": r.index, "hash": r.result.hash, **r.result.to_timing_row()}
        for r in ordered(records)
    ]
    return _csv_text(TIMINGS_COLUMNS, rows)


def controller_csv_text(records: list[Record], stats: Sequence[dict]) -> str:
    """``controller.csv``: per round, its architectures' mean reward and the statistics of
    PPO's update with them (``stats[r]``, the last epoch's; NaN where a round has none)."""
    rows = []
    for round_index, round_stats in enumerate(stats):
        rewards = [r.result.reward for r in records if r.round == round_index]
        rows.append(
            {
                "round": round_index,
                "archs": len(rewards),
                "mean_reward": sum(rewards) / len(rewards) if rewards else math.nan,
                **{key: float(round_stats.get(key, math.nan)) for key in PPO_STATS},
            }
        )
    return _csv_text(CONTROLLER_COLUMNS, rows)


def top_architectures(records: list[Record], k: int) -> list[dict]:
    """The best ``k`` distinct architectures (by hash) with status ok; ties keep search order."""
    best: dict[str, Record] = {}
    for record in ordered(records):
        if record.result.status != STATUS_OK:
            continue
        seen = best.get(record.result.hash)
        if seen is None or record.result.reward > seen.result.reward:
            best[record.result.hash] = record
    ranked = sorted(best.values(), key=lambda r: (-r.result.reward, r.round, r.index))[:k]
    return [
        {"rank": rank, "round": r.round, "index": r.index, **r.result.to_row()}
        for rank, r in enumerate(ranked)
    ]


def search_metrics(records: list[Record]) -> dict:
    """DVC metrics: best and mean reward, how many evaluated and failed."""
    rewards = [r.result.reward for r in records]
    failed = sum(r.result.status not in (STATUS_OK, "stopped_early") for r in records)
    return {
        "evaluated": len(records),
        "failed": failed,
        "best_reward": max(rewards, default=0.0),
        "mean_reward": sum(rewards) / len(rewards) if rewards else 0.0,
    }


def write_outputs(
    root: str | Path,
    records: list[Record],
    controller_stats: Sequence[dict],
    top_k: int,
    run_provenance: dict | None = None,
) -> None:
    """Write ``archs.csv``, ``timings.csv``, ``controller.csv``, ``top.json`` and
    ``metrics.json`` under ``root``; ``controller_stats[r]`` is PPO's update of round ``r``;
    ``run_provenance`` (``segnas.provenance``) goes into ``metrics.json``."""
    layout = SearchLayout(root)
    write_text(layout.archs_csv, archs_csv_text(records))
    write_text(layout.timings_csv, timings_csv_text(records))
    write_text(layout.controller_csv, controller_csv_text(records, controller_stats))
    write_json(layout.top, {"top": top_architectures(records, top_k)})
    metrics = search_metrics(records)
    if run_provenance is not None:
        metrics[PROVENANCE] = run_provenance
    write_json(layout.metrics, metrics)
