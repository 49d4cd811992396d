"""Stage ``report``: every artifact -> ``report/report.html`` (self-contained), ``report.md``.

Usage: python stages/report.py [--params params.yaml]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from segnas.config import load_params
from segnas.errors import ConfigError, SegnasError
from segnas.pipeline.paths import REPORT
from segnas.report import PAPER_RESULTS, ReportInputs, build_report

KEYS = {"title", "paper_results", "qualitative"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default params.yaml)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    try:
        params = load_params(args.params)
        spec = params.get("report") or {}
        unknown = sorted(set(spec) - KEYS)
        if unknown:
            raise ConfigError(
                f"{args.params}: report: unknown keys {unknown}; known {sorted(KEYS)}"
            )
        paper = spec.get("paper_results") or PAPER_RESULTS
        inputs = ReportInputs(paper_results=Path(paper))
        written = build_report(
            REPORT,
            inputs,
            title=str(spec.get("title", "segnas report")),
            qualitative=int(spec.get("qualitative", 2)),
        )
    except SegnasError as exc:
        print(f"report: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"report: {written['html']} and {written['markdown']} with {len(written['figures'])} "
        f"figures ({time.monotonic() - start:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
