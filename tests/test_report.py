"""The report: every figure drawn from small synthetic logs, HTML self-contained."""

from __future__ import annotations

import base64
import json
import random
import re
from pathlib import Path

import pytest
from config_values import compare_config
from PIL import Image

from segnas.compare import CompareLayout, assemble, evaluate_job, write_samples
from segnas.published import resolve_genotype
from segnas.report import ReportInputs, build_report
from segnas.report.figures import architecture_drawing, block_strides
from segnas.search.controller import Controller
from segnas.search.log import Record, write_outputs
from segnas.search.recipe import EvalResult
from segnas.space import DEFAULT_SPACE, Genotype


def _write_search_logs(root: Path) -> None:
    """``archs.csv``, ``timings.csv``, ``top.json``, ``metrics.json`` by the search's writer."""
    rng = random.Random(0)
    records = []
    for round_index in range(4):
        for index in range(3):
            genotype = DEFAULT_SPACE.sample(rng)
            result = EvalResult(
                genotype.to_text(),
                genotype.hash,
                reward=0.1 + 0.05 * round_index + 0.01 * index,
                miou=0.2,
                mean_acc=0.3,
                fwiou=0.4,
                reward_phase1=0.1,
                params=1000,
                flops=10,
                downsampling_factor=genotype.downsampling_factor,
            )
            records.append(Record(round_index, index, result))
    write_outputs(root, records, top_k=1)


def _write_comparison(root: Path) -> None:
    """``samples.json``, the evaluations, ``compare.csv`` and ``metrics.json`` by the compare
    steps; the rewards grow with the index, the random group's long ones a little more."""
    layout, config = CompareLayout(root), compare_config(num_archs=4, long_phase2_epochs=2)
    controller = Controller(DEFAULT_SPACE, hidden_size=8, num_layers=1, seed=0)
    write_samples(layout, controller, config, seed=0, params_hash="test")
    for group, setup, index in layout.jobs(config.num_archs):
        reward = 0.1 * index + (0.05 if (group, setup) == ("random", "long") else 0.0)

        def evaluate(genotype: Genotype, seed: int, reward: float = reward) -> EvalResult:
            return EvalResult(genotype.to_text(), genotype.hash, reward=reward, miou=0.1)

        evaluate_job(layout, "test", 0, group, setup, index, evaluate)
    assemble(layout, config, "test")


@pytest.fixture()
def artifacts(tmp_path: Path) -> Path:
    _write_search_logs(tmp_path / "search")
    _write_comparison(tmp_path / "compare")
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
