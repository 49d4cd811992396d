"""The report: every figure drawn from small synthetic logs, HTML self-contained."""

from __future__ import annotations

import base64
import json
import math
import random
import re
from pathlib import Path

import pytest
import yaml
from config_values import compare_config
from PIL import Image

from segnas.compare.steps import CompareLayout, assemble, run_compare_trial, write_samples
from segnas.published import resolve_genotype
from segnas.report import ReportInputs, build_report
from segnas.report.evidence import pareto_front, quarter_means
from segnas.report.figures import architecture_drawing, block_strides
from segnas.search.controller import Controller
from segnas.search.log import Record, write_outputs
from segnas.space import DEFAULT_SPACE, Genotype
from segnas.trial.recipe import TrialResult


def _write_search_logs(root: Path) -> None:
    """``archs.csv``, ``timings.csv``, ``controller.csv``, ``top.json``, ``metrics.json`` by
    the search's writer; rewards grow with the round."""
    rng = random.Random(0)
    records = []
    for round_index in range(4):
        for index in range(3):
            genotype = DEFAULT_SPACE.sample(rng)
            result = TrialResult(
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
                latency_ms=5.0 + index,
            )
            records.append(Record(round_index, index, result))
    stats = [
        {"entropy": 9.0 - r, "loss": 0.1, "ratio_mean": 1.0, "grad_norm": 0.5} for r in range(4)
    ]
    write_outputs(root, records, stats, top_k=1)


def _write_comparison(root: Path) -> None:
    """``samples.json``, the evaluations, ``compare.csv`` and ``metrics.json`` by the compare
    steps; the rewards grow with the index, the random group's long ones a little more."""
    layout, config = CompareLayout(root), compare_config(num_archs=4, long_phase2_epochs=2)
    controller = Controller(DEFAULT_SPACE, hidden_size=8, num_layers=1, seed=0)
    write_samples(layout, controller, config, seed=0, params_hash="test")
    for group, setup, index in layout.jobs(config.num_archs):
        reward = 0.1 * index + (0.05 if (group, setup) == ("random", "long") else 0.0)

        def evaluate(genotype: Genotype, seed: int, reward: float = reward) -> TrialResult:
            return TrialResult(genotype.to_text(), genotype.hash, reward=reward, miou=0.1)

        run_compare_trial(layout, "test", 0, group, setup, index, evaluate)
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
        "pareto_params.png",
        "pareto_latency.png",
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
    assert "68.1" in html and "145.0" in html  # CityScapes val mIoU of arch0, latency of arch1
    assert "Mann-Whitney" in html and "rho [95 % CI]" in html
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


def test_summary_holds_the_headline_numbers(artifacts):
    inputs = ReportInputs(artifacts / "search", artifacts / "compare", artifacts / "results")
    summary = json.loads(build_report(artifacts / "report", inputs)["summary"].read_text())
    search = summary["search"]
    assert search["num_archs"] == 12 and search["num_rounds"] == 4
    # first quarter = round 0 (0.10, 0.11, 0.12), last quarter = round 3 (0.25, 0.26, 0.27)
    assert search["mean_reward_first_quarter"] == pytest.approx(0.11)
    assert search["mean_reward_last_quarter"] == pytest.approx(0.26)
    compare = summary["compare"]
    assert compare["num_archs_per_group"] == 4
    # search setup: both groups 0, 0.1, 0.2, 0.3; long: random 0.05 higher each
    assert compare["spearman_rho"] == {"controller": 1.0, "random": 1.0}
    assert compare["mean_reward"]["controller"] == pytest.approx(0.15)
    assert compare["mean_difference"]["value"] == pytest.approx(0.0)
    assert compare["mann_whitney_p"] == pytest.approx(1.0)
    assert compare["long_setup"]["mean_difference"]["value"] == pytest.approx(-0.05)
    assert summary["train"]["arch0"] == {
        "test_miou": 0.5,
        "params": 279059,
        "latency_ms": {"480x360": 50.0},
    }
    metrics = json.loads((artifacts / "compare/metrics.json").read_text())
    assert metrics["controller_minus_random"]["long"]["value"] == pytest.approx(-0.05)
    assert metrics["spearman_ci"]["random"]["value"] == pytest.approx(1.0)


def test_pareto_front_of_hand_checked_points():
    # (cost, reward): (1, 0.1) front; (2, 0.3) front; (2, 0.2) dominated by (2, 0.3);
    # (3, 0.3) dominated by (2, 0.3); (4, 0.5) front; NaN cost never on it
    cost = [1.0, 2.0, 2.0, 3.0, 4.0, math.nan]
    reward = [0.1, 0.3, 0.2, 0.3, 0.5, 0.9]
    assert pareto_front(cost, reward) == [True, True, False, False, True, False]
    assert pareto_front([1.0, 1.0], [0.2, 0.2]) == [True, True]  # equal points: both kept
    with pytest.raises(ValueError, match="differ in length"):
        pareto_front([1.0], [])


def test_quarter_means_in_search_order():
    assert quarter_means([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]) == (1.5, 7.5)
    assert quarter_means([1.0, 3.0]) == (1.0, 3.0)  # fewer than 4: one value each
    assert all(math.isnan(v) for v in quarter_means([]))


def test_controller_csv_holds_each_round(artifacts):
    lines = (artifacts / "search/controller.csv").read_text().splitlines()
    assert lines[0] == "round,archs,mean_reward,entropy,loss,ratio_mean,grad_norm"
    # round 1: rewards 0.15, 0.16, 0.17
    round_1 = lines[2].split(",")
    assert round_1[:2] == ["1", "3"] and float(round_1[2]) == pytest.approx(0.16)
    assert float(round_1[3]) == 8.0


def test_environment_section_shows_the_results_provenance(artifacts, tmp_path):
    import torch

    from segnas.provenance import provenance

    results = artifacts / "results"
    inputs = ReportInputs(artifacts / "search", artifacts / "compare", results)
    written = build_report(tmp_path / "without", inputs)
    assert "Environment" not in written["markdown"].read_text()
    block = provenance(torch.device("cpu"), threads=2, root=tmp_path)  # not a checkout
    (results / "metrics.json").write_text(json.dumps({"arch0": {"miou": 0.5}, "provenance": block}))
    text = build_report(tmp_path / "with", inputs)["markdown"].read_text()
    assert "## Environment" in text and "not a git checkout" in text
    assert block["packages"]["torch"] in text and block["device"] in text


def _report_project(artifacts: Path) -> Path:
    """The artifacts as a project: the repository's params.yaml and code, run from its root."""
    from search_project import REPO

    (artifacts / "segnas").symlink_to(REPO / "segnas")
    (artifacts / "params.yaml").write_text((REPO / "params.yaml").read_text(encoding="utf-8"))
    return artifacts


def test_report_stage_refuses_to_leave_out_an_evaluated_model(artifacts, capsys):
    from search_project import run_stage

    root = _report_project(artifacts)
    summary = {"arch0": {"miou": 0.5}, "arch1": {"miou": 0.4}}
    (root / "results/metrics.json").write_text(json.dumps(summary))
    assert run_stage(root, "report", "--params", "params.yaml") == 2
    err = capsys.readouterr().err
    assert "the folder results/arch1/ is missing" in err and "run the evaluate stage" in err
    (root / "results/arch1").mkdir()
    assert run_stage(root, "report", "--params", "params.yaml") == 2
    err = capsys.readouterr().err
    assert "results/arch1/metrics.json is missing" in err and "'arch1'" in err
    assert not (root / "report").exists()
    (root / "results/metrics.json").write_text(json.dumps({"arch0": {"miou": 0.5}}))
    assert run_stage(root, "report", "--params", "params.yaml") == 0
    assert (root / "report/report.html").is_file()


def test_report_stage_refuses_a_missing_qualitative_strip(artifacts, capsys):
    from search_project import run_stage

    root = _report_project(artifacts)
    strip = root / "results/arch0/qualitative/img0.png"
    strip.unlink()
    assert run_stage(root, "report", "--params", "params.yaml") == 2
    err = capsys.readouterr().err
    assert f"qualitative strip {strip}, which is missing" in err and "evaluate" in err
    assert not (root / "report").exists()


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny project whose search (1 round) and comparison (N = 2) are done."""
    from search_project import make_project, run_stage, tiny_params

    params = tiny_params(rounds=1)
    params["compare"].update(num_archs=2, workers=1, long_phase2_epochs=1)
    root = make_project(tmp_path_factory.mktemp("report") / "p", params)
    assert run_stage(root, "search") == 0
    assert run_stage(root, "compare") == 0
    return root


@pytest.mark.parametrize(
    ("section", "key", "value", "shown"),
    [
        (
            "search",
            "seed",
            7,
            "search holds a search of other params than params.yaml (search."
            "seed 0 -> 7); report would read its results as today's",
        ),
        ("compare", "long_phase2_epochs", 2, "compare holds a comparison of other compare params"),
    ],
)
def test_report_refuses_a_search_or_comparison_of_other_params(
    searched, capsys, section, key, value, shown
):
    """Issue 29, item 4: the report checks what it reads against today's params."""
    from search_project import run_stage, write_params

    original = (searched / "params.yaml").read_text(encoding="utf-8")
    params = yaml.safe_load(original)
    params[section][key] = value
    write_params(searched, params)
    try:
        capsys.readouterr()
        assert run_stage(searched, "report") == 2
        err = capsys.readouterr().err
        assert shown in err, err
        assert not (searched / "report").exists()
    finally:
        (searched / "params.yaml").write_text(original, encoding="utf-8")
