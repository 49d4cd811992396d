"""The ``prepare`` stage: any source -> ``data/prepared/<dataset>/`` (images, labels, index).

Error policy: with ``on_bad_file: error`` (the default) the first bad file (missing label,
size mismatch, label value outside the class set, unreadable or truncated image) stops the
stage with an error naming it. With ``on_bad_file: skip`` such files are left out and listed
under ``skipped`` in ``summary.json`` with the reason. A missing root or split directory, an
empty split (also after skipping) and duplicate ids always stop the stage. Output is written
into a temporary directory next to the target and renamed at the end, so a failed run
leaves nothing behind (and keeps any previous output intact).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from ..config import dataset_spec
from ..errors import ConfigError, DataError
from ..io import (
    atomic_dir,
    remove_stale_temps,
    temp_dir,
    write_error,
    write_json,
)
from ..progress import Progress
from .camvid import camvid_source
from .cityscapes import cityscapes_source
from .folder import folder_source
from .prepared import IGNORE_INDEX, INDEX_FILE, SPLITS, SUMMARY_FILE, pixel_column
from .source import INVALID, Pair, Source
from .synthetic import generate_synthetic

ON_BAD_FILE = ("error", "skip")
# Pillow modes of 16-bit and float samples: ``convert("RGB")`` would clip them to 255.
HIGH_DEPTH_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
PNG_COMPRESS_LEVEL = 3


def _read_image(path: Path, what: str, decode: bool = True) -> Image.Image:
    """Open ``path``; decode it, or (``decode=False``) only check its structure and CRCs."""
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist")
    try:
        image = Image.open(path)
        if decode or image.format != "PNG":
            image.load()
        else:
            image.verify()
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{what} {path} is unreadable, truncated or corrupt ({exc})") from exc
    return image


def _resized_size(height: int, width: int, longer_side: int | None) -> tuple[int, int]:
    if not longer_side or max(height, width) == longer_side:
        return height, width
    scale = longer_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def prepare_pair(pair: Pair, source: Source, out_root: Path, longer_side: int | None) -> dict:
    """Check, remap (and resize) one pair into ``out_root``; return its index row."""
    image = _read_image(pair.image, "image", decode=False)
    if image.mode in HIGH_DEPTH_MODES:
        raise DataError(
            f"image {pair.image} has mode {image.mode} (16-bit or float samples), which "
            "converting to 8-bit would clip; save it as 8-bit RGB or grey (scaled to 0-255)"
        )
    if not pair.label.is_file():
        raise DataError(f"image {pair.image} has no label: {pair.label} does not exist")
    label = _read_image(pair.label, "label")
    if label.mode not in ("L", "P"):
        raise DataError(
            f"label {pair.label} has mode {label.mode}; labels must be single-channel "
            "(8-bit grey or palette) PNGs of class values"
        )
    if image.size != label.size:
        raise DataError(
            f"size mismatch: image {pair.image} is {image.width}x{image.height} but label "
            f"{pair.label} is {label.width}x{label.height}"
        )
    raw = np.asarray(label)
    mapped = source.lut[raw]
    if (mapped == INVALID).any():
        bad = sorted(int(v) for v in np.unique(raw[mapped == INVALID]))
        raise DataError(
            f"label {pair.label} has values {bad[:10]} outside the class set "
            f"(allowed: {source.label_values})"
        )
    mapped = mapped.astype(np.uint8)
    height, width = _resized_size(image.height, image.width, longer_side)
    image_rel = Path("images") / pair.split / f"{pair.id}.png"
    label_rel = Path("labels") / pair.split / f"{pair.id}.png"
    (out_root / image_rel).parent.mkdir(parents=True, exist_ok=True)
    (out_root / label_rel).parent.mkdir(parents=True, exist_ok=True)
    if (height, width) != (image.height, image.width):
        image = (
            _read_image(pair.image, "image").convert("RGB").resize((width, height), Image.BILINEAR)
        )
        mapped = np.asarray(Image.fromarray(mapped).resize((width, height), Image.NEAREST))
        image.save(out_root / image_rel, compress_level=PNG_COMPRESS_LEVEL)
    elif image.format == "PNG" and image.mode == "RGB":
        shutil.copyfile(pair.image, out_root / image_rel)
    else:
        _read_image(pair.image, "image").convert("RGB").save(
            out_root / image_rel, compress_level=PNG_COMPRESS_LEVEL
        )
    Image.fromarray(mapped).save(out_root / label_rel, compress_level=PNG_COMPRESS_LEVEL)
    counts = np.bincount(mapped.ravel(), minlength=256)
    row = {
        "id": pair.id,
        "split": pair.split,
        "image": image_rel.as_posix(),
        "label": label_rel.as_posix(),
        "height": height,
        "width": width,
    }
    row.update({pixel_column(c): int(counts[i]) for i, c in enumerate(source.classes)})
    row["pixels_ignore"] = int(counts[IGNORE_INDEX])
    return row


def _summary(source: Source, index: pd.DataFrame, skipped: list[dict], spec: dict) -> dict:
    splits = [s for s in SPLITS if s in set(index["split"])]
    splits += sorted(set(index["split"]) - set(splits))
    class_pixels, frequencies, ignore_pixels = {}, {}, {}
    for split in splits:
        rows = index[index["split"] == split]
        pixels = {c: int(rows[pixel_column(c)].sum()) for c in source.classes}
        labelled = sum(pixels.values())
        class_pixels[split] = pixels
        frequencies[split] = {c: (n / labelled if labelled else 0.0) for c, n in pixels.items()}
        ignore_pixels[split] = int(rows["pixels_ignore"].sum())
    return {
        "source": spec.get("source"),
        "source_root": spec.get("root"),
        "longer_side": spec.get("longer_side"),
        "classes": source.classes,
        "num_classes": len(source.classes),
        "ignore_index": IGNORE_INDEX,
        "palette": [list(c) for c in source.palette],
        "counts": {s: int((index["split"] == s).sum()) for s in splits},
        "class_pixels": class_pixels,
        "ignore_pixels": ignore_pixels,
        "class_frequencies": frequencies,
        "skipped": skipped,
    }


def _check_class_pixels(source: Source, summary: dict, spec: Mapping[str, Any]) -> None:
    """Warn on a class with 0 pixels in a split; refuse a folder dataset where a class has no
    pixel anywhere but the ignore value has some (the mark of 0/255 binary masks)."""
    for split, pixels in summary["class_pixels"].items():
        empty = [c for c, n in pixels.items() if n == 0]
        if empty:
            names = ", ".join(map(repr, empty))
            verb = "class {} has" if len(empty) == 1 else "classes {} have"
            sys.stderr.write(
                f"prepare {source.name}: warning: {verb.format(names)} 0 pixels in split "
                f"{split!r}\n"
            )
    ignored = sum(summary["ignore_pixels"].values())
    if spec.get("source") != "folder" or not ignored:
        return
    for value, name in enumerate(source.classes):
        if not any(pixels[name] for pixels in summary["class_pixels"].values()):
            raise DataError(
                f"{source.root}: class {name!r} (mask value {value}) has no pixel in any split "
                f"while {ignored} pixels have the ignore value (classes.yaml ignore_index, "
                "default 255); masks saved as 0/255? Save class i as mask value i, or set "
                "ignore_index to a value the masks do not use"
            )


def write_prepared(
    source: Source,
    out_dir: str | Path,
    longer_side: int | None = None,
    on_bad_file: str = "error",
    spec: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> dict:
    """Write ``source`` as a prepared dataset at ``out_dir``; return the summary."""
    if on_bad_file not in ON_BAD_FILE:
        raise ConfigError(f"on_bad_file must be one of {ON_BAD_FILE}, got {on_bad_file!r}")
    ids = [p.id for p in source.pairs]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise DataError(f"{source.root}: image ids {dupes} occur more than once across splits")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    with atomic_dir(out_dir) as tmp:
        rows, skipped = [], []
        bar = Progress(f"prepare {out_dir.name}", len(source.pairs)) if progress else None
        for pair in source.pairs:
            try:
                rows.append(prepare_pair(pair, source, tmp, longer_side))
            except DataError as exc:
                if on_bad_file == "error":
                    raise
                skipped.append({"split": pair.split, "id": pair.id, "reason": str(exc)})
            if bar:
                bar.update()
        present = {p.split for p in source.pairs}
        for split in sorted(present):
            if not any(r["split"] == split for r in rows):
                raise DataError(
                    f"{source.root}: split {split!r} has no usable images "
                    f"({sum(s['split'] == split for s in skipped)} skipped as bad)"
                )
        index = pd.DataFrame(rows)
        summary = _summary(source, index, skipped, dict(spec or {}))
        _check_class_pixels(source, summary, spec or {})
        index.to_csv(tmp / INDEX_FILE, index=False)
        write_json(tmp / SUMMARY_FILE, summary)
    return summary


def prepare_dataset(
    name: str, spec: Mapping[str, Any], out_dir: str | Path, seed: int = 0, progress: bool = True
) -> dict:
    """Prepare dataset ``name`` described by ``spec`` (one entry of ``datasets``) at ``out_dir``."""
    values = dataset_spec(name, spec)
    kind = values["source"]
    longer_side = values["longer_side"]
    on_bad_file = values["on_bad_file"]
    if kind == "synthetic":
        out_dir = Path(out_dir)
        raw_dir = out_dir.parent / f"{out_dir.name}-raw"
        remove_stale_temps(raw_dir)
        raw = temp_dir(raw_dir)
        try:
            try:
                generate_synthetic(
                    raw,
                    values["num_images"],
                    tuple(values["image_size"]),
                    int(values.get("seed", seed)),
                )
            except OSError as exc:
                raise write_error(exc, raw_dir) from exc
            source = camvid_source(raw, tuple(values["num_images"]), name)
            return write_prepared(source, out_dir, longer_side, on_bad_file, spec, progress)
        finally:
            shutil.rmtree(raw, ignore_errors=True)
    if kind in ("camvid", "cityscapes"):
        make_source = camvid_source if kind == "camvid" else cityscapes_source
        source = make_source(values["root"], tuple(values["splits"]), name)
    else:
        source = folder_source(
            values["root"], values["val_fraction"], values["test_fraction"], seed, name
        )
    return write_prepared(source, out_dir, longer_side, on_bad_file, spec, progress)
