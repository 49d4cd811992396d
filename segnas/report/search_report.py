"""The report's search and comparison sections (Figs. 5-9, the Pareto front), each with its
part of ``summary.json``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..compare.layout import CompareLayout
from ..errors import ArtifactError
from ..io import read_json
from ..search.layout import SearchLayout
from ..stats import compare_evidence
from . import figures, search_figures
from .base import ReportInputs, Section, fmt, interval, pct
from .evidence import compare_summary, pareto_front, search_summary


def _read_csv(path: Path) -> pd.DataFrame:
    """A CSV as a frame, with an error naming the file when it cannot be parsed."""
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not a readable CSV file ({exc})") from exc


def _with_latency(archs: pd.DataFrame, timings_path: Path) -> pd.DataFrame:
    """``archs`` with the search's measured ``latency_ms`` (NaN without ``timings.csv``)."""
    if not timings_path.is_file():
        return archs.assign(latency_ms=float("nan"))
    timings = _read_csv(timings_path)[["round", "index", "latency_ms"]]
    return archs.merge(timings, on=["round", "index"], how="left")


def _pareto_table(archs: pd.DataFrame) -> tuple[str, list[str], list[list]]:
    """The architectures on the reward-vs-parameters front, fewest parameters first."""
    front = archs[pareto_front(archs["params"].astype(float), archs["reward"].astype(float))]
    rows = [
        [r["hash"], fmt(float(r["reward"])), fmt(int(r["params"])), fmt(r["latency_ms"], 3)]
        for _, r in front.sort_values("params").iterrows()
    ]
    return (
        f"Non-dominated architectures, reward vs parameters ({len(rows)} of {len(archs)})",
        ["hash", "reward", "params", "latency ms (search)"],
        rows,
    )


def _add_search_figures(
    section: Section, archs: pd.DataFrame, controller: pd.DataFrame | None, figure_dir: Path
) -> None:
    """Figs. 5-7 and the Pareto fronts (latency only where the search measured it)."""
    section.images += [
        (
            "Fig. 5: reward through the search (rolling median) and the controller's entropy",
            search_figures.reward_through_search(
                archs, controller, figure_dir / "fig5_reward_through_search.png"
            ),
        ),
        (
            "Fig. 6: downsampling factors through the search",
            search_figures.downsampling_through_search(archs, figure_dir / "fig6_downsampling.png"),
        ),
        (
            "Fig. 7: reward by downsampling factor",
            search_figures.reward_by_downsampling(
                archs, figure_dir / "fig7_reward_by_downsampling.png"
            ),
        ),
        (
            "Pareto front: reward against parameters",
            search_figures.pareto_view(
                archs, "params", "parameters", figure_dir / "pareto_params.png"
            ),
        ),
    ]
    if archs["latency_ms"].notna().any():
        section.images.append(
            (
                "Pareto front: reward against the latency the search measured (wall clock)",
                search_figures.pareto_view(
                    archs, "latency_ms", "latency (ms)", figure_dir / "pareto_latency.png"
                ),
            )
        )
    else:
        section.notes.append("The search measured no latency: no reward-vs-latency front.")


def _top_table(top_path: Path) -> tuple[str, list[str], list[list]]:
    """The best architectures of ``search/top.json`` as a table."""
    rows = [
        [
            t["rank"],
            t["hash"],
            fmt(t["reward"]),
            pct(t["miou"]),
            fmt(int(t["params"])),
            t["downsampling_factor"],
            t["genotype"],
        ]
        for t in read_json(top_path).get("top", [])
    ]
    return (
        "Best architectures of the search (search/top.json)",
        ["rank", "hash", "reward", "meta-val mIoU %", "params", "factor", "genotype"],
        rows,
    )


def search_section(inputs: ReportInputs, figure_dir: Path) -> tuple[Section, dict | None]:
    """Figs. 5-7, the Pareto front and the best architectures; ``search.*`` of the summary."""
    section = Section("Search (Figs. 5-7, Pareto front)")
    archs_path = SearchLayout(inputs.search_dir).archs_csv
    if not archs_path.is_file():
        section.notes.append(f"{archs_path} is missing: run the search stage.")
        return section, None
    archs = _read_csv(archs_path)
    if archs.empty:
        section.notes.append(f"{archs_path} holds no architectures.")
        return section, None
    summary = search_summary(archs)
    ok = archs[archs["status"].isin(["ok", "stopped_early"])]
    section.notes.append(
        f"{len(archs)} architectures sampled in {archs['round'].nunique()} rounds; "
        f"{len(archs) - len(ok)} failed. Best reward {archs['reward'].max():.4f}, "
        f"mean {archs['reward'].mean():.4f}; mean of the first quarter "
        f"{fmt(summary['mean_reward_first_quarter'])}, of the last quarter "
        f"{fmt(summary['mean_reward_last_quarter'])}."
    )
    controller_path = SearchLayout(inputs.search_dir).controller_csv
    controller = _read_csv(controller_path) if controller_path.is_file() else None
    if controller is None:
        section.notes.append(f"{controller_path} is missing: no entropy per round.")
    archs = _with_latency(archs, SearchLayout(inputs.search_dir).timings_csv)
    _add_search_figures(section, archs, controller, figure_dir)
    section.tables.append(_pareto_table(archs))
    top_path = SearchLayout(inputs.search_dir).top
    if top_path.is_file():
        section.tables.append(_top_table(top_path))
    return section, summary


def compare_section(
    inputs: ReportInputs, paper: dict, figure_dir: Path
) -> tuple[Section, dict | None]:
    """Figs. 8-9 with rho, the difference of means and their intervals; ``compare.*``."""
    section = Section("Controller vs random search (Figs. 8-9)")
    csv_path = CompareLayout(inputs.compare_dir).csv
    if not csv_path.is_file():
        section.notes.append(f"{csv_path} is missing: run the compare stage.")
        return section, None
    compare = _read_csv(csv_path)
    rewards = {
        group: {setup: rows[f"reward_{setup}"].tolist() for setup in ("search", "long")}
        for group, rows in compare.groupby("group")
    }
    evidence = compare_evidence(rewards)
    summary = compare_summary(compare, evidence)
    published = paper.get("compare", {})
    rows = [
        [
            group,
            interval(evidence["spearman_ci"][group]),
            fmt(published.get(f"{group}_spearman"), 3),
            fmt(summary["mean_reward"][group]),
            fmt(summary["long_setup"]["mean_reward"][group]),
        ]
        for group in ("controller", "random")
    ]
    section.tables.append(
        (
            f"Spearman's rho between the two setups, bootstrap 95 % interval "
            f"(N = {summary['num_archs_per_group']} per group; "
            f"paper: N = {published.get('num_archs', '-')})",
            ["group", "rho [95 % CI] (ours)", "rho (paper)", "mean reward, search", "mean, longer"],
            rows,
        )
    )
    differences = [
        [
            setup,
            interval(evidence["controller_minus_random"][setup], 4),
            fmt(evidence["controller_minus_random"][setup]["mann_whitney_p"], 3),
        ]
        for setup in ("search", "long")
    ]
    section.tables.append(
        (
            "Controller minus random: difference of mean rewards with its bootstrap 95 % "
            "interval, two-sided Mann-Whitney U p-value",
            ["setup", "difference [95 % CI]", "Mann-Whitney p"],
            differences,
        )
    )
    section.images += [
        (
            "Fig. 8: controller vs random in both setups",
            figures.controller_vs_random(
                compare, evidence, figure_dir / "fig8_controller_vs_random.png"
            ),
        ),
        (
            "Fig. 9: rank vs rank, Spearman's rho with its bootstrap 95 % interval",
            figures.rank_vs_rank(compare, evidence["spearman_ci"], figure_dir / "fig9_ranks.png"),
        ),
    ]
    return section, summary
