"""Model builder: genotype -> stem + template decoder + head."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .ops import Aggregation, build_op, resize_to
from .space import DEFAULT_SPACE, Genotype, SearchSpace
from .stem import STEM_CHANNELS, build_stem


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


SEARCH_CONFIG = dict(agg_width=48, sep_conv_units=1)
FINAL_CONFIG = dict(agg_width=64, sep_conv_units=2)


class TemplateInstance(nn.Module):
    """One application of a template: two operations and their aggregation."""

    def __init__(
        self,
        op1: str,
        op2: str,
        agg: str,
        channels: tuple[int, int],
        stride: int,
        widen: bool,
        shrink: bool,
        units: int,
    ) -> None:
        super().__init__()
        factor = 2 if widen and stride == 2 else 1
        self.op1 = build_op(op1, channels[0], channels[0] * factor, stride, units)
        self.op2 = build_op(op2, channels[1], channels[1] * factor, stride, units)
        self.aggregate = Aggregation(agg, channels[0] * factor, channels[1] * factor, shrink)
        self.out_channels = self.aggregate.channels

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return self.aggregate(self.op1(x1), self.op2(x2))


class DecoderBlock(nn.Module):
    """A template repeated ``repeats`` times; instance k+1 reads (input 2 of k, output of k)."""

    def __init__(
        self,
        template: tuple[str, str, str],
        channels: tuple[int, int],
        repeats: int,
        stride: int,
        shrink: bool,
        units: int,
    ) -> None:
        super().__init__()
        instances = []
        for k in range(repeats):
            instance = TemplateInstance(
                *template,
                channels=channels,
                stride=stride,
                widen=k == 0,
                shrink=shrink,
                units=units,
            )
            instances.append(instance)
            channels = (channels[1], instance.out_channels)
        self.instances = nn.ModuleList(instances)
        self.out_channels = instances[-1].out_channels

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        for instance in self.instances:
            x1, x2 = x2, instance(x1, x2)
        return x2


class TemplateDecoder(nn.Module):
    """The searched part: blocks over a growing pool, then the head over unused block outputs."""

    def __init__(
        self,
        genotype: Genotype,
        num_classes: int,
        agg_width: int,
        sep_conv_units: int,
        space: SearchSpace = DEFAULT_SPACE,
        stem_channels: tuple[int, ...] = STEM_CHANNELS,
    ) -> None:
        super().__init__()
        space.validate(genotype)
        self.genotype = genotype
        pool_channels = list(stem_channels)
        used: set[int] = set()
        blocks = []
        for i, b in enumerate(genotype.blocks):
            t = genotype.templates[b.template]
            block = DecoderBlock(
                (t.op1, t.op2, t.agg),
                (pool_channels[b.loc1], pool_channels[b.loc2]),
                b.repeats,
                b.stride,
                shrink=i < space.num_strided_blocks,
                units=sep_conv_units,
            )
            blocks.append(block)
            pool_channels.append(block.out_channels)
            used.update((b.loc1, b.loc2))
        self.blocks = nn.ModuleList(blocks)
        first_block = len(stem_channels)
        self.collected = [i for i in range(first_block, len(pool_channels)) if i not in used]
        collected_channels = sum(pool_channels[i] for i in self.collected)
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(collected_channels, agg_width, 1, bias=False),
            nn.BatchNorm2d(agg_width),
            nn.ReLU(inplace=True),
            nn.Conv2d(agg_width, num_classes, 3, padding=1, bias=True),
        )

    def forward(self, *stem_outputs: torch.Tensor) -> torch.Tensor:
        pool = list(stem_outputs)
        for b, block in zip(self.genotype.blocks, self.blocks, strict=True):
            pool.append(block(pool[b.loc1], pool[b.loc2]))
        joined = pool[self.collected[0]]
        for index in self.collected[1:]:
            x = pool[index]
            if joined.shape[2] < x.shape[2]:
                joined = resize_to(joined, tuple(x.shape[-2:]))
            elif x.shape[2] < joined.shape[2]:
                x = resize_to(x, tuple(joined.shape[-2:]))
            joined = torch.cat([joined, x], dim=1)
        return self.head(joined)


class SegmentationNet(nn.Module):
    """Stem + template decoder; ``forward`` returns logits at the decoder's resolution."""

    def __init__(self, stem: nn.Module, decoder: TemplateDecoder) -> None:
        super().__init__()
        self.stem = stem
        self.decoder = decoder

    @property
    def genotype(self) -> Genotype:
        return self.decoder.genotype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(*self.stem(x))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Logits upsampled bilinearly to the input size."""
        return F.interpolate(self(x), size=x.shape[-2:], mode="bilinear", align_corners=False)


def build_decoder(
    genotype: Genotype,
    num_classes: int = 19,
    agg_width: int = 64,
    sep_conv_units: int = 2,
    space: SearchSpace = DEFAULT_SPACE,
    seed: int | None = None,
) -> TemplateDecoder:
    """Build only the searched decoder + head (trained alone on cached stem features).

    With ``seed`` the initial weights come from a private generator seeded with it, leaving
    the global RNG untouched.
    """
    with _seeded(seed):
        return TemplateDecoder(genotype, num_classes, agg_width, sep_conv_units, space)


def build_model(
    genotype: Genotype,
    num_classes: int = 19,
    agg_width: int = 64,
    sep_conv_units: int = 2,
    stem_weights: str = "none",
    space: SearchSpace = DEFAULT_SPACE,
    seed: int | None = None,
) -> SegmentationNet:
    """Build the full network for ``genotype``.

    ``agg_width``/``sep_conv_units`` are 48/1 during the search and 64/2 for final training;
    ``stem_weights`` is ``imagenet``, ``none`` or a path to a state dict; ``seed`` makes the
    random initialisation (stem included, when not loaded) reproducible.
    """
    with _seeded(seed):
        stem = build_stem(stem_weights)
        decoder = TemplateDecoder(genotype, num_classes, agg_width, sep_conv_units, space)
    return SegmentationNet(stem, decoder)
