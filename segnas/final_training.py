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

import math
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .checkpoint import (
    BEST,
    CHECKPOINT_FORMAT,
    LAST,
    TrainState,
    check_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from .data.dataset import SegmentationDataset
from .data.prepared import PreparedDataset, pixel_column
from .data.transforms import TrainTransform
from .errors import ConfigError, SegnasError
from .io import remove_stale_temps_under, write_json
from .loss import segmentation_loss
from .model import build_model
from .progress import Progress
from .provenance import KEY as PROVENANCE
from .provenance import provenance
from .scoring import ResizeInput, amp_autocast, score_model, to_device_input
from .seeds import epoch_seed
from .space import Genotype
from .trainconfig import TrainConfig


def median_frequency_weights(prepared: PreparedDataset, splits: Sequence[str]) -> list[float]:
    """SegNet's class balancing: ``median(freq) / freq(c)``, where ``freq(c)`` is the pixels of
    class ``c`` over the labelled pixels of the images (of ``splits``) in which ``c`` appears.
    A class absent from those images gets weight 1."""
    columns = [pixel_column(name) for name in prepared.classes]
    rows = prepared.index[prepared.index["split"].isin(list(splits))]
    counts = rows[columns].to_numpy(dtype=np.float64)
    labelled = counts.sum(axis=1, keepdims=True)
    present = counts > 0
    frequency = counts.sum(axis=0) / np.maximum((labelled * present).sum(axis=0), 1.0)
    seen = frequency > 0
    if not seen.any():
        raise ConfigError(f"splits {list(splits)} of {prepared.root} hold no labelled pixel")
    weights = np.ones(len(columns))
    weights[seen] = np.median(frequency[seen]) / frequency[seen]
    return [float(w) for w in weights]


def poly_lr(base_lr: float, progress: float, power: float = 0.9) -> float:
    """``base_lr * (1 - progress) ** power`` with progress clamped to [0, 1]."""
    return base_lr * (1.0 - min(max(progress, 0.0), 1.0)) ** power


def build_datasets(
    prepared: PreparedDataset,
    config: TrainConfig,
    train_splits: Sequence[str] = ("train",),
    val_split: str | None = "val",
) -> tuple[SegmentationDataset, SegmentationDataset | None]:
    """The augmented training set and the (label-size) validation set of ``prepared``."""
    train_ids = [i for split in train_splits for i in prepared.ids(split)]
    transform = TrainTransform(config.crop_size, config.scale_range, config.flip, config.seed)
    train_set = SegmentationDataset(prepared, train_ids, transform)
    val_set = None
    if val_split:
        val_set = SegmentationDataset(
            prepared, prepared.ids(val_split), ResizeInput(config.input_size)
        )
    return train_set, val_set


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


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )


def _epoch_order(num_items: int, seed: int, epoch: int) -> list[int]:
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    return torch.randperm(num_items, generator=generator).tolist()


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


class TrainingDiverged(SegnasError, RuntimeError):
    """The loss or the weights became non-finite (NaN or infinite)."""


def _all_finite(model: nn.Module) -> bool:
    return all(
        bool(torch.isfinite(t).all())
        for t in (*model.parameters(), *model.buffers())
        if t.is_floating_point()
    )


def _budget_eta(train_s: float, budget_s: float, train_s_start: float, wall_start: float) -> float:
    """Wall seconds left of a time-budget run: the budget's remaining training seconds scaled by
    the wall time each training second has cost so far in this process (validation included)."""
    spent = train_s - train_s_start
    wall_per_train_s = (time.monotonic() - wall_start) / spent if spent > 0 else 1.0
    return max(budget_s - train_s, 0.0) * wall_per_train_s


def _batches(
    dataset: Dataset, config: TrainConfig, epoch: int, generator_seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    batch = min(config.batch_size, len(dataset))
    loader = DataLoader(
        dataset,
        batch_size=batch,
        sampler=_epoch_order(len(dataset), generator_seed, epoch),
        num_workers=config.num_workers,
        drop_last=True,
        pin_memory=False,
    )
    yield from loader


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
    ``config.class_weighting`` is not ``none`` (see :func:`median_frequency_weights`).
    """
    device = torch.device(device)
    out_dir = Path(out_dir)
    if (config.class_weighting != "none") != (class_weights is not None):
        raise ConfigError(
            f"{log_name}: class_weighting {config.class_weighting!r} needs class weights "
            "exactly when it is not 'none'"
        )
    if class_weights is not None and len(class_weights) != num_classes:
        raise ConfigError(f"{log_name}: {len(class_weights)} class weights for {num_classes}")
    meta = checkpoint_meta(genotype, config, num_classes, classes, palette, dataset_name)
    if class_weights is not None:
        meta["class_weights"] = [float(w) for w in class_weights]
    loss_weight = None if class_weights is None else torch.tensor(class_weights, device=device)
    model = build_model(
        genotype,
        num_classes=num_classes,
        agg_width=config.agg_width,
        sep_conv_units=config.sep_conv_units,
        stem_weights=config.stem_weights,
        seed=config.seed,
    ).to(device)
    channels_last = config.channels_last or device.type == "cuda"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = _make_optimizer(model, config)
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    state = TrainState()
    resumed_from = None
    remove_stale_temps_under(out_dir)
    last_path, best_path = out_dir / LAST, out_dir / BEST
    if last_path.exists():
        payload = load_checkpoint(last_path)
        check_checkpoint(last_path, payload, meta)
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        if scaler is not None and payload["scaler"] is not None:
            scaler.load_state_dict(payload["scaler"])
        stored = dict(payload["state"])
        # interned keys, as in an uninterrupted run, so later checkpoints pickle to the same bytes
        stored["history"] = [{sys.intern(k): v for k, v in e.items()} for e in stored["history"]]
        state = TrainState(**stored)
        resumed_from = state.epoch
    if len(train_set) == 0:
        raise ConfigError(f"{log_name}: the training split is empty")
    iters_per_epoch = max(1, len(train_set) // min(config.batch_size, len(train_set)))
    total_iters = config.epochs * iters_per_epoch
    live = _Live(Path(live_dir) if live_dir else None, state.history)
    progress = Progress(log_name, config.epochs, done=state.epoch)
    if resumed_from is not None and not state.finished:
        progress.stream.write(f"[{log_name}] resuming from {last_path} at epoch {state.epoch}\n")

    def budget_progress() -> float:
        if config.time_budget_s is not None:
            return state.train_seconds / config.time_budget_s
        return state.iteration / total_iters

    def out_of_budget() -> bool:
        if config.time_budget_s is not None:
            return state.train_seconds >= config.time_budget_s
        return False

    def diverged(what: str, epoch: int) -> TrainingDiverged:
        return TrainingDiverged(
            f"{log_name}: training diverged in epoch {epoch} by iteration "
            f"{state.iteration} ({what}, lr {lr:.3g}); stopped without saving it, so "
            f"{out_dir} keeps only checkpoints from before. Lower train.lr (now {config.lr:g}) "
            "and rerun"
        )

    def save(path: Path) -> None:
        if not _all_finite(model):
            raise diverged("non-finite weights", state.epoch)
        save_checkpoint(path, model, optimizer, scaler, meta, state)

    budget_start, wall_start = state.train_seconds, time.monotonic()
    while not state.finished:
        model.train()
        epoch = state.epoch
        losses = []
        lr = poly_lr(config.lr, budget_progress(), config.poly_power)
        for image, label in _batches(train_set, config, epoch, config.seed):
            start = time.perf_counter()
            lr = poly_lr(config.lr, budget_progress(), config.poly_power)
            for group in optimizer.param_groups:
                group["lr"] = lr
            image = to_device_input(image, device, channels_last)
            label = label.to(device, non_blocking=True)
            with amp_autocast(device, use_amp):
                loss = segmentation_loss(model(image).float(), label, weight=loss_weight)
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            losses.append(float(loss.detach()))
            if scaler is None and not math.isfinite(losses[-1]):
                raise diverged(f"loss {losses[-1]}", epoch + 1)
            state.iteration += 1
            state.train_seconds += time.perf_counter() - start
            if out_of_budget():
                break
        state.epoch = epoch + 1
        entry: dict[str, Any] = {
            "epoch": state.epoch,
            "loss": float(np.mean(losses)) if losses else math.nan,
            "lr": lr,
            "train_seconds": round(state.train_seconds, 3),
        }
        state.finished = state.epoch >= config.epochs or out_of_budget()
        validate = val_set is not None and (state.finished or state.epoch % config.val_every == 0)
        if validate:
            confusion = score_model(model, val_set, num_classes, device, channels_last, use_amp)
            entry["val_miou"] = float(confusion.scores()["miou"])
        state.history.append(entry)
        live.log(entry)
        extra = f"loss {entry['loss']:.4f} lr {lr:.2e}"
        if "val_miou" in entry:
            extra += f" val mIoU {entry['val_miou']:.4f}"
        eta_s = None
        if config.time_budget_s is not None:
            extra += f" budget {state.train_seconds:.1f}/{config.time_budget_s:g} s"
            eta_s = _budget_eta(state.train_seconds, config.time_budget_s, budget_start, wall_start)
        progress.update(extra=extra, force=state.finished, eta_s=eta_s)
        if "val_miou" in entry and entry["val_miou"] > state.best_miou:
            state.best_miou, state.best_epoch = entry["val_miou"], state.epoch
            save(best_path)
        if state.finished or state.epoch % config.checkpoint_every == 0:
            save(last_path)
    live.close()
    result = TrainResult(last_path, best_path if best_path.exists() else None, state, resumed_from)
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
