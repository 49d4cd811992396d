"""The report: every figure drawn from small synthetic logs, HTML self-contained."""

from __future__ import annotations

import base64
import csv
import json
import random
import re
from pathlib import Path

import pytest
from PIL import Image

from segnas.published import resolve_genotype
from segnas.report import ReportInputs, build_report
from segnas.report.figures import architecture_drawing, block_strides
from segnas.space import DEFAULT_SPACE


def _write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture()
def artifacts(tmp_path: Path) -> Path:
    rng = random.Random(0)
    archs = []
    for round_index in range(4):
        for index in range(3):
            genotype = DEFAULT_SPACE.sample(rng)
            archs.append(
                {
                    "round": round_index,
                    "index": index,
                    "genotype": genotype.to_text(),
                    "hash": genotype.hash,
                    "status": "ok",
                    "reason": "",
                    "reward": 0.1 + 0.05 * round_index + 0.01 * index,
                    "miou": 0.2,
                    "mean_acc": 0.3,
                    "fwiou": 0.4,
                    "reward_phase1": 0.1,
                    "params": 1000,
                    "flops": 10,
                    "downsampling_factor": genotype.downsampling_factor,
                }
            )
    _write_csv(tmp_path / "search/archs.csv", archs)
    top = [{**archs[-1], "rank": 0}]
    (tmp_path / "search/top.json").write_text(json.dumps({"top": top}))
    compare = [
        {
            "group": g,
            "index": i,
            "hash": "x",
            "genotype": "g",
            "downsampling_factor": 2,
            "params": 1,
            "reward_search": 0.1 * i,
            "reward_long": 0.1 * i + (0.05 if g == "random" else 0),
            "miou_search": 0.1,
            "miou_long": 0.1,
            "status_search": "ok",
            "status_long": "ok",
        }
        for g in ("controller", "random")
        for i in range(4)
    ]
    _write_csv(tmp_path / "compare/compare.csv", compare)
    stats = {"mean": 0.15, "median": 0.15, "max": 0.3, "min": 0.0}
    (tmp_path / "compare/metrics.json").write_text(
        json.dumps(
            {
                "num_archs": 4,
                "controller": {"spearman_rho": 1.0, "reward_search": stats, "reward_long": stats},
                "random": {"spearman_rho": 0.8, "reward_search": stats, "reward_long": stats},
            }
        )
    )
    model_dir = tmp_path / "results/arch0"
    (model_dir / "qualitative").mkdir(parents=True)
    strip = model_dir / "qualitative/img0.png"
    Image.new("RGB", (3 * 64 + 8, 48), (90, 120, 30)).save(strip)
    (model_dir / "metrics.json").write_text(
        json.dumps(
            {
                "genotype": resolve_genotype("arch0").to_text(),
                "dataset": "camvid",
                "split": "test",
                "num_images": 233,
                "miou": 0.5,
                "params": 279059,
                "flops": {"480x360": 2e9},
                "latency_ms": {"480x360": 50.0},
                "weights_bytes": 1_200_000,
                "device": "cpu (2 threads)",
                "onnx": {"max_abs_diff": 1e-6},
                "per_class_iou": {"sky": 0.9, "road": None},
                "history": [
                    {"epoch": 1, "loss": 2.0, "lr": 0.05, "val_miou": 0.1},
                    {"epoch": 2, "loss": 1.5, "lr": 0.02, "val_miou": 0.2},
                ],
                "qualitative": [str(strip)],
            }
        )
    )
    return tmp_path


def test_report_embeds_every_figure_and_the_paper_numbers(artifacts):
    inputs = ReportInputs(artifacts / "search", artifacts / "compare", artifacts / "results")
    written = build_report(artifacts / "report", inputs, title="test report")
    names = {p.name for p in written["figures"]}
    assert {
        "fig5_reward_through_search.png",
        "fig6_downsampling.png",
        "fig7_reward_by_downsampling.png",
        "fig8_controller_vs_random.png",
        "fig9_ranks.png",
        "fig12_arch0.png",
        "qualitative_arch0.png",
        "training_curves.png",
    } <= names
    html = written["html"].read_text()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(images) == len(written["figures"])
    assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for data in images)
    assert "src='http" not in html and 'src="' not in html
    assert "63.9" in html and "0.734" in html  # the paper's CamVid arch0 mIoU and controller rho
    assert "50.0" in html and "cpu (2 threads)" in html
    markdown = written["markdown"].read_text()
    for match in re.findall(r"\]\((figures/[^)]+)\)", markdown):
        assert (artifacts / "report" / match).is_file()


def test_report_explains_missing_inputs(tmp_path):
    inputs = ReportInputs(tmp_path / "s", tmp_path / "c", tmp_path / "r")
    written = build_report(tmp_path / "report", inputs)
    html = written["html"].read_text()
    assert "run the search stage" in html and "run the compare stage" in html
    assert "run train + evaluate" in html


def test_architecture_drawing_strides(tmp_path):
    genotype = resolve_genotype("arch0")
    strides = block_strides(genotype)
    assert strides[:2] == [4, 8] and len(strides) == 9
    assert all(s in (4, 8, 16, 32, 64, 128) for s in strides)
    path = architecture_drawing(genotype, "arch0", tmp_path / "a.png")
    assert Image.open(path).size[0] > 600
