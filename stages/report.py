"""Stage ``report``: every artifact -> ``report/report.html`` (self-contained), ``report.md``,
``summary.json``.

Usage: python stages/report.py [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from segnas.compareconfig import CompareConfig, compare_hash
from segnas.config import load_config, load_params, section
from segnas.errors import ArtifactError, SegnasError
from segnas.io import read_json
from segnas.pipeline.paths import COMPARE, REPORT, SEARCH
from segnas.report import ReportInputs, build_report
from segnas.search.identity import check_search_matches, search_identity


def check_inputs(params: dict, params_path: str) -> None:
    """Refuse a search or a comparison of other params than today's: the report would show
    them as today's results."""
    if not (SEARCH / "top.json").is_file():
        return
    check_search_matches(SEARCH, params, params_path, "report")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        params = load_params(args.params)
        spec = section(params, "report", args.params)
        check_inputs(params, args.params)
        inputs = ReportInputs(paper_results=Path(spec["paper_results"]))
        written = build_report(
            REPORT, inputs, title=str(spec["title"]), qualitative=int(spec["qualitative"])
        )
    except SegnasError as exc:
        print(f"report: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"report: {written['html']} and {written['markdown']} with {len(written['figures'])} "
        f"figures, {written['summary']} ({time.monotonic() - start:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
