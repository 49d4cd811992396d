"""The paper's figures re-drawn from our logs (matplotlib, Agg backend, PNG files); the search's
own (Figs. 5-7, the Pareto front) are in ``search_figures``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from ..io import atomic_path  # noqa: E402
from ..model import SEARCH_CONFIG, build_decoder  # noqa: E402
from ..space import Genotype  # noqa: E402
from ..stem import STEM_CHANNELS, STEM_STRIDES  # noqa: E402
from .base import interval  # noqa: E402

DPI = 110
COLOURS = {"controller": "#1f77b4", "random": "#ff7f0e"}


def save_figure(fig: plt.Figure, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI)
    plt.close(fig)
    return path


def controller_vs_random(compare: pd.DataFrame, evidence: dict, path: Path) -> Path:
    """Fig. 8: rewards of controller and random samples in the search and the longer setup,
    each panel titled with the difference of means, its 95 % interval and Mann-Whitney p."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.9), sharey=False)
    for ax, setup, title in zip(
        axes, ("search", "long"), ("search setup", "longer setup"), strict=True
    ):
        data = [compare.loc[compare["group"] == g, f"reward_{setup}"].to_numpy() for g in COLOURS]
        parts = ax.boxplot(data, widths=0.6, showfliers=False, patch_artist=True)
        for patch, colour in zip(parts["boxes"], COLOURS.values(), strict=True):
            patch.set_facecolor(colour)
            patch.set_alpha(0.35)
        for i, (values, colour) in enumerate(zip(data, COLOURS.values(), strict=True)):
            jitter = np.linspace(-0.12, 0.12, len(values)) if len(values) > 1 else [0.0]
            ax.scatter(i + 1 + np.asarray(jitter), values, s=12, color=colour)
        ax.set_xticks([1, 2], list(COLOURS))
        difference = evidence["controller_minus_random"][setup]
        p = difference["mann_whitney_p"]
        ax.set_title(
            f"{title}\ncontroller - random {interval(difference, 4)}, "
            f"p = {'n/a' if p is None else f'{p:.3g}'}",
            fontsize=9,
        )
        ax.set_ylabel("reward")
    fig.suptitle("Controller vs random search (cf. Fig. 8)")
    return save_figure(fig, path)


def _ranks(values: np.ndarray) -> np.ndarray:
    return pd.Series(values).rank(method="average").to_numpy()


def rank_vs_rank(compare: pd.DataFrame, spearman: dict[str, dict], path: Path) -> Path:
    """Fig. 9: rank in the search setup vs rank in the longer setup, per group, titled with
    Spearman's rho and its bootstrap 95 % interval."""
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 4.1))
    for ax, group in zip(axes, COLOURS, strict=True):
        rows = compare[compare["group"] == group]
        short, long = (
            _ranks(rows["reward_search"].to_numpy()),
            _ranks(rows["reward_long"].to_numpy()),
        )
        ax.scatter(short, long, color=COLOURS[group], s=18)
        top = max(len(rows), 1)
        ax.plot([1, top], [1, top], color="grey", linestyle="--", linewidth=1)
        ax.set_title(f"{group}: rho = {interval(spearman[group])}", fontsize=9)
        ax.set_xlabel("rank, search setup")
        ax.set_ylabel("rank, longer setup")
        ax.set_aspect("equal", adjustable="datalim")
    fig.suptitle("Rank vs rank (cf. Fig. 9)")
    return save_figure(fig, path)


def training_curves(histories: dict[str, list[dict]], path: Path) -> Path:
    """Per-epoch training loss, learning rate and validation mIoU of each trained model."""
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
    for name, history in histories.items():
        epochs = [h["epoch"] for h in history]
        axes[0].plot(epochs, [h["loss"] for h in history], marker=".", label=name)
        axes[1].plot(epochs, [h["lr"] for h in history], marker=".", label=name)
        val = [(h["epoch"], h["val_miou"]) for h in history if h.get("val_miou") is not None]
        if val:
            axes[2].plot(*zip(*val, strict=True), marker=".", label=name)
    for ax, title in zip(axes, ("training loss", "learning rate", "val mIoU"), strict=True):
        ax.set_title(title)
        ax.set_xlabel("epoch")
    axes[0].legend()
    return save_figure(fig, path)


def block_strides(genotype: Genotype) -> list[int]:
    """Output stride of every pool entry (stem outputs first), measured by a forward pass."""
    decoder = build_decoder(genotype, num_classes=2, **SEARCH_CONFIG, seed=0).eval()
    size = 256
    stems = [
        torch.zeros(1, c, size // s, size // s)
        for c, s in zip(STEM_CHANNELS, STEM_STRIDES, strict=True)
    ]
    heights: list[int] = []
    hooks = [
        b.register_forward_hook(lambda m, i, o: heights.append(o.shape[2])) for b in decoder.blocks
    ]
    try:
        with torch.no_grad():
            decoder(*stems)
    finally:
        for hook in hooks:
            hook.remove()
    return [*STEM_STRIDES, *(size // h for h in heights)]


def architecture_drawing(genotype: Genotype, name: str, path: Path) -> Path:
    """Fig. 12 style: pool entries by resolution, blocks with template/repeats/stride, head."""
    strides = block_strides(genotype)
    levels = sorted(set(strides))
    used = {loc for b in genotype.blocks for loc in (b.loc1, b.loc2)}
    n = len(strides)
    xs = [0.0, 0.0] + [1.0 + i for i in range(len(genotype.blocks))]
    ys = [float(-levels.index(s)) for s in strides]
    fig, ax = plt.subplots(figsize=(max(8, 1.25 * n), 1.4 + 1.1 * len(levels) + 0.9))
    template_colours = plt.get_cmap("Set2")

    def box(x: float, y: float, text: str, colour: str) -> None:
        ax.add_patch(
            FancyBboxPatch(
                (x - 0.38, y - 0.22),
                0.76,
                0.44,
                boxstyle="round,pad=0.02",
                facecolor=colour,
                edgecolor="black",
                linewidth=0.8,
            )
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=7.5)

    def arrow(i: int, j: int, colour: str = "#555555") -> None:
        bend = 0.25 if abs(xs[j] - xs[i]) > 1.1 else 0.0
        ax.add_patch(
            FancyArrowPatch(
                (xs[i] + 0.38, ys[i]),
                (xs[j] - 0.38, ys[j]),
                connectionstyle=f"arc3,rad={bend}",
                arrowstyle="-|>",
                mutation_scale=9,
                color=colour,
                linewidth=0.8,
            )
        )

    box(xs[0], ys[0], f"p0 stem\n1/{strides[0]}", "#dddddd")
    box(xs[1], ys[1], f"p1 stem\n1/{strides[1]}", "#dddddd")
    for i, b in enumerate(genotype.blocks):
        index = i + 2
        colour = template_colours(b.template)
        stride = " s2" if b.stride == 2 else ""
        arrow(b.loc1, index)
        arrow(b.loc2, index)
        box(
            xs[index],
            ys[index],
            f"p{index}: t{b.template} x{b.repeats}{stride}\n1/{strides[index]}",
            colour,
        )
    head_x = xs[-1] + 1.3
    collected = [i for i in range(2, n) if i not in used]
    head_y = max(ys[i] for i in collected)
    xs.append(head_x)
    ys.append(head_y)
    for i in collected:
        arrow(i, n, "#d62728")
    box(head_x, head_y, "head", "#f4cccc")
    legend = "\n".join(
        f"t{k}: {t.op1} + {t.op2} -> {t.agg}" for k, t in enumerate(genotype.templates)
    )
    ax.text(0, 0.75, legend, fontsize=7.5, va="bottom", ha="left", family="monospace")
    ax.set_yticks([-i for i in range(len(levels))], [f"1/{s}" for s in levels])
    ax.set_ylabel("resolution")
    ax.set_xticks([])
    ax.set_xlim(-0.6, head_x + 0.6)
    ax.set_ylim(-len(levels) + 0.4, 1.3 + 0.25 * len(genotype.templates))
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_title(f"{name}: {genotype.hash} (cf. Fig. 12)", fontsize=9)
    return save_figure(fig, path)


def qualitative_grid(strips: Sequence[Path], title: str, path: Path) -> Path:
    """Stack ``image | ground truth | prediction`` strips into one figure (Figs. 10-11)."""
    from PIL import Image

    images = [np.asarray(Image.open(p).convert("RGB")) for p in strips]
    height, width = images[0].shape[:2]
    fig, axes = plt.subplots(
        len(images), 1, figsize=(9, 9 * height / width * len(images) / 1.0 + 0.4)
    )
    axes = np.atleast_1d(axes)
    for ax, image, strip in zip(axes, images, strips, strict=True):
        ax.imshow(image)
        ax.set_axis_off()
        ax.set_title(f"{strip.stem}: image | ground truth | prediction", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
