"""MobileNet-v2 stem: torchvision's ``mobilenet_v2().features[:7]`` with two outputs.

Outputs: 1/4 resolution with 24 channels (after ``features[3]``) and 1/8 resolution with
32 channels (after ``features[6]``).
"""

from __future__ import annotations

import urllib.error
from pathlib import Path

import torch
from torch import nn

from .errors import ConfigError
from .integrity import load_torch
from .io import torch_load_reason

STEM_CHANNELS = (24, 32)
STEM_STRIDES = (4, 8)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class MobileNetV2Stem(nn.Module):
    """The first seven MobileNet-v2 feature blocks, returning the 1/4 and 1/8 outputs."""

    def __init__(self) -> None:
        super().__init__()
        # torchvision is imported where it is used: importing it takes seconds, which every
        # process of a fanned-out stage would pay even when it builds no network
        from torchvision.models import mobilenet_v2

        features = mobilenet_v2(weights=None).features
        self.to_quarter = nn.Sequential(*features[:4])
        self.to_eighth = nn.Sequential(*features[4:7])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        quarter = self.to_quarter(x)
        return quarter, self.to_eighth(quarter)


def _imagenet_state_dict() -> dict[str, torch.Tensor]:
    from torchvision.models import MobileNet_V2_Weights

    weights = MobileNet_V2_Weights.IMAGENET1K_V1
    try:
        return weights.get_state_dict(progress=False)
    except (urllib.error.URLError, OSError) as exc:
        raise ConfigError(
            "stem.weights: imagenet needs torchvision's MobileNet-v2 ImageNet weights "
            f"({weights.url}) but they are not in the torch hub cache and could not be "
            f"downloaded ({exc}). Either connect to the internet once, or download that "
            "file into $TORCH_HOME/hub/checkpoints/ (default ~/.cache/torch), "
            "or set stem.weights: none (random init) or a path to a state dict."
        ) from exc


def _stem_state_from_mobilenet(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keep the ``features.0-6`` entries of a full MobileNet-v2 state dict, renamed."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] != "features" or int(parts[1]) > 6:
            continue
        index = int(parts[1])
        prefix = "to_quarter" if index < 4 else "to_eighth"
        local = index if index < 4 else index - 4
        out[".".join([prefix, str(local), *parts[2:]])] = value
    return out


def load_stem_state(stem: MobileNetV2Stem, weights: str) -> None:
    """Fill ``stem`` from ``weights``: ``imagenet``, ``none`` or a path to a state dict.

    A path may hold a stem state dict or a full MobileNet-v2 state dict; it is loaded with
    ``weights_only=True`` (no arbitrary pickles).
    """
    if weights == "none":
        return
    if weights == "imagenet":
        state = _stem_state_from_mobilenet(_imagenet_state_dict())
    else:
        path = Path(weights)
        if not path.is_file():
            raise ConfigError(
                f"stem.weights: {weights!r} is neither 'imagenet', 'none' nor an existing file"
            )
        try:
            state = load_torch(path)
        except Exception as exc:  # a foreign pickle or a damaged file: torch raises many types
            raise ConfigError(
                f"stem.weights: {weights!r} cannot be loaded safely as a state dict "
                f"({torch_load_reason(exc)}); "
                "only plain tensor state dicts are accepted (torch.load weights_only=True)"
            ) from exc
        if not isinstance(state, dict):
            raise ConfigError(
                f"stem.weights: {weights!r} holds a {type(state).__name__}, not a state dict"
            )
        if any(k.startswith("features.") for k in state):
            state = _stem_state_from_mobilenet(state)
    missing, unexpected = stem.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ConfigError(
            f"stem.weights: {weights!r} does not fit the MobileNet-v2 stem "
            f"(missing {missing[:3]}..., unexpected {unexpected[:3]}...)"
        )


def build_stem(weights: str = "none") -> MobileNetV2Stem:
    """Build the stem and load ``weights`` (``imagenet`` | ``none`` | path)."""
    stem = MobileNetV2Stem()
    load_stem_state(stem, weights)
    return stem


def stem_state_hash(stem: nn.Module) -> str:
    """SHA-256 (16 hex digits) of the stem's parameters and buffers, in state-dict order."""
    import hashlib

    digest = hashlib.sha256()
    for key, value in stem.state_dict().items():
        digest.update(key.encode("utf-8"))
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
