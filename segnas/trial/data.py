"""What every search evaluation reads: the prepared dataset, the meta split and the stem cache
(``TrialData``), with the stem checked against the configured ``stem.weights``.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ArtifactError


class TrialData:
    """What every evaluation reads: the prepared dataset, the meta split and the stem cache.

    Construct with :meth:`from_paths`. The stem is loaded once from the cache's ``stem.pt``
    (checked against the cache's stem hash) after the cache header's ``stem_weights`` is
    checked against the configured ``stem.weights``.
    """

    def __init__(
        self,
        prepared: object,
        meta_train: list[str],
        meta_val: list[str],
        cache: object,
        stem_weights: str = "none",
        val_cache_bytes: int = 1 << 30,
    ) -> None:
        self.prepared = prepared
        self.meta_train = meta_train
        self.meta_val = meta_val
        self.cache = cache
        self.stem_weights = stem_weights
        stem = _cache_stem(cache, stem_weights)
        self.stem_state = {k: v.clone() for k, v in stem.state_dict().items()}
        self.num_classes = int(prepared.num_classes)
        self.val_cache_bytes = val_cache_bytes
        self._val_batches: dict[tuple, list] = {}

    @classmethod
    def from_paths(
        cls,
        prepared_dir: str | Path,
        split_dir: str | Path,
        cache_dir: str | Path,
        stem_weights: str = "none",
    ) -> TrialData:
        """Open ``data/prepared/<dataset>/``, ``data/split/`` and ``cache/stem/``."""
        from ..data.prepared import load_prepared
        from ..data.split import load_split
        from ..data.stem_cache import open_stem_cache

        prepared = load_prepared(prepared_dir)
        meta_train, meta_val = load_split(split_dir)
        cache = open_stem_cache(cache_dir)
        if int(cache.header.get("num_classes", prepared.num_classes)) != prepared.num_classes:
            raise ArtifactError(
                f"{cache_dir}/header.json: {cache.header.get('num_classes')} classes but "
                f"{prepared_dir} has {prepared.num_classes}; rerun cache_stem"
            )
        return cls(prepared, meta_train, meta_val, cache, stem_weights)

    def val_batches(self, val_size: tuple[int, int] | None, batch_size: int) -> list:
        """Meta-val (images, labels) batches of equal-size images; kept in memory when small."""
        key = (val_size, batch_size)
        if key in self._val_batches:
            return self._val_batches[key]
        from ..data.dataset import SegmentationDataset
        from ..data.transforms import EvalTransform

        dataset = SegmentationDataset(self.prepared, self.meta_val, EvalTransform(val_size))
        batches, pending, total = [], [], 0
        for index in range(len(dataset)):
            image, label = dataset[index]
            if pending and (pending[0][0].shape != image.shape or len(pending) == batch_size):
                batches.append(stack_pairs(pending))
                pending = []
            pending.append((image, label))
            total += image.numel() * 4 + label.numel() * 8
        if pending:
            batches.append(stack_pairs(pending))
        if total <= self.val_cache_bytes:
            self._val_batches[key] = batches
        return batches


def _cache_stem(cache: object, stem_weights: str) -> nn.Module:
    """The stem whose outputs the cache holds (``StemCache.load_stem``: ``<cache>/stem.pt``,
    checked against the header's hash), once the header says it was built with the configured
    ``stem.weights``."""
    built_with = cache.header.get("stem_weights")
    if built_with != stem_weights:
        raise ArtifactError(
            f"{Path(cache.root) / 'header.json'}: the stem cache was built with stem.weights "
            f"{built_with!r} but the search is configured with stem.weights {stem_weights!r}; "
            "rerun the cache_stem stage with the current params (or set stem.weights back to "
            f"{built_with!r})"
        )
    return cache.load_stem()


def stack_pairs(items: list) -> tuple[torch.Tensor, torch.Tensor]:
    """(image, label) pairs -> a batch of images and a batch of labels."""
    return torch.stack([i for i, _ in items]), torch.stack([lab for _, lab in items])
