"""A tiny search project for the search tests: synthetic data prepared, split and cached in a
temporary directory that links the repository's code (so stages and Snakemake rules run)."""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

TINY_SEARCH_EVAL = {
    "phase1_epochs": 1,
    "phase2_epochs": 1,
    "batch_size": 8,
    "crop_size": [32, 32],
    "val_size": None,
    "input_size": [48, 64],
    "measure_latency": False,
}


def tiny_params(rounds: int = 2, archs_per_round: int = 2, **search: object) -> dict:
    """The repository's params.yaml with tiny data and a tiny search."""
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params = copy.deepcopy(params)
    params["seed"] = 0
    params["device"] = "cpu"
    params["stem"] = {"weights": "none"}
    params["datasets"] = {
        "synthetic": {
            "source": "synthetic",
            "num_images": {"train": 12, "val": 2, "test": 2},
            "image_size": [48, 64],
            "on_bad_file": "error",
            "longer_side": None,
        }
    }
    params["split"] = {"dataset": "synthetic", "val_fraction": 0.25}
    params["cache_stem"] = {
        "crop_size": [32, 32],
        "num_samples": 16,
        "scale_range": [0.5, 2.0],
        "flip": True,
    }
    params["search"]["rounds"] = rounds
    params["search"]["archs_per_round"] = archs_per_round
    params["search"]["workers"] = 1
    params["search"]["progress_interval"] = 1
    params["search"]["eval"].update(TINY_SEARCH_EVAL)
    params["search"].update(search)
    return params


def write_params(root: Path, params: dict) -> Path:
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def run_stage(root: Path, stage: str, *args: str) -> int:
    """Run ``stages/<stage>.py`` in-process with ``root`` as the working directory."""
    spec = importlib.util.spec_from_file_location(f"stage_{stage}", REPO / "stages" / f"{stage}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with chdir(root):
        return module.main(list(args))


def make_project(root: Path, params: dict) -> Path:
    """Link the code, write params.yaml and run prepare, split and cache_stem."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("segnas", "stages", "workflow"):
        (root / name).symlink_to(REPO / name)
    write_params(root, params)
    for stage in ("prepare", "split", "cache_stem"):
        assert run_stage(root, stage) == 0, stage
    return root


def stage_env() -> dict:
    """Environment for subprocesses: one torch thread, the repository's Python first."""
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["PATH"] = f"{REPO / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def tiny_train(params: dict) -> dict:
    """``params`` training arch0 alone for 2 tiny epochs and evaluating it cheaply."""
    params["train"].update(
        architectures=["arch0"],
        top_k=0,
        epochs=2,
        batch_size=4,
        crop_size=[32, 32],
        agg_width=16,
        checkpoint_every=1,
        val_every=1,
    )
    params["evaluate"].update(latency_sizes=[[48, 64]], qualitative=1, threads=1)
    return params
