"""Final training of a discovered architecture (paper Sect. 5), resumable and deterministic.

SGD (lr 5e-2, momentum 0.9, weight decay 1e-5) or Adam, with the poly schedule
``lr * (1 - progress) ** 0.9`` where progress is ``iteration / total iterations`` for an epoch
budget, or ``training seconds / budget`` for a time budget. Checkpoints (``last.pt``, and
``best.pt`` by validation mIoU when a validation split is given) are written atomically every
few epochs; a killed run resumes from ``last.pt`` with the same schedule, and on CPU finishes
with the same weights and metrics as an uninterrupted run (epoch budget). Per-epoch loss, lr and
val mIoU go to DVCLive.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from .checkpoint import (
    BEST,
    CHECKPOINT_FORMAT,
    LAST,
    TrainState,
)
from .data.prepared import PreparedDataset
from .errors import ConfigError
from .io import write_json
from .pipeline.paths import MODELS, SEARCH
from .progress import Progress
from .provenance import KEY as PROVENANCE
from .provenance import provenance
from .search.identity import check_search_matches
from .selection import SizeCap, select_architectures
from .space import Genotype
from .trainconfig import TrainConfig, train_config_of
from .training_data import build_datasets, median_frequency_weights
from .training_loop import (
    check_class_weights,
    end_epoch,
    progress_text,
    save_after_epoch,
    start_run,
    train_epoch,
)


def checkpoint_meta(
    genotype: Genotype,
    config: TrainConfig,
    num_classes: int,
    classes: Sequence[str],
    palette: Sequence[Sequence[int]],
    dataset: str,
) -> dict[str, Any]:
    """The identity of a run, stored in every checkpoint and checked on resume and load."""
    return {
        "format": CHECKPOINT_FORMAT,
        "genotype": genotype.to_text(),
        "genotype_hash": genotype.hash,
        "params_hash": config.hash,
        "config": config.to_dict(),
        "num_classes": int(num_classes),
        "classes": list(classes),
        "palette": [list(int(v) for v in c) for c in palette],
        "dataset": dataset,
    }


class _Live:
    """DVCLive wrapper whose files are rebuilt from the history on resume."""

    def __init__(self, directory: Path | None, history: list[dict[str, Any]]) -> None:
        self.live = None
        if directory is None:
            return
        from dvclive import Live

        self.live = Live(str(directory), save_dvc_exp=False, dvcyaml=False, report=None)
        for entry in history:
            self.log(entry)

    def log(self, entry: dict[str, Any]) -> None:
        if self.live is None:
            return
        self.live.step = entry["epoch"]
        for key in ("loss", "lr", "val_miou"):
            if entry.get(key) is not None:
                self.live.log_metric(f"train/{key}" if key != "val_miou" else key, entry[key])
        self.live.next_step()

    def close(self) -> None:
        if self.live is not None:
            self.live.end()


@dataclass
class TrainResult:
    """Where the checkpoints are and how the run went."""

    last: Path
    best: Path | None
    state: TrainState
    resumed_from_epoch: int | None

    def summary(self) -> dict[str, Any]:
        history = self.state.history
        final_val = next((h["val_miou"] for h in reversed(history) if "val_miou" in h), None)
        return {
            "epochs": self.state.epoch,
            "iterations": self.state.iteration,
            "train_seconds": round(self.state.train_seconds, 2),
            "final_loss": history[-1]["loss"] if history else None,
            "final_val_miou": final_val,
            "best_val_miou": self.state.best_miou if self.state.best_epoch >= 0 else None,
            "best_epoch": self.state.best_epoch if self.state.best_epoch >= 0 else None,
        }


def train_model(
    genotype: Genotype,
    train_set: Dataset,
    val_set: Dataset | None,
    num_classes: int,
    config: TrainConfig,
    out_dir: str | Path,
    device: torch.device | str = "cpu",
    classes: Sequence[str] = (),
    palette: Sequence[Sequence[int]] = (),
    dataset_name: str = "",
    live_dir: str | Path | None = None,
    log_name: str = "train",
    class_weights: Sequence[float] | None = None,
) -> TrainResult:
    """Train ``genotype`` on ``train_set``, resuming from ``out_dir/last.pt`` when present.

    ``val_set`` (images resized to ``config.input_size``, labels at full size) selects
    ``best.pt``; without it only ``last.pt`` is kept. A finished run is not retrained.
    ``class_weights`` (one per class) weight the cross-entropy; they are required when
    ``config.class_weighting`` is not ``none`` (see ``training_data.median_frequency_weights``).
    """
    device, out_dir = torch.device(device), Path(out_dir)
    check_class_weights(config, class_weights, num_classes, log_name)
    meta = checkpoint_meta(genotype, config, num_classes, classes, palette, dataset_name)
    if class_weights is not None:
        meta["class_weights"] = [float(w) for w in class_weights]
    run, resumed_from = start_run(
        genotype, num_classes, config, out_dir, device, meta, class_weights, log_name
    )
    state = run.state
    if len(train_set) == 0:
        raise ConfigError(f"{log_name}: the training split is empty")
    run.total_iters = config.epochs * max(
        1, len(train_set) // min(config.batch_size, len(train_set))
    )
    live = _Live(Path(live_dir) if live_dir else None, state.history)
    progress = Progress(log_name, config.epochs, done=state.epoch)
    if resumed_from is not None and not state.finished:
        progress.stream.write(
            f"[{log_name}] resuming from {out_dir / LAST} at epoch {state.epoch}\n"
        )
    budget_start, wall_start = state.train_seconds, time.monotonic()
    while not state.finished:
        run.model.train()
        losses = train_epoch(run, train_set, state.epoch)
        state.epoch += 1
        entry = end_epoch(run, losses, val_set, num_classes)
        live.log(entry)
        extra, eta_s = progress_text(run, entry, budget_start, wall_start)
        progress.update(extra=extra, force=state.finished, eta_s=eta_s)
        save_after_epoch(run, entry)
    live.close()
    best_path = out_dir / BEST
    result = TrainResult(
        out_dir / LAST, best_path if best_path.exists() else None, state, resumed_from
    )
    write_json(
        out_dir / "train.json",
        {"meta": meta, "summary": result.summary(), PROVENANCE: provenance(device)},
    )
    return result


@dataclass
class TrainJob:
    """One model's training, picklable so that :func:`segnas.workers.run_jobs` can run several
    at once in separate processes."""

    name: str
    genotype: Genotype
    train_set: Dataset
    val_set: Dataset | None
    num_classes: int
    config: TrainConfig
    out_dir: Path
    device: torch.device
    classes: Sequence[str]
    palette: Sequence[Sequence[int]]
    dataset_name: str
    class_weights: list[float] | None = None


def run_train_job(job: TrainJob) -> dict[str, Any]:
    """Train ``job`` (:func:`train_model`, DVCLive under ``out_dir/dvclive``); its summary."""
    result = train_model(
        job.genotype,
        job.train_set,
        job.val_set,
        job.num_classes,
        job.config,
        job.out_dir,
        job.device,
        classes=job.classes,
        palette=job.palette,
        dataset_name=job.dataset_name,
        live_dir=job.out_dir / "dvclive",
        log_name=f"train {job.name}",
        class_weights=job.class_weights,
    )
    return result.summary()


def plan_train_jobs(
    params: dict, params_path: str, prepared: PreparedDataset, device: torch.device
) -> tuple[dict[str, TrainJob], dict[str, Any]]:
    """The train stage's jobs (one per architecture of ``train.architectures`` and the
    search's ``top_k`` under ``max_params``) and the ``train`` section they come from: the
    validation split (none where the dataset lacks it), class weights, the size cap, and the
    search checked to be today's when ``top_k`` reads it."""
    spec, config = train_config_of(params, params_path, prepared)
    val_split = spec["val_split"] if spec["val_split"] in prepared.splits else None
    train_splits = spec["train_splits"]
    train_set, val_set = build_datasets(prepared, config, train_splits, val_split)
    class_weights = None
    if config.class_weighting == "median_frequency":
        class_weights = median_frequency_weights(prepared, train_splits)
        shown = ", ".join(
            f"{c} {w:.2f}" for c, w in zip(prepared.classes, class_weights, strict=True)
        )
        print(f"train: median-frequency class weights: {shown}")
    cap = None
    if spec["max_params"] is not None:
        cap = SizeCap(
            int(spec["max_params"]), prepared.num_classes, config.agg_width, config.sep_conv_units
        )
    if int(spec["top_k"]):
        check_search_matches(SEARCH, params, params_path, "train (top_k)")
    archs = select_architectures(spec["architectures"], int(spec["top_k"]), cap=cap)
    jobs = {
        name: TrainJob(
            name,
            genotype,
            train_set,
            val_set,
            prepared.num_classes,
            config,
            MODELS / name,
            device,
            prepared.classes,
            prepared.palette,
            str(spec["dataset"]),
            class_weights,
        )
        for name, genotype in archs.items()
    }
    return jobs, spec
