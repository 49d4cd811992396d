"""What the final training reads: the augmented training set and the validation set of a
prepared dataset, SegNet's class weights, and the seeded batch order of each epoch."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .data.dataset import SegmentationDataset
from .data.prepared import PreparedDataset, pixel_column
from .data.transforms import TrainTransform
from .errors import ConfigError
from .scoring import ResizeInput
from .seeds import epoch_seed
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


def epoch_order(num_items: int, seed: int, epoch: int) -> list[int]:
    """The sample order of ``epoch``, from the seed alone."""
    generator = torch.Generator().manual_seed(epoch_seed(seed, epoch))
    return torch.randperm(num_items, generator=generator).tolist()


def epoch_batches(
    dataset: Dataset, config: TrainConfig, epoch: int, generator_seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The (image, label) batches of ``epoch``: a seeded permutation, whole batches only."""
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    batch = min(config.batch_size, len(dataset))
    loader = DataLoader(
        dataset,
        batch_size=batch,
        sampler=epoch_order(len(dataset), generator_seed, epoch),
        num_workers=config.num_workers,
        drop_last=True,
        pin_memory=False,
    )
    yield from loader
