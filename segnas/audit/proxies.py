"""Training-free ("zero-cost") proxies of a decoder's quality, computed at initialisation on one
batch of cached stem features: the baselines a trained reward must beat.

- ``jacov``: the Jacobian-covariance score of "Neural Architecture Search without Training"
  (Mellor et al., ICML 2021): how differently the network's input gradients vary across the
  inputs of a batch (higher = more distinct, taken as better).
- ``synflow``: the synaptic-flow saliency (Tanaka et al., NeurIPS 2020) summed over the
  parameters: data-free, an all-ones input through the network with absolute weights.
- ``snip``: the connection sensitivity (Lee et al., ICLR 2019) summed over the parameters:
  |weight x gradient of the loss| on a labelled batch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
from torch import nn

from ..loss import segmentation_loss

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""Cached stem features at 1/4 and 1/8 resolution and the labels at 1/4."""


def jacov(decoder: nn.Module, batch: Batch, eps: float = 1e-5) -> float:
    """-sum(log(l + eps) + 1 / (l + eps)) over the eigenvalues ``l`` of the correlation matrix
    of the per-input gradients of the summed logits with respect to the inputs."""
    quarter, eighth, _ = batch
    decoder = copy.deepcopy(decoder).train()
    quarter = quarter.detach().clone().float().requires_grad_(True)
    eighth = eighth.detach().clone().float().requires_grad_(True)
    decoder(quarter, eighth).sum().backward()
    # a decoder that never reads one of the inputs leaves its gradient empty: zero
    grads = [x.grad if x.grad is not None else torch.zeros_like(x) for x in (quarter, eighth)]
    jacobians = torch.cat([g.flatten(1) for g in grads], dim=1).double()
    correlation = torch.corrcoef(jacobians)
    correlation = torch.nan_to_num(correlation, nan=0.0)
    eigenvalues = torch.linalg.eigvalsh(correlation).clamp(min=0.0)
    return float(-torch.sum(torch.log(eigenvalues + eps) + 1.0 / (eigenvalues + eps)))


def synflow(decoder: nn.Module, batch: Batch) -> float:
    """sum |w x dR/dw| where R is the summed output of the network with |w| for every weight
    and BatchNorm in evaluation mode, fed all-ones inputs (in float64 against overflow)."""
    quarter, eighth, _ = batch
    decoder = copy.deepcopy(decoder).double().eval()
    with torch.no_grad():
        for parameter in decoder.parameters():
            parameter.abs_()
    ones_quarter = torch.ones_like(quarter[:1], dtype=torch.float64)
    ones_eighth = torch.ones_like(eighth[:1], dtype=torch.float64)
    decoder(ones_quarter, ones_eighth).sum().backward()
    return _saliency(decoder)


def snip(decoder: nn.Module, batch: Batch) -> float:
    """sum |w x dL/dw| for the segmentation loss L on the batch."""
    quarter, eighth, labels = batch
    decoder = copy.deepcopy(decoder).train()
    logits = decoder(quarter.float(), eighth.float())
    segmentation_loss(logits, labels.long()).backward()
    return _saliency(decoder)


def _saliency(module: nn.Module) -> float:
    total = 0.0
    for parameter in module.parameters():
        if parameter.grad is not None:
            total += float((parameter.detach() * parameter.grad).abs().sum())
    return total


PROXIES: dict[str, Callable[[nn.Module, Batch], float]] = {
    "jacov": jacov,
    "synflow": synflow,
    "snip": snip,
}
"""Every proxy by name: ``proxy(decoder, batch) -> score`` (higher is taken as better)."""


def score_proxies(decoder: nn.Module, batch: Batch) -> dict[str, float]:
    """Every proxy of ``decoder`` (left unchanged) on ``batch``, deterministically."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return {name: proxy(decoder, batch) for name, proxy in PROXIES.items()}
