"""The final training's loop, one piece per job: the run's model, optimizer and state
(resumed from ``last.pt``), an epoch of optimisation steps under the poly schedule, the end of
an epoch (history, validation, checkpoints) and its progress line. ``final_training.train_model``
drives them."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .checkpoint import (
    BEST,
    LAST,
    TrainState,
    check_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from .errors import ConfigError, SegnasError
from .io import remove_stale_temps_under
from .loss import segmentation_loss
from .model import build_model
from .scoring import amp_autocast, score_model, to_device_input
from .space import Genotype
from .trainconfig import TrainConfig
from .training_data import epoch_batches


def poly_lr(base_lr: float, progress: float, power: float = 0.9) -> float:
    """``base_lr * (1 - progress) ** power`` with progress clamped to [0, 1]."""
    return base_lr * (1.0 - min(max(progress, 0.0), 1.0)) ** power


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or SGD (with momentum) over every parameter, as ``config.optimizer`` says."""
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )


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


@dataclass
class TrainingRun:
    """The moving parts of one training run, shared by its epochs."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler | None
    loss_weight: torch.Tensor | None
    device: torch.device
    channels_last: bool
    use_amp: bool
    config: TrainConfig
    meta: dict[str, Any]
    state: TrainState
    out_dir: Path
    log_name: str
    total_iters: int = 1
    lr: float = 0.0

    def budget_progress(self) -> float:
        if self.config.time_budget_s is not None:
            return self.state.train_seconds / self.config.time_budget_s
        return self.state.iteration / self.total_iters

    def out_of_budget(self) -> bool:
        budget = self.config.time_budget_s
        return budget is not None and self.state.train_seconds >= budget

    def diverged(self, what: str, epoch: int) -> TrainingDiverged:
        return TrainingDiverged(
            f"{self.log_name}: training diverged in epoch {epoch} by iteration "
            f"{self.state.iteration} ({what}, lr {self.lr:.3g}); stopped without saving it, so "
            f"{self.out_dir} keeps only checkpoints from before. Lower train.lr (now "
            f"{self.config.lr:g}) and rerun"
        )

    def save(self, path: Path) -> None:
        if not _all_finite(self.model):
            raise self.diverged("non-finite weights", self.state.epoch)
        save_checkpoint(path, self.model, self.optimizer, self.scaler, self.meta, self.state)


def check_class_weights(
    config: TrainConfig, class_weights: Sequence[float] | None, num_classes: int, log_name: str
) -> None:
    """Class weights exactly when ``class_weighting`` is not ``none``, one per class."""
    if (config.class_weighting != "none") != (class_weights is not None):
        raise ConfigError(
            f"{log_name}: class_weighting {config.class_weighting!r} needs class weights "
            "exactly when it is not 'none'"
        )
    if class_weights is not None and len(class_weights) != num_classes:
        raise ConfigError(f"{log_name}: {len(class_weights)} class weights for {num_classes}")


def start_run(
    genotype: Genotype,
    num_classes: int,
    config: TrainConfig,
    out_dir: Path,
    device: torch.device,
    meta: dict[str, Any],
    class_weights: Sequence[float] | None,
    log_name: str,
) -> tuple[TrainingRun, int | None]:
    """The model, optimizer and state, resumed from ``out_dir/last.pt`` when present; the
    epoch it resumed from (``None`` for a new run)."""
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
    optimizer = make_optimizer(model, config)
    use_amp = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    state, resumed_from = TrainState(), None
    remove_stale_temps_under(out_dir)
    last_path = out_dir / LAST
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
    run = TrainingRun(
        model,
        optimizer,
        scaler,
        loss_weight,
        device,
        channels_last,
        use_amp,
        config,
        meta,
        state,
        out_dir,
        log_name,
    )
    return run, resumed_from


def train_epoch(run: TrainingRun, train_set: Dataset, epoch: int) -> list[float]:
    """One epoch's optimisation steps (stopping early at the end of a time budget); the
    losses."""
    config, state, device = run.config, run.state, run.device
    losses: list[float] = []
    run.lr = poly_lr(config.lr, run.budget_progress(), config.poly_power)
    for image, label in epoch_batches(train_set, config, epoch, config.seed):
        start = time.perf_counter()
        run.lr = poly_lr(config.lr, run.budget_progress(), config.poly_power)
        for group in run.optimizer.param_groups:
            group["lr"] = run.lr
        image = to_device_input(image, device, run.channels_last)
        label = label.to(device, non_blocking=True)
        with amp_autocast(device, run.use_amp):
            loss = segmentation_loss(run.model(image).float(), label, weight=run.loss_weight)
        run.optimizer.zero_grad(set_to_none=True)
        if run.scaler is not None:
            run.scaler.scale(loss).backward()
            run.scaler.step(run.optimizer)
            run.scaler.update()
        else:
            loss.backward()
            run.optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        losses.append(float(loss.detach()))
        if run.scaler is None and not math.isfinite(losses[-1]):
            raise run.diverged(f"loss {losses[-1]}", epoch + 1)
        state.iteration += 1
        state.train_seconds += time.perf_counter() - start
        if run.out_of_budget():
            break
    return losses


def end_epoch(
    run: TrainingRun, losses: list[float], val_set: Dataset | None, num_classes: int
) -> dict[str, Any]:
    """Close an epoch: its history entry (validated when due), best.pt on a new best val
    mIoU, last.pt every ``checkpoint_every`` epochs and at the end."""
    config, state = run.config, run.state
    entry: dict[str, Any] = {
        "epoch": state.epoch,
        "loss": float(np.mean(losses)) if losses else math.nan,
        "lr": run.lr,
        "train_seconds": round(state.train_seconds, 3),
    }
    state.finished = state.epoch >= config.epochs or run.out_of_budget()
    if val_set is not None and (state.finished or state.epoch % config.val_every == 0):
        confusion = score_model(
            run.model, val_set, num_classes, run.device, run.channels_last, run.use_amp
        )
        entry["val_miou"] = float(confusion.scores()["miou"])
    state.history.append(entry)
    return entry


def save_after_epoch(run: TrainingRun, entry: dict[str, Any]) -> None:
    """``best.pt`` on a new best val mIoU; ``last.pt`` every ``checkpoint_every`` epochs and at
    the end."""
    state = run.state
    if "val_miou" in entry and entry["val_miou"] > state.best_miou:
        state.best_miou, state.best_epoch = entry["val_miou"], state.epoch
        run.save(run.out_dir / BEST)
    if state.finished or state.epoch % run.config.checkpoint_every == 0:
        run.save(run.out_dir / LAST)


def progress_text(
    run: TrainingRun, entry: dict[str, Any], budget_start: float, wall_start: float
) -> tuple[str, float | None]:
    """The progress line's extra text and, for a time budget, its ETA."""
    extra = f"loss {entry['loss']:.4f} lr {run.lr:.2e}"
    if "val_miou" in entry:
        extra += f" val mIoU {entry['val_miou']:.4f}"
    budget, eta_s = run.config.time_budget_s, None
    if budget is not None:
        extra += f" budget {run.state.train_seconds:.1f}/{budget:g} s"
        eta_s = _budget_eta(run.state.train_seconds, budget, budget_start, wall_start)
    return extra, eta_s
