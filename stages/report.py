"""Stage ``report``: every artifact -> ``report/report.html`` (self-contained), ``report.md``,
``summary.json``.

Usage: python stages/report.py [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys
import time

from segnas.compare.config import CompareConfig, compare_hash
from segnas.config import load_config, section
from segnas.errors import ArtifactError
from segnas.io import read_json
from segnas.pipeline.entry import DeclaredParams, run_stage
from segnas.pipeline.paths import COMPARE, REPORT, SEARCH
from segnas.report import ReportInputs, build_report
from segnas.search.identity import check_search_matches, search_identity


def check_inputs(params: DeclaredParams, params_path: str) -> None:
    """Refuse a search or a comparison of other params than today's: the report would show
    them as today's results."""
    if not (SEARCH / "top.json").is_file():
        return
    if not check_search_matches(SEARCH, params, params_path, "report"):
        return  # no search of the stage's making: its comparison has nothing to match
    samples = COMPARE / "samples.json"
    if samples.is_file():
        config = load_config(CompareConfig, section(params, "compare", params_path), "compare")
        expected = compare_hash(search_identity(params, params_path)[2], config)
        found = read_json(samples).get("params_hash")
        if found != expected:
            raise ArtifactError(
                f"{COMPARE} holds a comparison of other compare params than {params_path} "
                f"({samples}: params hash {found} != {expected}); report would show it as "
                "today's: rerun the compare stage first"
            )


def report(params: DeclaredParams, args: argparse.Namespace) -> str:
    """Build the report from every artifact there is; the closing line."""
    start = time.monotonic()
    spec = section(params, "report", args.params)
    check_inputs(params, args.params)
    inputs = ReportInputs()
    written = build_report(
        REPORT, inputs, title=str(spec["title"]), qualitative=int(spec["qualitative"])
    )
    return (
        f"report: {written['html']} and {written['markdown']} with {len(written['figures'])} "
        f"figures, {written['summary']} ({time.monotonic() - start:.1f} s)"
    )


def main(argv: list[str] | None = None) -> int:
    return run_stage("report", report, argv)


if __name__ == "__main__":
    sys.exit(main())
