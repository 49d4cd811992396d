"""Stem feature cache: the stem's 1/4 and 1/8 outputs for fixed pre-cropped samples.

Layout of ``cache/stem/``::

    quarter.npy   float16 (N, 24, h/4, w/4)   stem output after features[3]
    eighth.npy    float16 (N, 32, h/8, w/8)   stem output after features[6]
                  (h/4 means ceil(h/4), the stem's own rounding: 321 -> 81 and 41)
    labels.npy    uint8   (N, h/4, w/4)       labels at 1/4 (label[::4, ::4], 255 = ignore)
    stem.pt       the stem's state dict (so consumers use exactly the cached stem)
    header.json   shapes, dtypes, byte sizes, stem weights hash, crop size, seed,
                  per-sample image id and crop parameters

The arrays are ``.npy`` files opened with ``mmap_mode="r"``: many search workers share the
page cache instead of each loading a copy into RAM.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from ..errors import ArtifactError, ConfigError, DataError, SegnasError
from ..integrity import load_torch, sha256_mismatch
from ..io import atomic_dir, read_json, sha256_file, torch_load_reason, write_json
from ..progress import Progress
from ..stem import STEM_CHANNELS, STEM_STRIDES, MobileNetV2Stem, stem_state_hash
from .dataset import read_pair
from .prepared import PreparedDataset
from .transforms import TrainTransform, normalize_image

HEADER_FILE = "header.json"
STEM_FILE = "stem.pt"
ARRAYS = ("quarter", "eighth", "labels")
CACHE_FORMAT = 1


def stem_output_size(size: int, stride: int) -> int:
    """Spatial size after the stem's stride-2 convs (3x3, padding 1): ceil(size / 2) per conv."""
    while stride > 1:
        size, stride = (size + 1) // 2, stride // 2
    return size


def cache_shapes(num_samples: int, crop_size: tuple[int, int]) -> dict[str, tuple[int, ...]]:
    """Array shapes of a cache of ``num_samples`` crops of ``crop_size`` = (h, w)."""
    (c4, c8), (s4, s8) = STEM_CHANNELS, STEM_STRIDES
    h4, w4 = (stem_output_size(v, s4) for v in crop_size)
    h8, w8 = (stem_output_size(v, s8) for v in crop_size)
    return {
        "quarter": (num_samples, c4, h4, w4),
        "eighth": (num_samples, c8, h8, w8),
        "labels": (num_samples, h4, w4),
    }


ARRAY_DTYPES = {"quarter": "float16", "eighth": "float16", "labels": "uint8"}


def sample_order(ids: Sequence[str], num_samples: int, seed: int) -> list[str]:
    """Image id of each cached sample: seeded permutations of ``ids``, repeated as needed."""
    rng = np.random.default_rng([seed, 1])
    order: list[str] = []
    while len(order) < num_samples:
        order.extend(ids[i] for i in rng.permutation(len(ids)))
    return order[:num_samples]


def build_stem_cache(
    prepared: PreparedDataset,
    ids: Sequence[str],
    out_dir: str | Path,
    stem: nn.Module,
    crop_size: int | tuple[int, int],
    num_samples: int,
    seed: int,
    scale_range: tuple[float, float] = (0.5, 2.0),
    flip: bool = True,
    stem_weights: str = "",
    batch_size: int = 16,
    progress: bool = True,
) -> StemCache:
    """Crop ``num_samples`` samples from ``ids``, run ``stem`` once, store its outputs.

    Sample ``i`` is a :class:`TrainTransform` crop (seed ``seed``, epoch 0, index ``i``) of
    ``sample_order(ids, num_samples, seed)[i]``. Written into a temporary directory next to
    ``out_dir`` and renamed at the end, so an interrupted run leaves no partial cache.
    """
    transform = TrainTransform(crop_size, scale_range, flip, seed)
    _check_request(transform.crop_size, num_samples, ids)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    order = sample_order(list(ids), num_samples, seed)
    shapes = cache_shapes(num_samples, transform.crop_size)
    with atomic_dir(out_dir) as tmp:
        stem = stem.eval()
        samples = _write_arrays(tmp, shapes, prepared, order, transform, stem, batch_size, progress)
        header = {
            "format": CACHE_FORMAT,
            "dataset": str(prepared.root),
            "num_classes": prepared.num_classes,
            "stem_hash": stem_state_hash(stem),
            "stem_weights": stem_weights,
            "stem_file": STEM_FILE,
            "crop_size": list(transform.crop_size),
            "scale_range": list(transform.scale_range),
            "flip": transform.flip,
            "crop_seed": int(seed),
            "num_samples": num_samples,
            "ids": order,
            "samples": samples,
            "arrays": _array_entries(tmp, shapes),
        }
        torch.save(stem.state_dict(), tmp / STEM_FILE)
        write_json(tmp / HEADER_FILE, header)
    return open_stem_cache(out_dir)


def _check_request(crop: tuple[int, int], num_samples: int, ids: Sequence[str]) -> None:
    """Refuse a crop smaller than the stem's coarsest stride, no samples, or no images."""
    if min(crop) < STEM_STRIDES[1]:
        raise ConfigError(f"cache_stem.crop_size {list(crop)} must be at least 8x8")
    if num_samples < 1:
        raise ConfigError(f"cache_stem.num_samples must be >= 1, got {num_samples}")
    if not ids:
        raise DataError("cache_stem: the list of meta-train ids is empty")


def _write_arrays(
    tmp: Path,
    shapes: dict[str, tuple[int, ...]],
    prepared: PreparedDataset,
    order: list[str],
    transform: TrainTransform,
    stem: nn.Module,
    batch_size: int,
    progress: bool,
) -> list[dict]:
    """Fill the arrays under ``tmp`` batch by batch (crop ``i`` of image ``order[i]``, the
    stem's outputs and the labels at 1/4) and flush them; each sample's id and crop."""
    arrays = {name: _allocate(tmp / f"{name}.npy", name, shapes[name]) for name in ARRAYS}
    num_samples = len(order)
    samples = []
    bar = Progress("cache_stem", num_samples) if progress else None
    for start in range(0, num_samples, batch_size):
        stop = min(start + batch_size, num_samples)
        images = []
        for i in range(start, stop):
            image, label = read_pair(prepared, order[i])
            params = transform.sample_params(image.height, image.width, i)
            out_img, out_lab = transform.apply(image, label, params)
            images.append(normalize_image(out_img))
            arrays["labels"][i] = out_lab[:: STEM_STRIDES[0], :: STEM_STRIDES[0]]
            samples.append({"id": order[i], **params.to_dict()})
        with torch.no_grad():
            quarter, eighth = stem(torch.stack(images))
        arrays["quarter"][start:stop] = quarter.numpy().astype(np.float16)
        arrays["eighth"][start:stop] = eighth.numpy().astype(np.float16)
        if bar:
            bar.update(stop - start)
    for array in arrays.values():
        array.flush()
    return samples


def _array_entries(tmp: Path, shapes: dict[str, tuple[int, ...]]) -> dict[str, dict]:
    """The header's entry per array file under ``tmp``: file, shape, dtype, bytes, sha256."""
    return {
        name: {
            "file": f"{name}.npy",
            "shape": list(shapes[name]),
            "dtype": ARRAY_DTYPES[name],
            "bytes": (tmp / f"{name}.npy").stat().st_size,
            "sha256": sha256_file(tmp / f"{name}.npy"),
        }
        for name in ARRAYS
    }


def _allocate(path: Path, name: str, shape: tuple[int, ...]) -> np.memmap:
    """A zeroed ``.npy`` memory map whose disk blocks are reserved up front.

    Without the reservation a full disk would only show when the mapped pages are flushed,
    as a SIGBUS crash instead of an error naming the file.
    """
    array = np.lib.format.open_memmap(path, mode="w+", dtype=ARRAY_DTYPES[name], shape=shape)
    if hasattr(os, "posix_fallocate"):  # not on macOS
        with open(path, "rb+") as handle:
            os.posix_fallocate(handle.fileno(), 0, path.stat().st_size)
    return array


@dataclass
class StemCache:
    """An opened stem cache; arrays are read-only memory maps."""

    root: Path
    header: dict
    quarter: np.ndarray
    eighth: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.header["num_samples"])

    @property
    def ids(self) -> list[str]:
        return list(self.header["ids"])

    @property
    def stem_hash(self) -> str:
        return str(self.header["stem_hash"])

    @property
    def crop_size(self) -> tuple[int, int]:
        return tuple(self.header["crop_size"])

    def load_stem(self) -> MobileNetV2Stem:
        """The stem (eval mode) whose outputs were cached, checked against the header hash."""
        path = self.root / STEM_FILE
        try:
            state = load_torch(path)
            stem = MobileNetV2Stem()
            stem.load_state_dict(state)
        except FileNotFoundError:
            raise ArtifactError(f"{path} is missing; rerun the cache_stem stage") from None
        except Exception as exc:  # foreign pickles, damaged zips: torch raises many types
            raise ArtifactError(
                f"{path} is not a stem state dict ({torch_load_reason(exc)}); rerun cache_stem"
            ) from exc
        found = stem_state_hash(stem)
        if found != self.stem_hash:
            raise _mismatch(path, "stem hash", found, self.stem_hash)
        return stem.eval()

    def batch(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(quarter float32, eighth float32, labels int64) for ``indices``, stacked."""
        index = np.asarray(indices, dtype=np.int64)
        return (
            torch.from_numpy(self.quarter[index].astype(np.float32)),
            torch.from_numpy(self.eighth[index].astype(np.float32)),
            torch.from_numpy(self.labels[index].astype(np.int64)),
        )


def _mismatch(path: Path, field: str, found: object, expected: object) -> ArtifactError:
    return ArtifactError(
        f"{path}: {field} is {found!r} but {expected!r} was expected; "
        "the stem cache is stale or damaged, rerun the cache_stem stage"
    )


def open_stem_cache(out_dir: str | Path, expected: dict | None = None) -> StemCache:
    """Open and verify a stem cache.

    Checks every array's shape, dtype and SHA-256 against ``header.json`` (each file version is
    hashed once per process: ``segnas.integrity.sha256_mismatch``), and every ``expected``
    header field (e.g. ``{"stem_hash": ..., "crop_size": [h, w]}``). Raises
    :class:`ArtifactError` naming the file and the mismatching field.
    """
    root = Path(out_dir)
    header_path = root / HEADER_FILE
    if not header_path.is_file():
        raise ArtifactError(f"{header_path} does not exist; run the cache_stem stage first")
    try:
        header = read_json(header_path)
        arrays_info = dict(header["arrays"])
        num_samples, crop_size = int(header["num_samples"]), tuple(header["crop_size"])
    except (SegnasError, KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{header_path} is unreadable ({exc}); rerun cache_stem") from exc
    if header.get("format") != CACHE_FORMAT:
        raise _mismatch(header_path, "format", header.get("format"), CACHE_FORMAT)
    for field, value in (expected or {}).items():
        found = header.get(field)
        if isinstance(value, tuple):
            value = list(value)
        if found != value:
            raise _mismatch(header_path, field, found, value)
    expected_shapes = cache_shapes(num_samples, crop_size)
    opened = {}
    for name in ARRAYS:
        info = arrays_info.get(name, {})
        path = root / f"{name}.npy"
        if list(info.get("shape", [])) != list(expected_shapes[name]):
            raise _mismatch(
                header_path, f"arrays.{name}.shape", info.get("shape"), list(expected_shapes[name])
            )
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise ArtifactError(f"{path} is missing; rerun the cache_stem stage") from None
        except (ValueError, OSError) as exc:
            raise ArtifactError(
                f"{path} is truncated or corrupt ({exc}); rerun cache_stem"
            ) from exc
        if list(array.shape) != list(expected_shapes[name]):
            raise _mismatch(path, "shape", list(array.shape), list(expected_shapes[name]))
        for dtype, source in ((ARRAY_DTYPES[name], path), (info.get("dtype"), header_path)):
            if str(array.dtype) != dtype:
                raise _mismatch(source, f"dtype of {name}", str(array.dtype), dtype)
        if path.stat().st_size != info.get("bytes"):
            raise _mismatch(path, "bytes", path.stat().st_size, info.get("bytes"))
        found = sha256_mismatch(path, str(info.get("sha256")))
        if found is not None:
            raise _mismatch(path, "sha256", found, info.get("sha256"))
        opened[name] = array
    return StemCache(root, header, opened["quarter"], opened["eighth"], opened["labels"])


class StemCacheDataset(Dataset):
    """Items ``(quarter float32 (24, h/4, w/4), eighth float32 (32, h/8, w/8), label int64)``."""

    def __init__(self, cache: StemCache) -> None:
        self.cache = cache

    def __len__(self) -> int:
        return len(self.cache)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (
            torch.from_numpy(self.cache.quarter[index].astype(np.float32)),
            torch.from_numpy(self.cache.eighth[index].astype(np.float32)),
            torch.from_numpy(self.cache.labels[index].astype(np.int64)),
        )
