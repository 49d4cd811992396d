"""Collect a finished pipeline run's small outputs into a results folder, with the wall clock of
each stage and the paper's search findings judged as met or not met.

The run is started through a wrapper that stamps every output line of ``dvc repro`` with the
epoch second and writes ``START <t> <commit>`` first and ``EXIT <rc> <t>`` last (see
``docs/results/camvid-cpu/README.md``). Then:

    python scripts/collect_run.py --run /path/to/project --log run.log --out docs/results/camvid-cpu

Copies reports, figures, CSV and JSON metrics (never checkpoints, ONNX files or data) and
writes ``summary.json``: the report's headline numbers plus ``wall_clock_s``,
``wall_clock_s_per_stage``, ``commit``, ``command`` and ``findings`` (also as a table,
``findings.md``).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from segnas.io import read_json, write_json, write_text

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


def findings(summary: dict, max_params: int, budget_s: int) -> dict:
    """The issue's CPU-scale findings, each with its measured value and whether it is met."""
    search, compare, train = summary["search"], summary["compare"], summary["train"]
    rho = compare["spearman_rho"]
    means = compare["mean_reward"]
    arch0, top0 = train["arch0"]["test_miou"], train["top0"]["test_miou"]

    def item(met: bool, **values: object) -> dict:
        return {"met": bool(met), **values}

    return {
        "rho_at_least_0.6_in_both_groups": item(
            min(rho.values()) >= 0.6, controller=rho["controller"], random=rho["random"]
        ),
        "search_last_quarter_above_first": item(
            search["mean_reward_last_quarter"] > search["mean_reward_first_quarter"],
            first=search["mean_reward_first_quarter"],
            last=search["mean_reward_last_quarter"],
        ),
        "controller_mean_above_random": item(
            means["controller"] > means["random"],
            controller=means["controller"],
            random=means["random"],
            mann_whitney_p=compare["mann_whitney_p"],
        ),
        "top0_within_1_point_of_arch0_at_most_max_params": item(
            top0 >= arch0 - 0.01 and train["top0"]["params"] <= max_params,
            arch0=arch0,
            top0=top0,
            top0_params=train["top0"]["params"],
            max_params=max_params,
        ),
        "pipeline_within_budget": item(
            summary["wall_clock_s"] <= budget_s, wall_clock_s=summary["wall_clock_s"]
        ),
    }


PAPER = {
    "rho_at_least_0.6_in_both_groups": "rho 0.734 controller, 0.904 random (Fig. 9)",
    "search_last_quarter_above_first": "rewards rise through the search (Fig. 5)",
    "controller_mean_above_random": "the controller beats random sampling (Fig. 8)",
    "top0_within_1_point_of_arch0_at_most_max_params": "arch0 is the search's best (Table 1)",
    "pipeline_within_budget": "(this project: the whole CamVid pipeline in <= 2 h on 2 cores)",
}


def _values(finding: dict) -> str:
    return ", ".join(
        f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
        for key, value in finding.items()
        if key != "met"
    )


def findings_markdown(summary: dict) -> str:
    """The findings as a table: each rule, the paper's finding, the measured values, met."""
    lines = ["| finding | paper | measured | met |", "|---|---|---|---|"]
    for name, finding in summary["findings"].items():
        met = "**met**" if finding["met"] else "**not met**"
        lines.append(f"| {name} | {PAPER[name]} | {_values(finding)} | {met} |")
    return "\n".join(lines) + "\n"


def collect(run: Path, log: Path, out: Path, max_params: int, budget_s: int) -> dict:
    """Copy the small outputs of ``run`` into ``out`` and write ``out/summary.json``."""
    commit, walls, total = stage_walls(log.read_text().splitlines())
    summary = read_json(run / "report" / "summary.json")
    summary.update(wall_clock_s=total, wall_clock_s_per_stage=walls, commit=commit, command=COMMAND)
    summary["findings"] = findings(summary, max_params, budget_s)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="the finished project")
    parser.add_argument("--log", type=Path, required=True, help="the stamped run log")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-params", type=int, default=300_000)
    parser.add_argument("--budget-s", type=int, default=7200)
    args = parser.parse_args(argv)
    try:
        summary = collect(args.run, args.log, args.out, args.max_params, args.budget_s)
    except (OSError, ValueError) as error:
        print(f"collect_run: {error}", file=sys.stderr)
        return 1
    for name, finding in summary["findings"].items():
        print(f"{'met' if finding['met'] else 'NOT met':8} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
