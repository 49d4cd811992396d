"""Assemble the report: figures from the logs, tables beside the paper's, HTML + Markdown.

Every stage's output is optional: a missing one gives a section saying which stage makes it,
so a partial pipeline still yields a report. The HTML embeds every image (base64), so the
single file opens anywhere.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..io import read_json, read_yaml, write_json, write_text
from ..provenance import KEY as PROVENANCE
from ..published import resolve_genotype
from . import figures
from .base import PAPER_RESULTS, ReportInputs, Section, fmt, pct
from .evidence import train_summary
from .search_report import compare_section, search_section


def _model_metrics(results_dir: Path) -> dict[str, dict]:
    return {
        path.parent.name: read_json(path) for path in sorted(results_dir.glob("*/metrics.json"))
    }


def check_results(models: dict[str, dict], results_dir: Path) -> None:
    """Refuse a report that would leave out an evaluated model or one of its files.

    Every model ``results/metrics.json`` lists must have ``results/<model>/metrics.json``, and
    every qualitative strip a model's metrics name must exist; otherwise the report would show
    fewer models or figures than were evaluated without saying so.
    """
    summary_path = results_dir / "metrics.json"
    summary = read_json(summary_path) if summary_path.is_file() else {}
    listed = [k for k, v in summary.items() if k != PROVENANCE and isinstance(v, dict)]
    missing = [name for name in listed if name not in models]
    if missing:
        name = missing[0]
        what = (
            f"{results_dir / name}/metrics.json is missing"
            if (results_dir / name).is_dir()
            else f"the folder {results_dir / name}/ is missing"
        )
        raise ConfigError(
            f"{summary_path} lists model {name!r} but {what} ({len(missing)} model(s) in all: "
            f"{', '.join(missing)}); no report was written: run the evaluate stage again "
            "(dvc repro evaluate, or python stages/evaluate.py --params params.yaml)"
        )
    for name, m in models.items():
        absent = [p for p in m.get("qualitative", []) if not Path(p).is_file()]
        if absent:
            raise ConfigError(
                f"{results_dir / name}/metrics.json names the qualitative strip {absent[0]}, "
                f"which is missing ({len(absent)} in all); no report was written: run the "
                "evaluate stage again (dvc repro evaluate, or python stages/evaluate.py "
                "--params params.yaml)"
            )


def environment_section(results_dir: Path) -> Section | None:
    """Where the evaluated results came from: the provenance block of ``results/metrics.json``
    (code commit, Python and package versions, device, threads); None when it has none."""
    path = results_dir / "metrics.json"
    block = read_json(path).get(PROVENANCE) if path.is_file() else None
    if not isinstance(block, dict):
        return None
    git = block.get("git") or {}
    commit = git.get("commit") or "not a git checkout"
    if git.get("dirty"):
        commit += " (with uncommitted changes)"
    rows = [
        ["code", commit],
        ["python", block.get("python")],
        *[[name, version or "not installed"] for name, version in block["packages"].items()],
        ["device", block.get("device")],
        ["threads", block.get("threads")],
    ]
    section = Section("Environment")
    section.tables.append((f"from the provenance block of {path}", ["", "value"], rows))
    return section


# The paper's numbers per published architecture: (yaml key, column heading).
PAPER_COLUMNS = (
    ("params", "params"),
    ("camvid_test_miou", "CamVid test mIoU %"),
    ("cityscapes_val_miou", "CityScapes val mIoU %"),
    ("cityscapes_test_miou", "CityScapes test mIoU %"),
    ("latency_ms_1080ti_2048x1024", "latency ms, 1080Ti 2048x1024"),
    ("size_on_disk_mb", "size on disk MB"),
)


def paper_table(paper: dict) -> tuple[str, list[str], list[list[Any]]]:
    """The paper's rows (arch0, arch1: Tables 1 and 3) to read beside ours."""
    rows = [
        [name, *(fmt(entry.get(key), 3) for key, _ in PAPER_COLUMNS)]
        for name, entry in paper.get("architectures", {}).items()
    ]
    return (
        f"The paper's architectures ({paper.get('source', 'the paper')}; Tables 1 and 3)",
        ["model", *(heading for _, heading in PAPER_COLUMNS)],
        rows,
    )


def results_sections(
    models: dict[str, dict], inputs: ReportInputs, paper: dict, figure_dir: Path, qualitative: int
) -> list[Section]:
    """Tables 1-3 beside the paper's rows, per-class IoU, training curves, drawings and
    qualitative strips of the evaluated models."""
    tables = Section("Trained architectures (Tables 1-3)")
    if not models:
        tables.notes.append(f"no {inputs.results_dir}/<model>/metrics.json: run train + evaluate.")
        return [tables]
    accuracy, devices = accuracy_table(models, paper.get("architectures", {}))
    tables.tables.append(accuracy)
    tables.tables.append(paper_table(paper))
    tables.notes.append(
        "Latency measured on "
        + "; ".join(sorted(devices))
        + ". The paper's numbers are from "
        + paper.get("source", "the paper")
        + " (segnas/report/paper_results.yaml); '-' = not recorded."
    )
    tables.tables.append(per_class_table(models))
    histories = {n: m["history"] for n, m in models.items() if m.get("history")}
    if histories:
        tables.images.append(
            (
                "Training curves (DVCLive metrics)",
                figures.training_curves(histories, figure_dir / "training_curves.png"),
            )
        )
    return [
        tables,
        drawings_section(models, figure_dir),
        qualitative_section(models, figure_dir, qualitative),
    ]


def accuracy_table(
    models: dict[str, dict], published: dict
) -> tuple[tuple[str, list[str], list[list[Any]]], set[str]]:
    """Our rows of Tables 1-3 (mIoU and params beside the paper's, GFLOPs and latency per
    size, weights, ONNX check) and the devices the latencies were measured on."""
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
            pct(m["miou"]),
            fmt(paper_miou, 3),
            fmt(m["params"]),
            fmt(ref.get("params") if ref else None),
        ]
        row += [f"{m['flops'][s] / 1e9:.2f}" for s in sizes]
        row += [f"{m['latency_ms'][s]:.1f}" for s in sizes]
        row += [f"{m['weights_bytes'] / 1024:.0f}", fmt(m.get("onnx", {}).get("max_abs_diff"), 2)]
        rows.append(row)
        devices.add(m["device"])
    return ("Accuracy, size and speed (batch 1)", head, rows), devices


def per_class_table(models: dict[str, dict]) -> tuple[str, list[str], list[list[Any]]]:
    """Per-class IoU, one column per model, in the first model's class order."""
    first = next(iter(models.values()))
    classes = first.get("classes") or list(first["per_class_iou"])
    per_class = [[c] + [pct(m["per_class_iou"].get(c)) for m in models.values()] for c in classes]
    return ("Per-class IoU % on the evaluation split", ["class", *models], per_class)


def drawings_section(models: dict[str, dict], figure_dir: Path) -> Section:
    """Each evaluated model's genotype, as text and drawn (Fig. 12)."""
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
    return drawings


def qualitative_section(models: dict[str, dict], figure_dir: Path, qualitative: int) -> Section:
    """Up to ``qualitative`` strips per model (image, ground truth, prediction: Figs. 10-11)."""
    quality = Section("Qualitative results (Figs. 10-11)")
    for name, m in models.items():
        strips = [Path(p) for p in m.get("qualitative", [])][:qualitative]
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
    return quality


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
    """Write ``report.html`` (self-contained), ``report.md``, ``figures/*.png`` and
    ``summary.json`` (the headline numbers: ``search``, ``compare``, ``train``, each where its
    artifacts exist)."""
    inputs = inputs or ReportInputs()
    out_dir = Path(out_dir)
    figure_dir = out_dir / "figures"
    if not Path(inputs.paper_results).is_file():
        raise ConfigError(
            f"{inputs.paper_results} does not exist: the paper's published figures ship with "
            f"segnas (default {PAPER_RESULTS}); reinstall it as the README says"
        )
    paper = read_yaml(inputs.paper_results) or {}
    models = _model_metrics(inputs.results_dir)
    check_results(models, Path(inputs.results_dir))
    search, search_numbers = search_section(inputs, figure_dir)
    compare, compare_numbers = compare_section(inputs, paper, figure_dir)
    sections = [*results_sections(models, inputs, paper, figure_dir, qualitative), search, compare]
    environment = environment_section(inputs.results_dir)
    if environment is not None:
        sections.append(environment)
    summary = {
        key: value
        for key, value in (
            ("search", search_numbers),
            ("compare", compare_numbers),
            ("train", train_summary(models) or None),
        )
        if value is not None
    }
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    summary_path = out_dir / "summary.json"
    write_text(html_path, render_html(title, sections))
    write_text(md_path, render_markdown(title, sections, out_dir))
    write_json(summary_path, summary)
    figures_written = sorted(figure_dir.glob("*.png"))
    return {
        "html": html_path,
        "markdown": md_path,
        "summary": summary_path,
        "figures": figures_written,
    }
