"""The results report: the paper's figures from our logs, tables beside the published ones."""

from .base import PAPER_RESULTS, ReportInputs
from .build import build_report

__all__ = ["PAPER_RESULTS", "ReportInputs", "build_report"]
