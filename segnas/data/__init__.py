"""Data: prepared datasets, transforms, the meta split and the stem feature cache."""

from .dataset import SegmentationDataset, read_pair
from .prepare import prepare_dataset, write_prepared
from .prepared import (
    CAMVID_CLASSES,
    CAMVID_PALETTE,
    IGNORE_INDEX,
    PreparedDataset,
    load_prepared,
    pixel_column,
)
from .split import load_split, read_split_info, stable_split, write_split
from .stem_cache import StemCache, StemCacheDataset, build_stem_cache, open_stem_cache
from .synthetic import generate_synthetic
from .transforms import CropParams, EvalTransform, TrainTransform, normalize_image

__all__ = [
    "CAMVID_CLASSES",
    "CAMVID_PALETTE",
    "IGNORE_INDEX",
    "CropParams",
    "EvalTransform",
    "PreparedDataset",
    "SegmentationDataset",
    "StemCache",
    "StemCacheDataset",
    "TrainTransform",
    "build_stem_cache",
    "generate_synthetic",
    "load_prepared",
    "load_split",
    "normalize_image",
    "open_stem_cache",
    "pixel_column",
    "prepare_dataset",
    "read_pair",
    "read_split_info",
    "stable_split",
    "write_prepared",
    "write_split",
]
