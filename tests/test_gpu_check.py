"""The GPU check (bench/gpu_check.sh): its run path needs no package a bare GPU machine lacks,
its scaling to the paper's data, its user errors, and the whole check on the CPU at tiny sizes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from config_values import eval_setup

from segnas.data.synthetic import generate_synthetic
from segnas.trial.recipe import TrialSetup

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu_check.sh"
sys.path.insert(0, str(REPO / "bench"))
from gpu_check import GpuSampler, scale_to_paper  # noqa: E402

# What the GPU machine's python3 lacks, and what it has (issue 30).
ABSENT = ("jsonschema", "dvc", "dvclive", "snakemake", "cityscapesscripts")
PRESENT = (
    "torch",
    "torchvision",
    "numpy",
    "pandas",
    "scipy",
    "PIL",
    "yaml",
    "onnx",
    "onnxruntime",
    "matplotlib",
)


def blocked_packages(root: Path) -> Path:
    """A folder for PYTHONPATH whose packages of the absent names fail to import."""
    for name in ABSENT:
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text(
            f"raise ImportError('{name} is not on the GPU machine')\n"
        )
    return root


def test_the_run_path_imports_nothing_beyond_the_gpu_machines_packages():
    code = f"""
import sys
for name in {ABSENT!r}:
    sys.modules[name] = None
for name in {PRESENT!r}:
    __import__(name)
before = {{m.split(".")[0] for m in sys.modules}}
sys.path.insert(0, "bench")
import gpu_check
from segnas.cli import build_parser
build_parser()  # imports every command module, as `python3 -m segnas.cli bench` does
new = {{m.split(".")[0] for m in sys.modules}} - before - set(sys.stdlib_module_names)
print(sorted(new - {{"segnas", "gpu_check"}}))
"""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def setup(**values: object) -> TrialSetup:
    """The paper's search recipe at CityScapes size (the shared test values otherwise)."""
    return eval_setup(**{"channels_last": True, "input_size": (1024, 2048), **values})


def test_scaling_to_the_paper_multiplies_each_phase_by_its_share_of_the_work():
    measured = {
        "meta_train": 100,
        "meta_val": 20,
        "cache_samples": 500,
        "train_pixels": 1000.0,
        "val_pixels": 1000.0,
        "load_s_per_image": 0.01,
    }
    paper = {"meta_train": 2000, "meta_val": 200, "cache_samples": 10_000, "image_pixels": 4000}
    seconds = {"setup": 2.0, "phase1": 10.0, "phase2": 20.0, "validation": 4.0}
    scaled = scale_to_paper(seconds, setup(), measured, paper)
    # phase 1: 5 x 500 samples -> 5 x 10,000: x20; validation: 2 x 20 x 1000 px -> 2 x 200 x 4000
    assert scaled["seconds"]["setup"] == 2.0
    assert scaled["seconds"]["phase1"] == pytest.approx(200.0)
    assert scaled["seconds"]["validation"] == pytest.approx(160.0)
    # phase 2: 20 s / 500 images = 0.04 s, of which 0.01 s loading (x4 pixels): 10,000 x 0.07
    assert scaled["phase2_compute_s_per_image"] == pytest.approx(0.03)
    assert scaled["seconds"]["phase2"] == pytest.approx(700.0)
    assert scaled["total_s"] == pytest.approx(1062.0)
    assert scaled["archs_per_gpu_hour"] == pytest.approx(3600 / 1062)
    assert scaled["archs_per_gpu_hour_loading_as_subset"] == pytest.approx(3600 / 762)
    assert scaled["paper_archs_per_gpu_hour"] == pytest.approx(2000 / (8 * 24 * 2))


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHON": sys.executable, **(env or {})}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], cwd=REPO, env=full_env, capture_output=True, text=True
    )


def test_a_check_without_the_prepared_subset_says_how_to_make_it(tmp_path):
    done = run("--device", "cpu", "--data", str(tmp_path / "missing"))
    assert done.returncode == 2
    assert f"{tmp_path / 'missing'}/subset.json does not exist" in done.stderr
    assert "bench/gpu_check.sh prepare" in done.stderr
    assert "carry" in done.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA GPU is visible here")
def test_a_cuda_check_without_a_gpu_stops_before_any_step(tmp_path):
    raw = generate_synthetic(tmp_path / "raw", {"train": 2, "val": 2}, (32, 48), seed=0)
    data = tmp_path / "data"
    prepared = run(
        "prepare", "--camvid", str(raw), "--data", str(data), "--train", "2", "--val", "2"
    )
    assert prepared.returncode == 0, prepared.stderr
    done = run("--device", "cuda", "--data", str(data), env={"OUT": str(tmp_path / "out")})
    assert done.returncode == 2
    assert "sees no CUDA GPU; run it on a GPU machine, or on the CPU with --device cpu" in (
        done.stderr
    )
    assert not (tmp_path / "out").exists()


def test_prepare_refuses_more_images_than_the_split_holds(tmp_path):
    raw = generate_synthetic(tmp_path / "raw", {"train": 3, "val": 2}, (32, 48), seed=0)
    done = run("prepare", "--camvid", str(raw), "--data", str(tmp_path / "data"), "--train", "5")
    assert done.returncode == 2
    assert f"--train 5: {raw / 'train'} holds 3 images; ask for 2 to 3" in done.stderr
    assert not (tmp_path / "data" / "subset.json").exists()


@pytest.mark.slow
def test_the_check_runs_on_the_cpu_at_tiny_sizes_without_the_absent_packages(tmp_path):
    raw = generate_synthetic(tmp_path / "raw", {"train": 8, "val": 4}, (60, 80), seed=0)
    data, out = tmp_path / "data", tmp_path / "out"
    prepared = run(
        "prepare", "--camvid", str(raw), "--data", str(data), "--train", "8", "--val", "4"
    )
    assert prepared.returncode == 0, prepared.stderr
    assert (data / "prepared" / "index.csv").is_file()
    assert (data / "split" / "meta_val.txt").read_text().count("\n") == 4

    env = {"OUT": str(out), "PYTHONPATH": str(blocked_packages(tmp_path / "blocked"))}
    done = run("--device", "cpu", "--tiny", "--data", str(data), env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    for name in ("latency", "train_step", "search", "final_training", "rewards", "gpu_check"):
        assert (out / f"{name}.json").is_file(), name
    assert "# GPU check: " in (out / "gpu_check.md").read_text()
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["ok"] and all(c["ok"] for c in report["checks"])
    env_info = report["environment"]
    assert env_info["device_name"] and env_info["torch"] and env_info["date"]
    assert [s["name"] for s in report["steps"]] == [
        "latency",
        "train_step",
        "search",
        "final-train",
        "rewards",
    ]
    assert all((out / "logs" / f"{s['name']}.log").is_file() for s in report["steps"])

    latency = report["latency"]["results"]
    assert {(r["arch"], r["path"]) for r in latency} == {
        (a, p) for a in ("arch0", "arch1") for p in ("plain", "eager")
    }
    assert all(math.isfinite(r["ratio"]) and r["ratio"] > 0 for r in latency)

    search = report["search"]
    single = search["single"]
    assert single["status"] == "ok" and 0 < single["reward"] <= 1
    assert all(single["seconds"][p] > 0 for p in ("setup", "phase1", "phase2", "validation"))
    assert search["pair"]["overlap_s"] > 0
    assert [e["status"] for e in search["pair"]["evaluations"]] == ["ok", "ok"]
    # the same evaluation (arch, seed, data) on the CPU gives the same reward in every process
    assert {e["reward"] for e in search["pair"]["evaluations"]} == {single["reward"]}
    scaled = search["paper_scale"]
    assert math.isfinite(scaled["archs_per_gpu_hour"]) and scaled["archs_per_gpu_hour"] > 0
    assert scaled["total_s"] > single["seconds"]["total"]

    final = report["final_training"]
    assert final["loss_fell"] and final["all_finite"]
    assert final["amp"] is False  # AMP is for CUDA only
    assert final["epochs"] == 4

    rewards = report["rewards"]
    assert rewards["same_device"]
    for row in rewards["archs"].values():
        assert row["cpu"]["status"] == row["device"]["status"] == "ok"
        assert row["cpu"]["reward"] == row["device"]["reward"] > 0


def test_gpu_use_is_summarised_over_the_timed_window_only():
    sampler = GpuSampler(torch.device("cpu"))
    assert not sampler.enabled
    sampler.samples = [(1.0, 10.0, 100.0), (2.0, 50.0, 200.0), (5.0, 90.0, 300.0)]
    summary = sampler.summary(1.5, 5.0)
    assert summary == {
        "samples": 2,
        "utilization_percent_mean": 70.0,
        "utilization_percent_median": 70.0,
        "memory_used_mib_max": 300.0,
    }
    assert sampler.summary(6.0, 7.0) is None
