"""The two training phases of a search evaluation and its meta-val scoring.

Phase 1 trains the decoder alone on the cached stem outputs; phase 2 trains end to end on
meta-train images with random scale, crop and flip; ``validate`` scores meta-val. Batches are
shuffled from ``(seed, epoch)``, or, with ``common_order``, from the stem cache's crop seed, so
that every architecture sees the same batches (common random numbers). The learning rate is
constant or follows a cosine to zero over the phase (``lr_schedule``); with ``ema_decay`` the
phase ends with an exponential moving average of its weights. A non-finite loss or output
raises :class:`Diverged`.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator

import torch
from torch import nn

from ..loss import segmentation_loss
from ..metrics import ConfusionMatrix
from ..model import SegmentationNet
from ..seeds import derive_seed
from .data import TrialData, stack_pairs
from .recipe import TrialSetup


class Diverged(RuntimeError):
    """The training loss became NaN or infinite."""


@contextlib.contextmanager
def deterministic(threads: int, device: torch.device) -> Iterator[None]:
    """``threads`` torch threads and deterministic algorithms (on CUDA, where bilinear
    upsampling has no deterministic backward, only a warning), restored afterwards."""
    previous_threads = torch.get_num_threads()
    previous_mode = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=device.type != "cpu")
    try:
        yield
    finally:
        torch.set_num_threads(previous_threads)
        torch.use_deterministic_algorithms(previous_mode, warn_only=previous_warn)


def _loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    loss = segmentation_loss(logits, labels)
    if not torch.isfinite(loss):
        raise Diverged(f"training loss became {float(loss.detach())}")
    return loss


def _batches(num_items: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Shuffled batches; a trailing batch of one item is dropped (BatchNorm needs two)."""
    generator = torch.Generator().manual_seed(derive_seed(seed, "epoch", epoch))
    order = torch.randperm(num_items, generator=generator).tolist()
    batches = [order[i : i + batch_size] for i in range(0, num_items, batch_size)]
    return [b for b in batches if len(b) > 1] or batches


def _to(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


class WeightAverage:
    """An exponential moving average of a module's floating-point parameters and buffers,
    updated after each step and loaded into the module at the end of a phase."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        self.module = module
        self.decay = decay
        self.shadow = {
            name: tensor.detach().clone()
            for name, tensor in module.state_dict().items()
            if tensor.is_floating_point()
        }

    @torch.no_grad()
    def update(self) -> None:
        state = self.module.state_dict()
        for name, average in self.shadow.items():
            average.mul_(self.decay).add_(state[name].detach(), alpha=1 - self.decay)

    @torch.no_grad()
    def load(self) -> None:
        state = self.module.state_dict()
        for name, average in self.shadow.items():
            state[name].copy_(average)


class _Schedule:
    """Sets the learning rate of each step (constant, or a cosine from the base to zero) and
    keeps the weight average, if any."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        setup: TrialSetup,
        total_steps: int,
        module: nn.Module,
    ) -> None:
        self.optimizer = optimizer
        self.cosine = setup.lr_schedule == "cosine"
        self.base = [group["lr"] for group in optimizer.param_groups]
        self.total = max(1, total_steps)
        self.average = WeightAverage(module, setup.ema_decay) if setup.ema_decay else None
        self.step_index = 0

    def before_step(self) -> None:
        if self.cosine:
            factor = 0.5 * (1 + math.cos(math.pi * self.step_index / self.total))
            for group, base in zip(self.optimizer.param_groups, self.base, strict=True):
                group["lr"] = base * factor

    def after_step(self) -> None:
        self.step_index += 1
        if self.average is not None:
            self.average.update()

    def end(self) -> None:
        if self.average is not None:
            self.average.load()


def order_seed(data: TrialData, setup: TrialSetup, seed: int, phase: str) -> int:
    """The seed of a phase's batch order (and phase 2's crops): the evaluation's own, or with
    ``common_order`` one shared by every evaluation on this stem cache."""
    if setup.common_order:
        return derive_seed(int(data.cache.header["crop_seed"]), "common-order", phase)
    return seed


AfterEpoch = Callable[[int], None]
"""Called at the end of each epoch of a training phase with the number of epochs done."""


def _run_epochs(
    epochs: list[list[list[int]]],
    optimizer: torch.optim.Optimizer,
    schedule: _Schedule,
    batch_loss: Callable[[list[int]], torch.Tensor],
    after_epoch: AfterEpoch | None,
    start_epoch: Callable[[int], None] | None = None,
) -> None:
    """One optimizer step per batch of each epoch (the learning rate and weight average from
    ``schedule``); ``start_epoch``/``after_epoch`` are called around each epoch."""
    for epoch, batches in enumerate(epochs):
        if start_epoch is not None:
            start_epoch(epoch)
        for batch in batches:
            loss = batch_loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            schedule.before_step()
            optimizer.step()
            schedule.after_step()
        if after_epoch is not None:
            after_epoch(epoch + 1)
    schedule.end()


def train_phase1(
    model: SegmentationNet,
    data: TrialData,
    setup: TrialSetup,
    seed: int,
    device: torch.device,
    after_epoch: AfterEpoch | None = None,
) -> None:
    """Decoder-only training on the cached stem outputs."""
    decoder = model.decoder
    decoder.train()
    optimizer = torch.optim.Adam(decoder.parameters(), lr=setup.lr_decoder_phase1)
    seed = order_seed(data, setup, seed, "phase1")
    epochs = [
        _batches(len(data.cache), setup.batch_size, seed, e) for e in range(setup.phase1_epochs)
    ]

    def batch_loss(batch: list[int]) -> torch.Tensor:
        quarter, eighth, labels = data.cache.batch(sorted(batch))
        logits = decoder(
            _to(quarter, device, setup.channels_last), _to(eighth, device, setup.channels_last)
        )
        return _loss(logits, labels.to(device))

    schedule = _Schedule(optimizer, setup, sum(map(len, epochs)), decoder)
    _run_epochs(epochs, optimizer, schedule, batch_loss, after_epoch)


def train_phase2(
    model: SegmentationNet,
    data: TrialData,
    setup: TrialSetup,
    seed: int,
    device: torch.device,
    after_epoch: AfterEpoch | None = None,
) -> None:
    """End-to-end training on meta-train images with random scale, crop and flip."""
    from ..data.dataset import SegmentationDataset
    from ..data.transforms import TrainTransform

    seed = order_seed(data, setup, seed, "phase2")
    transform = TrainTransform(setup.crop_size, setup.scale_range, setup.flip, seed)
    dataset = SegmentationDataset(data.prepared, data.meta_train, transform)
    model.train()
    optimizer = torch.optim.Adam(
        [
            {"params": model.decoder.parameters(), "lr": setup.lr_decoder},
            {"params": model.stem.parameters(), "lr": setup.lr_stem},
        ]
    )
    epochs = [_batches(len(dataset), setup.batch_size, seed, e) for e in range(setup.phase2_epochs)]

    def batch_loss(batch: list[int]) -> torch.Tensor:
        images, labels = stack_pairs([dataset[i] for i in batch])
        return _loss(model(_to(images, device, setup.channels_last)), labels.to(device))

    schedule = _Schedule(optimizer, setup, sum(map(len, epochs)), model)
    _run_epochs(epochs, optimizer, schedule, batch_loss, after_epoch, dataset.set_epoch)


@torch.no_grad()
def validate(
    model: nn.Module, data: TrialData, setup: TrialSetup, device: torch.device
) -> dict[str, float]:
    """Scores on meta-val (logits upsampled to the label size)."""
    model.eval()
    confusion = ConfusionMatrix(data.num_classes)
    for images, labels in data.val_batches(setup.val_size, setup.batch_size):
        logits = model(_to(images, device, setup.channels_last))
        if not torch.isfinite(logits).all():
            raise Diverged("validation logits are not finite")
        confusion.update(logits.float().cpu(), labels)
    model.train()
    return confusion.scores()
