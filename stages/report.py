"""Stage ``report``: every artifact -> ``report/report.html`` (self-contained), ``report.md``,
``summary.json``.

Usage: python stages/report.py [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from segnas.config import load_params, section
from segnas.errors import SegnasError
from segnas.pipeline.paths import REPORT, require_project_root
from segnas.report import ReportInputs, build_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        require_project_root(__file__)
        params = load_params(args.params)
        spec = section(params, "report", args.params)
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
