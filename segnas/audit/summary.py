"""The reward audit's findings from its job files: repeatability (ICC), fidelity against final
training (Spearman's rho with bootstrap intervals) beside the baselines (FLOPs, parameters,
zero-cost proxies), the difference a study can detect, and the cost. Written as
``summary.json``, ``table.md`` and ``figure.png``; a partial audit gives a partial summary
(``complete: false``)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..io import read_json, write_json, write_text
from ..seeds import derive_seed
from ..stats import (
    BOOTSTRAP_SEED,
    Estimate,
    detectable_difference,
    icc_ci,
    json_number,
    repeatability,
    spearman,
    spearman_ci,
)
from .plan import GROUPS, AuditLayout
from .proxies import PROXIES

STUDY_SIZES = (10, 20, 40)


@dataclass
class ArchResults:
    """What the audit measured of one architecture so far."""

    name: str
    group: str
    hash: str
    rewards: list[float | None]
    params: int | None
    flops: int | None
    core_s: list[float]
    proxies: dict[str, float]
    finals: dict[int, float]

    @property
    def complete_rewards(self) -> bool:
        return all(r is not None for r in self.rewards)


def load_results(layout: AuditLayout) -> tuple[dict[str, Any], list[ArchResults]]:
    """The plan and, per planned architecture, the results written so far."""
    plan = read_json(layout.plan)
    archs = []
    for record in plan["architectures"]:
        name = record["name"]
        rewards: list[float | None] = []
        params = flops = None
        core_s = []
        for replicate in range(plan["reward_seeds"]):
            path = layout.reward(name, replicate)
            if not path.is_file():
                rewards.append(None)
                continue
            result = read_json(path)["result"]
            rewards.append(float(result["reward"]))
            params, flops = result["params"] or params, result["flops"] or flops
            if "cpu" in result["seconds"]:
                core_s.append(float(result["seconds"]["cpu"]))
        proxies_path = layout.proxies(name)
        proxies = read_json(proxies_path)["scores"] if proxies_path.is_file() else {}
        finals = {}
        for trial in (0, 1):
            path = layout.final(record["hash"], trial)
            if path.is_file():
                finals[trial] = float(read_json(path)["val_miou"])
        archs.append(
            ArchResults(
                name,
                record["group"],
                record["hash"],
                rewards,
                params,
                flops,
                core_s,
                proxies,
                finals,
            )
        )
    return plan, archs


def _estimate(estimate: Estimate) -> dict[str, Any]:
    return {
        "rho": json_number(estimate.value),
        "ci_low": json_number(estimate.low),
        "ci_high": json_number(estimate.high),
        "n": estimate.n,
    }


def repeatability_summary(archs: Sequence[ArchResults]) -> dict[str, Any]:
    """ICC(1) per group and pooled (with bootstrap intervals), seed and between sds."""
    complete = [a for a in archs if a.complete_rewards]
    icc: dict[str, Any] = {}
    intervals: dict[str, Any] = {}
    components: dict[str, Any] = {}
    for group in (*GROUPS, "pooled"):
        rows = [a.rewards for a in complete if group in ("pooled", a.group)]
        if len(rows) < 2:
            continue
        decomposition = repeatability(rows)
        estimate = icc_ci(rows, seed=derive_seed(BOOTSTRAP_SEED, "icc", group))
        icc[group] = json_number(decomposition.icc)
        intervals[group] = {"low": json_number(estimate.low), "high": json_number(estimate.high)}
        components[group] = decomposition.to_dict()
    pooled = components.get("pooled", {})
    return {
        "icc": icc,
        "icc_ci": intervals,
        "seed_sd": pooled.get("seed_sd"),
        "between_sd": pooled.get("between_sd"),
        "per_group": components,
        "num_complete": len(complete),
    }


def study_sd(per_group: dict[str, Any]) -> float:
    """The sd of one architecture's single-seed reward within a group (between + seed
    variance), averaged over the groups measured: what a comparison of N architectures per
    group sees."""
    variances = [
        c["between_sd"] ** 2 + c["seed_sd"] ** 2
        for group, c in per_group.items()
        if group != "pooled" and c["seed_sd"] is not None and c["between_sd"] is not None
    ]
    return math.sqrt(statistics.fmean(variances)) if variances else math.nan


def detectable_summary(per_group: dict[str, Any]) -> dict[str, Any]:
    """The smallest mean-reward difference detected at 80 % power, alpha 0.05, two-sided."""
    sd = study_sd(per_group)
    out: dict[str, Any] = {"sd": json_number(sd), "power": 0.8, "alpha": 0.05}
    for n in STUDY_SIZES:
        out[f"n{n}"] = None if math.isnan(sd) else json_number(detectable_difference(sd, n))
    return out


def final_noise(archs: Sequence[ArchResults]) -> dict[str, Any]:
    """The final training's own seed noise (from the architectures trained twice) and the
    highest correlation any reward could reach with one final training, sqrt(reliability)."""
    twice = [a for a in archs if len(a.finals) == 2]
    singles = [a.finals[0] for a in archs if 0 in a.finals]
    out: dict[str, Any] = {"repeated": len(twice)}
    if not twice or len(singles) < 3:
        return {**out, "seed_sd": None, "total_sd": None, "rho_ceiling": None}
    seed_var = statistics.fmean((a.finals[0] - a.finals[1]) ** 2 / 2 for a in twice)
    total_var = statistics.variance(singles)
    reliability = max(0.0, 1 - seed_var / total_var) if total_var > 0 else math.nan
    return {
        **out,
        "seed_sd": math.sqrt(seed_var),
        "total_sd": math.sqrt(total_var),
        "reliability": json_number(reliability),
        "rho_ceiling": json_number(math.sqrt(reliability)),
    }


def fidelity_summary(archs: Sequence[ArchResults]) -> dict[str, Any]:
    """Spearman's rho of the single-seed reward (seed 0) and of the mean over seeds with the
    first final training's val mIoU, beside the baselines."""
    scored = [a for a in archs if 0 in a.finals and a.rewards and a.rewards[0] is not None]
    final = [a.finals[0] for a in scored]

    def rho(values: Sequence[float], key: str) -> dict[str, Any]:
        return _estimate(spearman_ci(values, final, seed=derive_seed(BOOTSTRAP_SEED, key)))

    single = rho([a.rewards[0] for a in scored], "single")
    complete = [a for a in scored if a.complete_rewards]
    mean_of_seeds = _estimate(
        spearman_ci(
            [statistics.fmean(a.rewards) for a in complete],
            [a.finals[0] for a in complete],
            seed=derive_seed(BOOTSTRAP_SEED, "mean"),
        )
    )
    baselines = {
        "flops": rho([float(a.flops or 0) for a in scored], "flops"),
        "params": rho([float(a.params or 0) for a in scored], "params"),
    }
    for proxy in PROXIES:
        if all(proxy in a.proxies for a in scored):
            baselines[proxy] = rho([a.proxies[proxy] for a in scored], proxy)
    # the reward's size bias needs no final training: every architecture with a seed-0 reward
    rewarded = [a for a in archs if a.rewards and a.rewards[0] is not None]
    params = [float(a.params or 0) for a in rewarded]
    return {
        "num_heldout": len(scored),
        "spearman_rho": single["rho"],
        "ci_low": single["ci_low"],
        "ci_high": single["ci_high"],
        "mean_of_seeds": mean_of_seeds,
        "baselines": {name: b["rho"] for name, b in baselines.items()},
        "baselines_ci": baselines,
        "params_vs_reward": json_number(spearman([a.rewards[0] for a in rewarded], params)),
        "params_vs_final": baselines["params"]["rho"],
        "final_noise": final_noise(archs),
    }


def cost_summary(archs: Sequence[ArchResults], layout: AuditLayout, plan: dict) -> dict[str, Any]:
    """Core-seconds per reward evaluation (process CPU time) and per final training."""
    core_s = [s for a in archs for s in a.core_s]
    finals = []
    for record in plan["architectures"]:
        for trial in (0, 1):
            path = layout.final(record["hash"], trial)
            if path.is_file():
                finals.append(float(read_json(path)["core_s"]))
    if not core_s:
        return {"core_s_mean": None, "core_s_median": None, "core_s_max": None}
    mean = statistics.fmean(core_s)
    return {
        "core_s_mean": mean,
        "core_s_median": statistics.median(core_s),
        "core_s_max": max(core_s),
        "evaluations": len(core_s),
        "archs_per_hour_2_cores": 2 * 3600 / mean,
        "final_core_s_mean": statistics.fmean(finals) if finals else None,
        "finals": len(finals),
    }


def summarize(layout: AuditLayout) -> dict[str, Any]:
    """Every finding of the audit from the files written so far."""
    plan, archs = load_results(layout)
    rewards_done = sum(r is not None for a in archs for r in a.rewards)
    finals_done = sum(len(a.finals) for a in archs)
    finals_planned = len(archs) + plan["final_repeats"]
    repeat = repeatability_summary(archs)
    return {
        "recipe": plan["recipe"],
        "role": plan["role"],
        "complete": rewards_done == len(archs) * plan["reward_seeds"]
        and finals_done == finals_planned,
        "progress": {
            "rewards": f"{rewards_done}/{len(archs) * plan['reward_seeds']}",
            "finals": f"{finals_done}/{finals_planned}",
        },
        "repeatability": repeat,
        "fidelity": fidelity_summary(archs),
        "detectable_difference": detectable_summary(repeat["per_group"]),
        "cost": cost_summary(archs, layout, plan),
        "architectures": [
            {
                "name": a.name,
                "group": a.group,
                "hash": a.hash,
                "params": a.params,
                "flops": a.flops,
                "rewards": a.rewards,
                "final_val_miou": [a.finals[t] for t in sorted(a.finals)],
                "proxies": a.proxies,
            }
            for a in archs
        ],
    }


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_table(summary: dict[str, Any]) -> str:
    """``table.md``: the headline figures, then one row per architecture."""
    repeat, fidelity = summary["repeatability"], summary["fidelity"]
    detect, cost = summary["detectable_difference"], summary["cost"]
    lines = [
        f"# Reward audit ({summary['role']}; complete: {summary['complete']}; rewards "
        f"{summary['progress']['rewards']}, final trainings {summary['progress']['finals']})",
        "",
        "| measure | value |",
        "|---|---|",
    ]
    for group, icc in repeat["icc"].items():
        interval = repeat["icc_ci"][group]
        lines.append(
            f"| ICC(1) {group} | {_fmt(icc)} [{_fmt(interval['low'])}, {_fmt(interval['high'])}] |"
        )
    lines += [
        f"| seed sd / between sd (pooled) | {_fmt(repeat['seed_sd'], 4)} / "
        f"{_fmt(repeat['between_sd'], 4)} |",
        f"| rho(single-seed reward, final val mIoU), n = {fidelity['num_heldout']} | "
        f"{_fmt(fidelity['spearman_rho'])} [{_fmt(fidelity['ci_low'])}, "
        f"{_fmt(fidelity['ci_high'])}] |",
        f"| rho(mean of the seeds' rewards, final val mIoU) | "
        f"{_fmt(fidelity['mean_of_seeds']['rho'])} [{_fmt(fidelity['mean_of_seeds']['ci_low'])}, "
        f"{_fmt(fidelity['mean_of_seeds']['ci_high'])}] |",
    ]
    for name, baseline in fidelity["baselines_ci"].items():
        lines.append(
            f"| baseline rho({name}, final val mIoU) | {_fmt(baseline['rho'])} "
            f"[{_fmt(baseline['ci_low'])}, {_fmt(baseline['ci_high'])}] |"
        )
    noise = fidelity["final_noise"]
    lines += [
        f"| rho(params, reward) / rho(params, final) | {_fmt(fidelity['params_vs_reward'])} / "
        f"{_fmt(fidelity['params_vs_final'])} |",
        f"| final training seed sd ({noise['repeated']} twice) / rho ceiling | "
        f"{_fmt(noise.get('seed_sd'), 4)} / {_fmt(noise.get('rho_ceiling'))} |",
        "| detectable difference (80 % power, alpha 0.05) N = 10 / 20 / 40 | "
        + " / ".join(_fmt(detect[f"n{n}"], 4) for n in STUDY_SIZES)
        + " |",
        f"| core-s per reward: mean / median / max | {_fmt(cost['core_s_mean'], 1)} / "
        f"{_fmt(cost['core_s_median'], 1)} / {_fmt(cost['core_s_max'], 1)} |",
        "",
        "| arch | group | params | rewards (per seed) | final val mIoU | "
        + " | ".join(PROXIES)
        + " |",
        "|---|---|---:|---|---|" + "---:|" * len(PROXIES),
    ]
    for arch in summary["architectures"]:
        rewards = ", ".join(_fmt(r) for r in arch["rewards"])
        finals = ", ".join(_fmt(v) for v in arch["final_val_miou"]) or "-"
        proxies = " | ".join(
            "-" if p not in arch["proxies"] else f"{arch['proxies'][p]:.4g}" for p in PROXIES
        )
        lines.append(
            f"| {arch['name']} | {arch['group']} | {_fmt(arch['params'])} | {rewards} | "
            f"{finals} | {proxies} |"
        )
    return "\n".join(lines) + "\n"


def render_figure(summary: dict[str, Any], path: Any) -> None:
    """``figure.png``: each architecture's reward per seed (sorted by the mean), and the
    seed-0 reward against the final val mIoU."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from ..io import atomic_path

    colors = {"uniform": "tab:blue", "controller_band": "tab:orange"}
    archs = [a for a in summary["architectures"] if any(r is not None for r in a["rewards"])]
    archs.sort(key=lambda a: np.mean([r for r in a["rewards"] if r is not None]))
    figure, (spread, fidelity) = plt.subplots(1, 2, figsize=(11, 4.2))
    for x, arch in enumerate(archs):
        values = [r for r in arch["rewards"] if r is not None]
        spread.plot([x] * len(values), values, "o", color=colors[arch["group"]], alpha=0.7)
        spread.plot([x - 0.3, x + 0.3], [np.mean(values)] * 2, "-", color="black", lw=1)
    spread.set_xticks(range(len(archs)), [a["name"] for a in archs], rotation=90, fontsize=7)
    spread.set_ylabel("search reward (one dot per seed)")
    spread.set_title("Reward seed spread per architecture")
    for group, color in colors.items():
        pairs = [
            (a["rewards"][0], a["final_val_miou"][0])
            for a in summary["architectures"]
            if a["group"] == group and a["final_val_miou"] and a["rewards"][0] is not None
        ]
        if pairs:
            xs, ys = zip(*pairs, strict=True)
            fidelity.plot(xs, ys, "o", color=color, label=group)
    rho = summary["fidelity"]["spearman_rho"]
    fidelity.set_title(f"Seed-0 reward vs final val mIoU (rho {_fmt(rho, 2)})")
    fidelity.set_xlabel("search reward (seed 0)")
    fidelity.set_ylabel("final training: val mIoU")
    if fidelity.get_legend_handles_labels()[0]:  # no final training has finished yet
        fidelity.legend(fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)


def write_outputs(layout: AuditLayout) -> dict[str, Any]:
    """Write ``summary.json``, ``table.md`` and ``figure.png``; the summary."""
    summary = summarize(layout)
    write_json(layout.summary, summary)
    write_text(layout.table, render_table(summary))
    render_figure(summary, layout.figure)
    return summary
