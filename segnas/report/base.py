"""What every report section is made of: inputs, sections, number formatting."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PAPER_RESULTS = Path(__file__).with_name("paper_results.yaml")


@dataclass
class ReportInputs:
    """Where the artifacts are (the defaults are the stages' output paths)."""

    search_dir: Path = Path("search")
    compare_dir: Path = Path("compare")
    results_dir: Path = Path("results")
    paper_results: Path = PAPER_RESULTS


@dataclass
class Section:
    """A heading, paragraphs/tables (as rows) and figures."""

    title: str
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[Any]]]] = field(default_factory=list)
    images: list[tuple[str, Path]] = field(default_factory=list)


def fmt(value: Any, digits: int = 4) -> str:
    """A number for a table: ``-`` for none/NaN, thousands separators for integers."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value else f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def pct(value: float | None) -> str:
    """A fraction as a percentage with one decimal (``-`` for none)."""
    return "-" if value is None else f"{100 * value:.1f}"


def interval(estimate: dict, digits: int = 3) -> str:
    """``value [low, high]`` of an estimate dict (``-`` for an undefined part)."""
    return (
        f"{fmt(estimate['value'], digits)} "
        f"[{fmt(estimate['low'], digits)}, {fmt(estimate['high'], digits)}]"
    )
