"""Assemble the report: figures from the logs, tables beside the paper's, HTML + Markdown.

Every input is optional: a missing artifact gives a section saying which stage makes it,
so a partial pipeline still yields a report. The HTML embeds every image (base64), so the
single file opens anywhere.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import ConfigError
from ..io import read_json, read_yaml, write_text
from ..published import resolve_genotype
from . import figures

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


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1e-3 and value else f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def search_section(inputs: ReportInputs, figure_dir: Path) -> Section:
    section = Section("Search (Figs. 5-7)")
    archs_path = inputs.search_dir / "archs.csv"
    if not archs_path.is_file():
        section.notes.append(f"{archs_path} is missing: run the search stage.")
        return section
    archs = pd.read_csv(archs_path)
    if archs.empty:
        section.notes.append(f"{archs_path} holds no architectures.")
        return section
    ok = archs[archs["status"].isin(["ok", "stopped_early"])]
    section.notes.append(
        f"{len(archs)} architectures sampled in {archs['round'].nunique()} rounds; "
        f"{len(archs) - len(ok)} failed. Best reward {archs['reward'].max():.4f}, "
        f"mean {archs['reward'].mean():.4f}."
    )
    section.images += [
        (
            "Fig. 5: reward through the search",
            figures.reward_through_search(archs, figure_dir / "fig5_reward_through_search.png"),
        ),
        (
            "Fig. 6: downsampling factors through the search",
            figures.downsampling_through_search(archs, figure_dir / "fig6_downsampling.png"),
        ),
        (
            "Fig. 7: reward by downsampling factor",
            figures.reward_by_downsampling(archs, figure_dir / "fig7_reward_by_downsampling.png"),
        ),
    ]
    top_path = inputs.search_dir / "top.json"
    if top_path.is_file():
        top = read_json(top_path).get("top", [])
        rows = [
            [
                t["rank"],
                t["hash"],
                _fmt(t["reward"]),
                _pct(t["miou"]),
                _fmt(int(t["params"])),
                t["downsampling_factor"],
                t["genotype"],
            ]
            for t in top
        ]
        section.tables.append(
            (
                "Best architectures of the search (search/top.json)",
                ["rank", "hash", "reward", "meta-val mIoU %", "params", "factor", "genotype"],
                rows,
            )
        )
    return section


def compare_section(inputs: ReportInputs, paper: dict, figure_dir: Path) -> Section:
    section = Section("Controller vs random search (Figs. 8-9)")
    csv_path, metrics_path = inputs.compare_dir / "compare.csv", inputs.compare_dir / "metrics.json"
    if not csv_path.is_file() or not metrics_path.is_file():
        section.notes.append(f"{csv_path} is missing: run the compare stage.")
        return section
    compare = pd.read_csv(csv_path)
    metrics = read_json(metrics_path)
    rhos = {g: metrics[g]["spearman_rho"] for g in ("controller", "random")}
    published = paper.get("compare", {})
    rows = []
    for group in ("controller", "random"):
        m = metrics[group]
        rows.append(
            [
                group,
                _fmt(rhos[group], 3),
                _fmt(published.get(f"{group}_spearman"), 3),
                _fmt(m["reward_search"]["mean"]),
                _fmt(m["reward_long"]["mean"]),
                _fmt(m["reward_search"]["max"]),
                _fmt(m["reward_long"]["max"]),
            ]
        )
    section.tables.append(
        (
            f"Spearman's rho between the two setups (N = {metrics['num_archs']} per group; "
            f"paper: N = {published.get('num_archs', '-')})",
            [
                "group",
                "rho (ours)",
                "rho (paper)",
                "mean reward, search",
                "mean reward, longer",
                "best, search",
                "best, longer",
            ],
            rows,
        )
    )
    section.images += [
        (
            "Fig. 8: controller vs random in both setups",
            figures.controller_vs_random(compare, figure_dir / "fig8_controller_vs_random.png"),
        ),
        (
            "Fig. 9: rank vs rank",
            figures.rank_vs_rank(compare, rhos, figure_dir / "fig9_ranks.png"),
        ),
    ]
    return section


def _model_metrics(results_dir: Path) -> dict[str, dict]:
    return {
        path.parent.name: read_json(path) for path in sorted(results_dir.glob("*/metrics.json"))
    }


def results_sections(
    inputs: ReportInputs, paper: dict, figure_dir: Path, qualitative: int
) -> list[Section]:
    models = _model_metrics(inputs.results_dir)
    tables = Section("Trained architectures (Tables 1-3)")
    if not models:
        tables.notes.append(f"no {inputs.results_dir}/<model>/metrics.json: run train + evaluate.")
        return [tables]
    published = paper.get("architectures", {})
    sizes = list(next(iter(models.values()))["latency_ms"])
    head = [
        "model",
        "dataset / split",
        "mIoU % (ours)",
        "mIoU % (paper)",
        "params (ours)",
        "params (paper)",
    ]
    head += [f"GFLOPs {s}" for s in sizes] + [f"latency ms {s}" for s in sizes]
    head += ["weights KiB", "ONNX max |diff|"]
    rows, devices = [], set()
    for name, m in models.items():
        ref = _paper_entry(published, m)
        key = f"{m['dataset']}_{m['split']}_miou"
        paper_miou = ref.get(key) if ref else None
        row = [
            name,
            f"{m['dataset']} / {m['split']} ({m['num_images']})",
            _pct(m["miou"]),
            _fmt(paper_miou, 3),
            _fmt(m["params"]),
            _fmt(ref.get("params") if ref else None),
        ]
        row += [f"{m['flops'][s] / 1e9:.2f}" for s in sizes]
        row += [f"{m['latency_ms'][s]:.1f}" for s in sizes]
        row += [f"{m['weights_bytes'] / 1024:.0f}", _fmt(m.get("onnx", {}).get("max_abs_diff"), 2)]
        rows.append(row)
        devices.add(m["device"])
    tables.tables.append(("Accuracy, size and speed (batch 1)", head, rows))
    tables.notes.append(
        "Latency measured on "
        + "; ".join(sorted(devices))
        + ". The paper's numbers are from "
        + paper.get("source", "the paper")
        + " (segnas/report/paper_results.yaml); '-' = not recorded."
    )
    first = next(iter(models.values()))
    classes = first.get("classes") or list(first["per_class_iou"])
    per_class = [[c] + [_pct(m["per_class_iou"].get(c)) for m in models.values()] for c in classes]
    tables.tables.append(("Per-class IoU % on the evaluation split", ["class", *models], per_class))
    histories = {n: m["history"] for n, m in models.items() if m.get("history")}
    if histories:
        tables.images.append(
            (
                "Training curves (DVCLive metrics)",
                figures.training_curves(histories, figure_dir / "training_curves.png"),
            )
        )
    drawings = Section("Discovered architectures (Fig. 12)")
    for name, m in models.items():
        genotype = resolve_genotype(m["genotype"])
        drawings.notes.append(f"{name}: {m['genotype']}")
        drawings.images.append(
            (
                f"{name} ({genotype.hash})",
                figures.architecture_drawing(genotype, name, figure_dir / f"fig12_{name}.png"),
            )
        )
    quality = Section("Qualitative results (Figs. 10-11)")
    for name, m in models.items():
        strips = [Path(p) for p in m.get("qualitative", [])][:qualitative]
        strips = [p for p in strips if p.is_file()]
        if strips:
            quality.images.append(
                (
                    f"{name} on {m['dataset']} {m['split']}",
                    figures.qualitative_grid(
                        strips,
                        f"{name}: image | ground truth | prediction",
                        figure_dir / f"qualitative_{name}.png",
                    ),
                )
            )
    if not quality.images:
        quality.notes.append("no qualitative strips: set evaluate.qualitative > 0.")
    return [tables, drawings, quality]


def _paper_entry(published: dict, metrics: dict) -> dict | None:
    genotype = resolve_genotype(metrics["genotype"])
    for name, entry in published.items():
        try:
            if resolve_genotype(name) == genotype:
                return entry
        except Exception:  # a published name unknown to this version: skip it
            continue
    return None


def _html_table(caption: str, head: list[str], rows: list[list[Any]]) -> str:
    cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return (
        f"<table><caption>{html.escape(caption)}</caption><thead><tr>{cells}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _md_table(caption: str, head: list[str], rows: list[list[Any]]) -> str:
    lines = [f"**{caption}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.85em}caption{font-weight:bold;
text-align:left;margin-bottom:.3em}
th,td{border:1px solid #bbb;padding:3px 7px;text-align:left;overflow-wrap:anywhere}
th{background:#eee}figure{margin:1em 0}img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555}code{font-size:.85em}"""


def render_html(title: str, sections: list[Section]) -> str:
    parts = [
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f"<p>{html.escape(note)}</p>" for note in section.notes]
        parts += [_html_table(*table) for table in section.tables]
        for caption, path in section.images:
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            parts.append(
                f"<figure><img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>"
                f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def render_markdown(title: str, sections: list[Section], root: Path) -> str:
    parts = [f"# {title}"]
    for section in sections:
        parts.append(f"## {section.title}")
        parts += section.notes
        parts += [_md_table(*table) for table in section.tables]
        parts += [
            f"![{caption}]({path.relative_to(root).as_posix()})" for caption, path in section.images
        ]
    return "\n\n".join(parts) + "\n"


def build_report(
    out_dir: str | Path,
    inputs: ReportInputs | None = None,
    title: str = "segnas report",
    qualitative: int = 2,
) -> dict[str, Path]:
    """Write ``report.html`` (self-contained), ``report.md`` and ``figures/*.png``."""
    inputs = inputs or ReportInputs()
    out_dir = Path(out_dir)
    figure_dir = out_dir / "figures"
    if not Path(inputs.paper_results).is_file():
        raise ConfigError(
            f"report.paper_results: {inputs.paper_results} does not exist; point it at a table "
            f"of published figures (default {PAPER_RESULTS})"
        )
    paper = read_yaml(inputs.paper_results) or {}
    sections = [
        *results_sections(inputs, paper, figure_dir, qualitative),
        search_section(inputs, figure_dir),
        compare_section(inputs, paper, figure_dir),
    ]
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    write_text(html_path, render_html(title, sections))
    write_text(md_path, render_markdown(title, sections, out_dir))
    figures_written = sorted(figure_dir.glob("*.png"))
    return {"html": html_path, "markdown": md_path, "figures": figures_written}
