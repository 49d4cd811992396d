"""Procedural road scenes with CamVid's 11 classes, written in the CamVid layout.

Each image is drawn from ``numpy.random.default_rng([seed, split_number, index])``: a
perspective road with lane marks, pavements, a building skyline with windows, trees,
fences, poles with signs, cars, pedestrians and cyclists, plus a few void patches (11).
Class colours are jittered per image and textured, and the whole image gets lighting
changes and pixel noise, so segmenting it is learnable but not trivial. PNG files written
by the same Pillow/zlib are bit-identical for the same seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ConfigError
from .camvid import CAMVID_VOID

SKY, BUILDING, POLE, ROAD, PAVEMENT, TREE, SIGN, FENCE, CAR, PEDESTRIAN, BICYCLIST = range(11)
SPLIT_NUMBERS = {"train": 0, "val": 1, "test": 2}

# Base colours (RGB) per class; jittered per image. Void uses random colours.
_BASE_COLOURS = np.array(
    [
        [135, 180, 225],  # sky
        [150, 110, 90],  # building
        [110, 110, 115],  # pole
        [90, 90, 95],  # road
        [165, 150, 140],  # pavement
        [60, 120, 50],  # tree
        [200, 60, 40],  # sign
        [125, 100, 70],  # fence
        [40, 60, 150],  # car
        [150, 60, 110],  # pedestrian
        [200, 170, 40],  # bicyclist
    ],
    dtype=np.float32,
)


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: a coarse random grid upsampled bilinearly."""
    grid = rng.uniform(-1, 1, (cells + 1, cells + 1)).astype(np.float32)
    image = Image.fromarray(grid, mode="F").resize((width, height), Image.BILINEAR)
    return np.asarray(image, dtype=np.float32)


def _ellipse(yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, ry: float, rx: float):
    return ((yy - cy) / max(ry, 0.5)) ** 2 + ((xx - cx) / max(rx, 0.5)) ** 2 <= 1.0


def _box(yy: np.ndarray, xx: np.ndarray, top: float, bottom: float, left: float, right: float):
    return (yy >= top) & (yy < bottom) & (xx >= left) & (xx < right)


@dataclass
class _Scene:
    """A scene's layout while it is drawn: pixel grids, the horizon, the vanishing point, the
    road's and pavement's widths, and the labels so far."""

    yy: np.ndarray
    xx: np.ndarray
    height: int
    width: int
    horizon: float
    vanish_x: float
    road_coef: float
    walk_coef: float
    label: np.ndarray

    def ground_y(self, t: float) -> float:
        return self.horizon + t * (self.height - self.horizon)


def _ground_and_buildings(rng: np.random.Generator, height: int, width: int) -> _Scene:
    """Sky, a building skyline (blocks of random width and height, some gaps), pavement, road."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    label = np.full((height, width), SKY, dtype=np.uint8)
    horizon = height * rng.uniform(0.35, 0.5)
    vanish_x = width * rng.uniform(0.35, 0.65)
    depth = np.clip((yy - horizon) / (height - horizon), 0, None)  # 0 at horizon, 1 at bottom
    road_coef, walk_coef = rng.uniform(0.35, 0.6), rng.uniform(1.3, 1.7)
    road_half = depth * width * road_coef
    walk_half = road_half * walk_coef
    ground = yy >= horizon
    tops = np.empty(width, dtype=np.float32)
    x = 0
    while x < width:
        block = int(rng.integers(max(4, width // 12), max(6, width // 4)))
        tops[x : x + block] = horizon - height * rng.uniform(0.05, 0.35)
        if rng.random() < 0.15:
            tops[x : x + block] = height  # a gap: sky shows through
        x += block
    building = (yy >= tops[None, :]) & ~(ground & (np.abs(xx - vanish_x) < walk_half))
    label[building] = BUILDING
    label[ground & (np.abs(xx - vanish_x) < walk_half)] = PAVEMENT
    label[ground & (np.abs(xx - vanish_x) < road_half)] = ROAD
    return _Scene(yy, xx, height, width, horizon, vanish_x, road_coef, walk_coef, label)


def _fence(rng: np.random.Generator, scene: _Scene) -> None:
    """Sometimes a fence on one side, standing on the outer edge of the pavement."""
    if rng.random() < 0.6:
        side = rng.choice([-1.0, 1.0])
        offset = (scene.xx - scene.vanish_x) * side
        reach = scene.width * scene.road_coef * scene.walk_coef
        edge_y = scene.horizon + offset / reach * (scene.height - scene.horizon)
        fence_h = 2 + 0.2 * (edge_y - scene.horizon)
        fence = (offset > 0) & (scene.yy < edge_y) & (scene.yy >= edge_y - fence_h)
        scene.label[fence & (scene.label == BUILDING)] = FENCE


def _trees(rng: np.random.Generator, scene: _Scene) -> None:
    """Noisy blobs around the skyline."""
    height, width, yy, xx = scene.height, scene.width, scene.yy, scene.xx
    for _ in range(int(rng.integers(1, 5))):
        cx, cy = rng.uniform(0, width), scene.horizon - rng.uniform(0, 0.25) * height
        r = rng.uniform(0.06, 0.16) * height
        wobble = 1 + 0.25 * _smooth_noise(rng, height, width, 6)
        blob = ((yy - cy) ** 2 + (xx - cx) ** 2) <= (r * wobble) ** 2
        scene.label[blob & (scene.label != ROAD)] = TREE


def _poles(rng: np.random.Generator, scene: _Scene) -> None:
    """Poles with signs on the pavement."""
    yy, xx = scene.yy, scene.xx
    for _ in range(int(rng.integers(0, 4))):
        t = rng.uniform(0.1, 0.7)
        base_y = scene.ground_y(t)
        side = rng.choice([-1.0, 1.0])
        half = t * scene.width * 0.45
        px = scene.vanish_x + side * half * rng.uniform(1.05, 1.3)
        pole_w = max(1.0, 1 + 3 * t)
        pole_h = (0.25 + 0.6 * t) * scene.height
        scene.label[_box(yy, xx, base_y - pole_h, base_y, px - pole_w / 2, px + pole_w / 2)] = POLE
        if rng.random() < 0.7:
            s = 2 + 8 * t
            scene.label[_box(yy, xx, base_y - pole_h, base_y - pole_h + s, px - s, px + s)] = SIGN


def _road_user(rng: np.random.Generator, scene: _Scene, cls: int, t: float) -> None:
    """A car on the road, or a pedestrian or bicyclist beside it, ``t`` of the way down."""
    yy, xx = scene.yy, scene.xx
    base_y = scene.ground_y(t)
    scale = t * scene.height
    if cls == CAR:
        cx = scene.vanish_x + rng.uniform(-0.8, 0.8) * t * scene.width * 0.45
        w, h = scale * rng.uniform(0.5, 0.8), scale * rng.uniform(0.3, 0.45)
        body = _box(yy, xx, base_y - h * 0.6, base_y, cx - w / 2, cx + w / 2)
        cabin = _box(yy, xx, base_y - h, base_y - h * 0.55, cx - w * 0.35, cx + w * 0.35)
        scene.label[body | cabin] = CAR
        return
    side = rng.choice([-1.0, 1.0])
    factor = rng.uniform(1.05, 1.35) if cls == PEDESTRIAN else rng.uniform(0.7, 0.95)
    cx = scene.vanish_x + side * t * scene.width * 0.45 * factor
    h = scale * 0.35
    body = _ellipse(yy, xx, base_y - h * 0.55, cx, h * 0.4, h * 0.12)
    head = _ellipse(yy, xx, base_y - h * 1.02, cx, h * 0.1, h * 0.08)
    shape = body | head
    if cls == BICYCLIST:
        wheel = h * 0.2
        shape |= _ellipse(yy, xx, base_y - wheel, cx - wheel * 1.3, wheel, wheel)
        shape |= _ellipse(yy, xx, base_y - wheel, cx + wheel * 1.3, wheel, wheel)
    scene.label[shape] = cls


def render_scene(
    rng: np.random.Generator, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (uint8 RGB (H, W, 3), uint8 labels (H, W) with CamVid values 0-11)."""
    scene = _ground_and_buildings(rng, height, width)
    _fence(rng, scene)
    _trees(rng, scene)
    _poles(rng, scene)
    # Objects on the road and pavement, far ones first so near ones occlude them.
    objects = []
    for cls, count in (
        (CAR, rng.integers(0, 4)),
        (PEDESTRIAN, rng.integers(0, 4)),
        (BICYCLIST, rng.integers(0, 3)),
    ):
        objects += [(cls, rng.uniform(0.1, 0.95)) for _ in range(int(count))]
    for cls, t in sorted(objects, key=lambda o: o[1]):
        _road_user(rng, scene, cls, t)
    # A few void patches (unlabelled in CamVid).
    for _ in range(int(rng.integers(0, 3))):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ellipse = _ellipse(scene.yy, scene.xx, cy, cx, rng.uniform(2, 6), rng.uniform(2, 8))
        scene.label[ellipse] = CAMVID_VOID
    label = scene.label
    return _paint(rng, label, scene.yy, scene.xx, scene.horizon, scene.vanish_x), label


def _paint(
    rng: np.random.Generator,
    label: np.ndarray,
    yy: np.ndarray,
    xx: np.ndarray,
    horizon: float,
    vanish_x: float,
) -> np.ndarray:
    """Colour the label map: jittered class colours, per-class textures, light and noise."""
    height, width = label.shape
    colours = np.clip(_BASE_COLOURS + rng.normal(0, 25, _BASE_COLOURS.shape), 0, 255)
    void_colours = rng.uniform(0, 255, (1, 3))
    palette = np.concatenate([colours, void_colours]).astype(np.float32)
    image = palette[label]
    texture = np.zeros((height, width), dtype=np.float32)
    texture += 18 * _smooth_noise(rng, height, width, 8)
    fine = rng.normal(0, 1, (height, width)).astype(np.float32)
    texture[label == TREE] += 22 * fine[label == TREE]
    texture[label == PAVEMENT] += 8 * fine[label == PAVEMENT]
    windows = ((yy.astype(int) // 3) % 3 == 0) & ((xx.astype(int) // 3) % 3 == 0)
    texture[(label == BUILDING) & windows] -= 45
    texture[label == SKY] += 30 * (yy[label == SKY] / max(horizon, 1.0) - 0.5)
    dash = (np.abs(xx - vanish_x) < 0.6 + (yy - horizon) * 0.01) & ((yy.astype(int) // 5) % 2 == 0)
    texture[(label == ROAD) & dash] += 110
    fence_slats = (xx.astype(int) % 3) == 0
    texture[(label == FENCE) & fence_slats] -= 35
    image += texture[..., None]
    light = rng.uniform(0.7, 1.25) * (1 + 0.15 * _smooth_noise(rng, height, width, 3))
    image = image * light[..., None] + rng.normal(0, 7, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def generate_synthetic(
    root: str | Path,
    num_images: Mapping[str, int],
    image_size: tuple[int, int] = (120, 160),
    seed: int = 0,
) -> Path:
    """Write ``num_images[split]`` scenes of ``image_size`` = (H, W) into a CamVid-layout tree.

    Files are ``<split>/synth_<split>_<i>.png`` and ``<split>annot/`` with the same name.
    """
    height, width = (int(v) for v in image_size)
    if height < 16 or width < 16:
        raise ConfigError(f"synthetic image_size must be at least 16x16, got {image_size!r}")
    root = Path(root)
    for split, count in num_images.items():
        if split not in SPLIT_NUMBERS:
            raise ConfigError(f"synthetic num_images: unknown split {split!r} (train/val/test)")
        if int(count) < 1:
            raise ConfigError(f"synthetic num_images.{split} must be >= 1, got {count!r}")
        image_dir, label_dir = root / split, root / f"{split}annot"
        image_dir.mkdir(parents=True, exist_ok=True)
        label_dir.mkdir(parents=True, exist_ok=True)
        for i in range(int(count)):
            rng = np.random.default_rng([int(seed), SPLIT_NUMBERS[split], i])
            image, label = render_scene(rng, height, width)
            name = f"synth_{split}_{i:05d}.png"
            Image.fromarray(image).save(image_dir / name)
            Image.fromarray(label).save(label_dir / name)
    return root
