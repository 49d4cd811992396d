"""Operations and aggregations of the template decoder (see the reference structural rules)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def resize_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (align_corners=False); a no-op when the size already matches."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    """1x1 conv (no bias) -> BatchNorm -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SepConv(nn.Sequential):
    """``units`` x (depthwise kxk -> pointwise 1x1 -> BatchNorm -> ReLU); stride in each unit."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        dilation: int = 1,
        units: int = 1,
    ) -> None:
        layers: list[nn.Module] = []
        channels = in_channels
        padding = dilation * (kernel_size - 1) // 2
        for _ in range(units):
            layers += [
                nn.Conv2d(
                    channels,
                    channels,
                    kernel_size,
                    stride=stride,
                    padding=padding,
                    dilation=dilation,
                    groups=channels,
                    bias=False,
                ),
                nn.Conv2d(channels, out_channels, 1, bias=False),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
            channels = out_channels
        super().__init__(*layers)


class MaxPoolOp(nn.Sequential):
    """1x1 conv -> BatchNorm -> 3x3 max-pool (padding 1, the block's stride)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.MaxPool2d(3, stride=stride, padding=1),
        )


class GlobalAveragePool(nn.Module):
    """Global mean -> 1x1 conv -> BatchNorm -> ReLU -> bilinear upsampling to the input size."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.project = conv_bn_relu(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.project(x.mean(dim=(2, 3), keepdim=True))
        return pooled.expand(-1, -1, x.shape[2], x.shape[3])


class SkipConnect(nn.Module):
    """Identity, repeating the channels ``out_channels // in_channels`` times."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        if out_channels % in_channels:
            raise ValueError(f"skip_connect cannot map {in_channels} to {out_channels} channels")
        self.factor = out_channels // in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.factor == 1 else x.repeat(1, self.factor, 1, 1)


def build_op(name: str, in_channels: int, out_channels: int, stride: int, units: int) -> nn.Module:
    """Build operation ``name`` mapping ``in_channels`` to ``out_channels``."""
    if name == "sep_conv_3x3":
        return SepConv(in_channels, out_channels, 3, stride, units=units)
    if name == "sep_conv_5x5":
        return SepConv(in_channels, out_channels, 5, stride, units=units)
    if name == "sep_conv_5x5_dil6":
        return SepConv(in_channels, out_channels, 5, stride, dilation=6, units=units)
    if name == "max_pool_3x3":
        return MaxPoolOp(in_channels, out_channels, stride)
    if name == "global_average_pool":
        return GlobalAveragePool(in_channels, out_channels)
    if name == "skip_connect":
        return SkipConnect(in_channels, out_channels)
    raise ValueError(f"unknown operation {name!r}")


class Aggregation(nn.Module):
    """Join two maps: project mismatched channels to max(C0, C1), match sizes, then sum/concat.

    ``shrink`` resizes to the smaller of the two sizes (first floor(N/2) blocks), otherwise to
    the larger one; sizes compare as (height, width) in order, like the released code.
    """

    def __init__(self, kind: str, channels0: int, channels1: int, shrink: bool) -> None:
        super().__init__()
        self.kind = kind
        self.shrink = shrink
        self.channels = max(channels0, channels1)
        self.project0 = (
            conv_bn_relu(channels0, self.channels) if channels0 != self.channels else None
        )
        self.project1 = (
            conv_bn_relu(channels1, self.channels) if channels1 != self.channels else None
        )
        if kind == "sum":
            self.weight0 = nn.Parameter(torch.ones(1, self.channels, 1, 1))
            self.weight1 = nn.Parameter(torch.ones(1, self.channels, 1, 1))
        elif kind == "concat":
            self.fuse = nn.Sequential(
                nn.BatchNorm2d(2 * self.channels),
                nn.ReLU(inplace=True),
                nn.Conv2d(2 * self.channels, self.channels, 1, bias=False),
            )
        else:
            raise ValueError(f"unknown aggregation {kind!r}")

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        if self.project0 is not None:
            x0 = self.project0(x0)
        if self.project1 is not None:
            x1 = self.project1(x1)
        size0, size1 = tuple(x0.shape[-2:]), tuple(x1.shape[-2:])
        if size0 != size1:
            target = size0 if (size0 < size1) == self.shrink else size1
            x0, x1 = resize_to(x0, target), resize_to(x1, target)
        if self.kind == "sum":
            return self.weight0 * x0 + self.weight1 * x1
        return self.fuse(torch.cat([x0, x1], dim=1))
