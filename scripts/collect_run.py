"""Collect a finished pipeline run's small outputs into a results folder, with the wall clock of
each stage and the paper's search findings, each judged by its test: ``met`` where the test
supports it (a 95 % bootstrap interval excluding zero), ``not established`` where only the
direction holds, ``not met`` otherwise.

The run is started through a wrapper that stamps every output line of ``dvc repro`` with the
epoch second and writes ``START <t> <commit>`` first and ``EXIT <rc> <t>`` last (see
``docs/results/camvid-cpu/README.md``). Then:

    python scripts/collect_run.py --run /path/to/project --log run.log --out docs/results/camvid-cpu
    python scripts/collect_run.py --rejudge --out docs/results/camvid-cpu   # judge again

Copies reports, figures, CSV and JSON metrics (never checkpoints, ONNX files or data) and
writes ``summary.json``: the report's headline numbers plus ``wall_clock_s``,
``wall_clock_s_per_stage``, ``commit``, ``command`` and ``findings`` (also as a table,
``findings.md``).
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import statistics
import sys
from pathlib import Path

from segnas.io import read_json, write_json, write_text
from segnas.seeds import derive_seed
from segnas.stats import BOOTSTRAP_SEED, json_number, mean_difference_ci

MET, NOT_ESTABLISHED, NOT_MET = "met", "not established", "not met"

COMMAND = "segnas config use camvid-cpu && dvc repro"
SMALL_OUTPUTS = (
    "params.yaml",
    "dvc.lock",
    "report/report.md",
    "report/figures/*.png",
    "search/archs.csv",
    "search/controller.csv",
    "search/timings.csv",
    "search/top.json",
    "search/metrics.json",
    "compare/compare.csv",
    "compare/samples.json",
    "compare/metrics.json",
    "results/metrics.json",
    "results/*/metrics.json",
    "results/*/per_class_iou.csv",
    "models/*/train.json",
)
STAGE_START = re.compile(r"^Running stage '([\w-]+)':$")


def stage_walls(log_lines: list[str]) -> tuple[str, dict[str, int], int]:
    """The commit, each stage's wall seconds and the total, from a stamped run log."""
    commit, start, end, rc = "", None, None, None
    starts: list[tuple[str, int]] = []
    for line in log_lines:
        stamp, _, text = line.rstrip("\n").partition(" ")
        if not stamp.isdigit():
            continue
        if text.startswith("START "):
            _, first, commit = text.split()
            start = int(first)
        elif text.startswith("EXIT "):
            _, code, last = text.split()
            rc, end = int(code), int(last)
        elif match := STAGE_START.match(text):
            starts.append((match.group(1), int(stamp)))
    if start is None or end is None:
        raise ValueError("the log has no START or no EXIT line: is the run finished?")
    if rc != 0:
        raise ValueError(f"the run exited with status {rc}; collect a finished run only")
    walls = {}
    for (name, began), (_, ended) in zip(starts, [*starts[1:], ("", end)], strict=True):
        walls[name] = ended - began
    return commit, walls, end - start


def _verdict(supported: bool, direction: bool) -> str:
    """``met`` where the test supports the finding, ``not established`` where only the
    direction holds, ``not met`` otherwise."""
    if supported:
        return MET
    return NOT_ESTABLISHED if direction else NOT_MET


def _interval_finding(
    value: float, low: float | None, high: float | None, **values: object
) -> dict:
    """A difference or correlation judged by its 95 % bootstrap interval excluding zero."""
    supported = low is not None and low > 0
    return {
        "verdict": _verdict(supported, value > 0),
        "test": "95 % bootstrap interval excludes 0",
        "value": value,
        "ci": [low, high],
        **values,
    }


def findings(summary: dict, max_params: int, budget_s: int, search_rewards: list[float]) -> dict:
    """The paper's findings at CPU scale, each judged by its test (``search_rewards``: the
    search's rewards in evaluation order, for the first-vs-last-quarter test)."""
    compare, train = summary["compare"], summary["train"]
    quarter = len(search_rewards) // 4
    first, last = search_rewards[:quarter], search_rewards[-quarter:]
    rise = mean_difference_ci(last, first, seed=derive_seed(BOOTSTRAP_SEED, "rise"))
    out = {
        "search_last_quarter_above_first": _interval_finding(
            rise.value,
            json_number(rise.low),
            json_number(rise.high),
            first=statistics.fmean(first),
            last=statistics.fmean(last),
        )
    }
    for setup, block in (("search", compare), ("long", compare["long_setup"])):
        difference = block["mean_difference"]
        out[f"controller_above_random_{setup}_setup"] = _interval_finding(
            difference["value"],
            difference["low"],
            difference["high"],
            mann_whitney_p=block["mann_whitney_p"],
        )
    for group in ("controller", "random"):
        low, high = compare["spearman_rho_ci"][group]
        out[f"rank_fidelity_{group}"] = _interval_finding(compare["spearman_rho"][group], low, high)
    arch0, top0 = train["arch0"]["test_miou"], train["top0"]["test_miou"]
    direction = top0 >= arch0 - 0.01 and train["top0"]["params"] <= max_params
    out["top0_within_1_point_of_arch0_at_most_max_params"] = {
        "verdict": _verdict(False, direction),
        "test": "none possible: one training seed each",
        "arch0": arch0,
        "top0": top0,
        "top0_params": train["top0"]["params"],
        "max_params": max_params,
    }
    within = summary["wall_clock_s"] <= budget_s
    out["pipeline_within_budget"] = {
        "verdict": MET if within else NOT_MET,
        "test": "a measured wall clock (no sampling)",
        "wall_clock_s": summary["wall_clock_s"],
    }
    return out


PAPER = {
    "search_last_quarter_above_first": "rewards rise through the search (Fig. 5)",
    "controller_above_random_search_setup": "the controller beats random sampling (Fig. 8)",
    "controller_above_random_long_setup": "the same, after a longer training (Fig. 8)",
    "rank_fidelity_controller": "rho 0.734 for the controller's samples (Fig. 9)",
    "rank_fidelity_random": "rho 0.904 for random samples (Fig. 9)",
    "top0_within_1_point_of_arch0_at_most_max_params": "arch0 is the search's best (Table 1)",
    "pipeline_within_budget": "(this project: the whole CamVid pipeline in <= 2 h on 2 cores)",
}


def _values(finding: dict) -> str:
    parts = []
    for key, value in finding.items():
        if key in ("verdict", "test"):
            continue
        if key == "ci":
            low, high = value
            parts.append("95 % CI " + (f"[{low:.3g}, {high:.3g}]" if low is not None else "-"))
        elif isinstance(value, float):
            parts.append(f"{key} {value:.4g}")
        else:
            parts.append(f"{key} {value}")
    return ", ".join(parts)


def findings_markdown(summary: dict) -> str:
    """The findings as a table: each finding, the paper's, the measured values, the test and
    the verdict."""
    lines = ["| finding | paper | measured | test | verdict |", "|---|---|---|---|---|"]
    for name, finding in summary["findings"].items():
        lines.append(
            f"| {name} | {PAPER[name]} | {_values(finding)} | {finding['test']} | "
            f"**{finding['verdict']}** |"
        )
    return "\n".join(lines) + "\n"


def read_search_rewards(archs_csv: Path) -> list[float]:
    """The rewards of a search's ``archs.csv`` in evaluation order."""
    with archs_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows.sort(key=lambda row: (int(row["round"]), int(row["index"])))
    return [float(row["reward"]) for row in rows]


def collect(run: Path, log: Path, out: Path, max_params: int, budget_s: int) -> dict:
    """Copy the small outputs of ``run`` into ``out`` and write ``out/summary.json``."""
    commit, walls, total = stage_walls(log.read_text().splitlines())
    summary = read_json(run / "report" / "summary.json")
    summary.update(wall_clock_s=total, wall_clock_s_per_stage=walls, commit=commit, command=COMMAND)
    rewards = read_search_rewards(run / "search" / "archs.csv")
    summary["findings"] = findings(summary, max_params, budget_s, rewards)
    out.mkdir(parents=True, exist_ok=True)
    for pattern in SMALL_OUTPUTS:
        for source in sorted(run.glob(pattern)):
            target = out / source.relative_to(run)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    shutil.copyfile(log, out / "run.log")
    write_json(out / "summary.json", summary)
    write_text(out / "findings.md", findings_markdown(summary))
    return summary


def rejudge(out: Path, max_params: int, budget_s: int) -> dict:
    """Judge the findings of an already collected results folder again (its ``summary.json``
    and ``search/archs.csv``), rewriting ``summary.json`` and ``findings.md``."""
    summary = read_json(out / "summary.json")
    rewards = read_search_rewards(out / "search" / "archs.csv")
    summary["findings"] = findings(summary, max_params, budget_s, rewards)
    write_json(out / "summary.json", summary)
    write_text(out / "findings.md", findings_markdown(summary))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="the finished project")
    parser.add_argument("--log", type=Path, help="the stamped run log")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--rejudge", action="store_true", help="judge the findings of --out again (no --run)"
    )
    parser.add_argument("--max-params", type=int, default=300_000)
    parser.add_argument("--budget-s", type=int, default=7200)
    args = parser.parse_args(argv)
    if not args.rejudge and (args.run is None or args.log is None):
        parser.error("--run and --log are required (or --rejudge an existing --out)")
    try:
        if args.rejudge:
            summary = rejudge(args.out, args.max_params, args.budget_s)
        else:
            summary = collect(args.run, args.log, args.out, args.max_params, args.budget_s)
    except (OSError, ValueError) as error:
        print(f"collect_run: {error}", file=sys.stderr)
        return 1
    for name, finding in summary["findings"].items():
        print(f"{finding['verdict']:16} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
