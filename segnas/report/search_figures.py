"""The search's figures: reward and controller entropy through the search (Fig. 5), the
downsampling factors (Figs. 6-7) and the Pareto front of the searched architectures."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .evidence import pareto_front
from .figures import plt, save_figure


def _round_groups(archs: pd.DataFrame, max_groups: int = 12) -> tuple[pd.Series, str]:
    """Round index, bucketed into at most ``max_groups`` consecutive groups."""
    rounds = archs["round"].astype(int)
    count = rounds.max() + 1
    if count <= max_groups:
        return rounds, "round"
    size = math.ceil(count / max_groups)
    return rounds // size * size, f"round (groups of {size})"


def rolling_median(values: pd.Series, window: int) -> pd.Series:
    """Median of the last ``window`` values at each position (fewer at the start)."""
    return values.rolling(window, min_periods=1).median()


def reward_through_search(archs: pd.DataFrame, controller: pd.DataFrame | None, path: Path) -> Path:
    """Fig. 5: every sampled architecture's reward in search order with a rolling median over
    two rounds; beside it the controller's entropy per round (``search/controller.csv``)."""
    archs = archs.sort_values(["round", "index"]).reset_index(drop=True)
    per_round = int(archs.groupby("round").size().max())
    window = max(2 * per_round, 3)
    panels = 2 if controller is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 3.6), squeeze=False)
    ax = axes[0][0]
    order = np.arange(1, len(archs) + 1)
    ax.scatter(order, archs["reward"], s=9, alpha=0.5, color="#1f77b4", label="architecture")
    ax.plot(
        order,
        rolling_median(archs["reward"], window),
        color="#d62728",
        label=f"rolling median ({window})",
    )
    ax.set_xlabel("architecture, in search order")
    ax.set_ylabel("reward")
    ax.set_title("Reward through the search (cf. Fig. 5)")
    ax.legend(loc="lower right", fontsize=8)
    if controller is not None:
        ax = axes[0][1]
        ax.plot(controller["round"], controller["entropy"], marker=".", color="#9467bd")
        ax.set_xlabel("round")
        ax.set_ylabel("entropy (nats, per architecture)")
        ax.set_title("Controller entropy after each update")
    return save_figure(fig, path)


def downsampling_through_search(archs: pd.DataFrame, path: Path) -> Path:
    """Fig. 6: proportion of each downsampling factor among the samples, through the search."""
    groups, label = _round_groups(archs)
    table = pd.crosstab(groups, archs["downsampling_factor"].astype(int), normalize="index")
    fig, ax = plt.subplots(figsize=(7, 3.6))
    x = np.arange(len(table.index))
    bottom = np.zeros(len(x))
    cmap = plt.get_cmap("viridis", max(len(table.columns), 2))
    for i, factor in enumerate(table.columns):
        values = table[factor].to_numpy()
        ax.bar(x, values, bottom=bottom, color=cmap(i), label=f"x{factor}", width=0.8)
        bottom += values
    ax.set_xticks(x, [str(k) for k in table.index])
    ax.set_ylim(0, 1)
    ax.set_xlabel(label)
    ax.set_ylabel("proportion")
    ax.set_title("Downsampling factor of sampled architectures (cf. Fig. 6)")
    ax.legend(title="factor", bbox_to_anchor=(1.01, 1), loc="upper left")
    return save_figure(fig, path)


def reward_by_downsampling(archs: pd.DataFrame, path: Path) -> Path:
    """Fig. 7: reward distribution per downsampling factor."""
    factors = sorted(archs["downsampling_factor"].astype(int).unique())
    data = [archs.loc[archs["downsampling_factor"] == f, "reward"].to_numpy() for f in factors]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ax.boxplot(data, positions=range(len(factors)), widths=0.6, showfliers=False)
    for i, values in enumerate(data):
        jitter = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else [0.0]
        ax.scatter(i + np.asarray(jitter), values, s=10, alpha=0.6, color="#2ca02c")
    ax.set_xticks(
        range(len(factors)), [f"x{f}\n(n={len(d)})" for f, d in zip(factors, data, strict=True)]
    )
    ax.set_xlabel("downsampling factor (2^strided blocks)")
    ax.set_ylabel("reward")
    ax.set_title("Reward by downsampling factor (cf. Fig. 7)")
    return save_figure(fig, path)


def pareto_view(archs: pd.DataFrame, cost: str, label: str, path: Path) -> Path:
    """Reward against ``archs[cost]`` (parameters, or the search's measured latency), every
    searched architecture a dot, the non-dominated ones ringed and joined."""
    costs = archs[cost].astype(float).to_numpy()
    reward = archs["reward"].astype(float).to_numpy()
    front = np.asarray(pareto_front(costs, reward))
    order = np.argsort(costs[front])
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.scatter(costs, reward, s=10, alpha=0.45, color="#7f7f7f", label="searched")
    ax.plot(
        costs[front][order],
        reward[front][order],
        marker="o",
        markerfacecolor="none",
        color="#d62728",
        label=f"non-dominated ({int(front.sum())})",
    )
    ax.set_xlabel(label)
    ax.set_ylabel("reward")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"Pareto front over {len(archs)} searched architectures", fontsize=10)
    return save_figure(fig, path)
