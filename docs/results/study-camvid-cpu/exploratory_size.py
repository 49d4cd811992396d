"""Exploratory, not in PLAN.md (written after the primary decision): how much of the
controller's endpoint advantage over random search goes with its smaller endpoint networks.

Reads the committed ``summary.json`` and prints, for controller and random over the seeds both
reached: per-seed wins, the exact one-sided Wilcoxon signed-rank p (a check of the planned t
test), Spearman's rho of endpoint parameters against endpoint val mIoU (pooled and within each
strategy), and an ordinary least-squares fit ``val ~ 1 + is_controller + params / 1e5`` with
the coefficients' standard errors. Run from the repository root:

    .venv/bin/python docs/results/study-camvid-cpu/exploratory_size.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import stats

from segnas.study.aggregate import paired_test

SUMMARY = Path(__file__).with_name("summary.json")


def main() -> None:
    """Print the exploratory numbers quoted in this folder's README."""
    endpoint = json.loads(SUMMARY.read_text())["endpoint"]
    first, second = endpoint["controller"], endpoint["random"]
    seeds = sorted(set(first["per_seed"]) & set(second["per_seed"]), key=int)
    val_c = np.array([first["per_seed"][s] for s in seeds])
    val_r = np.array([second["per_seed"][s] for s in seeds])
    params_c = np.array([first["params_per_seed"][s] for s in seeds], dtype=float)
    params_r = np.array([second["params_per_seed"][s] for s in seeds], dtype=float)
    n = len(seeds)
    print(f"seeds: {n}; controller ahead at {int((val_c > val_r).sum())}")
    wilcoxon = paired_test(val_c, val_r, "wilcoxon", alpha=0.05)
    print(f"Wilcoxon signed-rank, one-sided exact p = {wilcoxon['p']:.4f}")
    print(
        f"median endpoint params: controller {np.median(params_c):.0f}, "
        f"random {np.median(params_r):.0f}"
    )
    val = np.r_[val_c, val_r]
    params = np.r_[params_c, params_r] / 1e5
    for label, x, y in (
        ("pooled", params, val),
        ("controller", params_c, val_c),
        ("random", params_r, val_r),
    ):
        rho = stats.spearmanr(x, y)
        print(f"Spearman rho(params, val) {label}: {rho.statistic:.3f} (p {rho.pvalue:.3f})")
    design = np.c_[np.ones(2 * n), np.r_[np.ones(n), np.zeros(n)], params]
    beta, *_ = np.linalg.lstsq(design, val, rcond=None)
    residual = val - design @ beta
    variance = residual @ residual / (2 * n - design.shape[1])
    errors = np.sqrt(np.diag(variance * np.linalg.inv(design.T @ design)))
    for name, b, e in zip(
        ("intercept", "is_controller", "per 100K params"), beta, errors, strict=True
    ):
        print(f"OLS {name}: {b:.4f} (se {e:.4f})")


if __name__ == "__main__":
    main()
