"""Training checkpoints: the file format, atomic writes, checked reads and rebuilding the net."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import ArtifactError
from .identity import describe_difference
from .integrity import DamagedArchive, load_torch, non_finite
from .io import save_torch, torch_load_reason
from .model import SegmentationNet, build_model
from .published import resolve_genotype
from .space import Genotype
from .trainconfig import TrainConfig

CHECKPOINT_FORMAT = 1
LAST = "last.pt"
BEST = "best.pt"


@dataclass
class TrainState:
    """What a checkpoint restores besides the weights."""

    epoch: int = 0
    iteration: int = 0
    train_seconds: float = 0.0
    best_miou: float = -1.0
    best_epoch: int = -1
    finished: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


def save_checkpoint(
    path: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    scaler: torch.amp.GradScaler | None,
    meta: dict[str, Any],
    state: TrainState,
) -> None:
    """Atomically write a checkpoint (weights on CPU, optimizer state, meta, progress)."""
    payload = {
        "meta": meta,
        "state": asdict(state),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
    }
    save_torch(path, payload)


WANTED = "pass a training checkpoint such as models/NAME/best.pt"


def _retrain(path: Path) -> str:
    return f"the file is damaged: delete {path.parent} and rerun the train stage to retrain it"


def _what_it_is(payload: object) -> str:
    """A short description of a loaded file that is not a training checkpoint."""
    if not isinstance(payload, dict):
        return f"a {type(payload).__name__}"
    if "space" in payload and "state_dict" in payload:
        return "a search controller checkpoint (search/controller/)"
    if payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        return "a plain state dict of tensors (e.g. the stem weights cache/stem/stem.pt)"
    return f"a mapping with keys {sorted(map(str, payload))[:5]}"


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (zip CRCs checked first, then every weight
    and optimizer tensor checked finite); errors name the file and what it is."""
    path = Path(path)
    if path.is_dir():
        raise ArtifactError(f"{path} is a directory, not a checkpoint file; {WANTED}")
    if not path.is_file():
        raise ArtifactError(f"checkpoint {path} does not exist; run the train stage first")
    try:
        payload = load_torch(path)
    except DamagedArchive as exc:
        raise ArtifactError(f"checkpoint {path}: {exc}; {_retrain(path)}") from exc
    except Exception as exc:  # corrupt or foreign file: torch raises many types
        raise ArtifactError(
            f"checkpoint {path} cannot be read ({torch_load_reason(exc)}); {WANTED}"
        ) from exc
    meta = payload.get("meta") if isinstance(payload, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
        raise ArtifactError(
            f"{path} is {_what_it_is(payload)}, not a segnas training checkpoint (format "
            f"{CHECKPOINT_FORMAT}); {WANTED}"
        )
    bad = non_finite(payload)
    if bad is not None:
        raise ArtifactError(f"checkpoint {path}: tensor {bad} is NaN or infinite; {_retrain(path)}")
    return payload


def check_classes(
    path: str | Path,
    stored: dict[str, Any],
    classes: Sequence[str],
    dataset: str | Path,
    rerun: str,
) -> None:
    """Refuse a checkpoint trained on other classes than ``dataset`` now has (it was prepared
    again with another class list): name both lists and ``rerun``, what to do about it."""
    trained = list(stored.get("classes") or [])
    if not trained:
        trained = [f"class {i}" for i in range(int(stored["num_classes"]))]
    if trained != list(classes):

        def shown(names: Sequence[str]) -> str:
            text = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
            return f"{len(names)} classes ({text})"

        raise ArtifactError(
            f"{path} was trained on {shown(trained)} but the prepared dataset {dataset} now "
            f"has {shown(list(classes))}; {rerun}"
        )


def check_checkpoint(path: Path, payload: dict[str, Any], meta: dict[str, Any]) -> None:
    """Refuse to resume from a checkpoint of another architecture, other classes or other
    params."""
    stored = payload["meta"]
    if "classes" in meta and meta["classes"]:
        check_classes(
            path,
            stored,
            meta["classes"],
            f"data/prepared/{meta['dataset']}" if meta.get("dataset") else "in use",
            f"the dataset was prepared again: delete {path.parent} to train on the new "
            "classes, or prepare the dataset as it was",
        )
    for key, what in (("genotype_hash", "architecture"), ("params_hash", "training params")):
        if stored.get(key) != meta[key]:
            raise ArtifactError(
                f"{path} was written for another {what} ({key} {stored.get(key)} != "
                f"{meta[key]}); delete {path.parent} to start over, or restore the params "
                "it was trained with"
            )


def check_trained_with(
    path: Path,
    meta: dict[str, Any],
    config: TrainConfig,
    dataset: str,
    genotype: Genotype | None,
    params_path: str,
) -> None:
    """Refuse a checkpoint that today's params would not produce: another dataset, other
    weight-deciding ``train`` params (naming the keys) or, when ``genotype`` is given, another
    architecture."""
    stored = {
        "dataset": meta.get("dataset"),
        "architectures": meta.get("genotype_hash"),
        **dict(meta.get("config") or {}),
    }
    current = {
        "dataset": dataset,
        "architectures": genotype.hash if genotype is not None else meta.get("genotype_hash"),
        **config.hashed_fields(),
    }
    found = {key: stored.get(key) for key in current}
    if found == current and meta.get("params_hash") == config.hash:
        return
    why = describe_difference(found, current, str(meta.get("params_hash")), config.hash, "train.")
    raise ArtifactError(
        f"{path} was trained with other params than {params_path} ({why}); evaluating it "
        "would report another model as today's: rerun the train stage first"
    )


def load_trained(
    path: str | Path, device: torch.device | str = "cpu"
) -> tuple[SegmentationNet, dict[str, Any]]:
    """Rebuild the network stored in a training checkpoint; returns (model in eval mode, meta)."""
    payload = load_checkpoint(path)
    meta = payload["meta"]
    config = meta["config"]
    genotype = resolve_genotype(meta["genotype"])
    model = build_model(
        genotype,
        num_classes=meta["num_classes"],
        agg_width=config["agg_width"],
        sep_conv_units=config["sep_conv_units"],
        stem_weights="none",
    )
    if genotype.hash != meta.get("genotype_hash"):
        raise ArtifactError(
            f"{path}: its genotype {meta['genotype']!r} has hash {genotype.hash}, but the "
            f"checkpoint says {meta.get('genotype_hash')}; the file is inconsistent, retrain it"
        )
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise ArtifactError(
            f"{path}: its weights do not fit architecture {genotype.hash} ({first_line}); "
            "the checkpoint holds another architecture's weights, retrain it"
        ) from exc
    info = dict(meta, state=payload["state"])
    return model.to(device).eval(), info
