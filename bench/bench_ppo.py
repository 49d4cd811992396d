"""PPO settings for a small search: how far the controller moves in a few hundred architectures.

No training: each architecture's reward is the synthetic ``target`` reward (the share of its
decisions equal to arch0's, ``segnas.trial.reward.target_similarity_result``), optionally
with Gaussian noise whose standard deviation is ``--noise`` times the reward's spread under
uniform sampling (a real search reward is a noisy estimate of a small spread: on CamVid at
CPU scale the cheapest reward that ranks correlates 0.82 with a long training, see
docs/search.md). The controller, PPO and seeding are the search's own (``search.steps``).

    python bench/bench_ppo.py --rounds 30 --batch 4 --seeds 5 --out bench_ppo

For every (learning rate, entropy weight, noise) and seed: the true (noiseless) reward of the
architectures sampled in the last ``--tail`` rounds and the controller's entropy (summed over
its decisions) at the last update. Written to
``<out>/ppo.json`` and ``<out>/ppo.md``.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
from pathlib import Path

import torch

from segnas.io import write_json, write_text
from segnas.published import published
from segnas.search.config import PPOConfig
from segnas.search.controller import Controller
from segnas.search.ppo import PPOTrainer
from segnas.seeds import derive_seed
from segnas.space import DEFAULT_SPACE
from segnas.trial.reward import target_similarity_result

PAPER_PPO = {"clip": 0.1, "max_grad_norm": 2.0, "baseline_decay": 0.95, "buffer_size": 100}


def uniform_rewards(samples: int, seed: int) -> list[float]:
    """Target rewards of ``samples`` uniformly sampled architectures."""
    target = published("arch0")
    return [
        target_similarity_result(
            DEFAULT_SPACE.sample(derive_seed(seed, "uniform", i)), target
        ).reward
        for i in range(samples)
    ]


def run(
    lr: float, entropy_weight: float, noise_sd: float, seed: int, rounds: int, batch: int, tail: int
) -> dict:
    """One search on the target reward; what the controller reached."""
    target = published("arch0")
    controller = Controller(DEFAULT_SPACE, seed=derive_seed(seed, "controller"))
    trainer = PPOTrainer(
        controller, PPOConfig(lr=lr, entropy_weight=entropy_weight, epochs=1, **PAPER_PPO)
    )
    noise = random.Random(derive_seed(seed, "noise"))
    true_rewards: list[list[float]] = []
    entropy = float("nan")
    for round_index in range(rounds):
        sampled = []
        for index in range(batch):
            generator = torch.Generator().manual_seed(
                derive_seed(seed, "sample", round_index, index)
            )
            genotype, log_prob = controller.sample(generator)
            sampled.append((genotype, log_prob))
        rewards = []
        for genotype, log_prob in sampled:
            reward = target_similarity_result(genotype, target).reward
            rewards.append(reward)
            trainer.add(genotype, reward + noise.gauss(0.0, noise_sd), log_prob)
        entropy = trainer.step()["entropy"]
        true_rewards.append(rewards)
    tail_rewards = [r for round_rewards in true_rewards[-tail:] for r in round_rewards]
    return {
        "tail_mean_reward": statistics.mean(tail_rewards),
        "first_round_mean_reward": statistics.mean(true_rewards[0]),
        "final_entropy": entropy,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=4, help="architectures per round (B)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tail", type=int, default=10, help="rounds averaged at the end")
    parser.add_argument("--lrs", default="1e-4,3e-4,1e-3,3e-3")
    parser.add_argument("--entropy-weights", default="0,1e-3")
    parser.add_argument("--noise", default="0,1", help="noise sd in units of the uniform spread")
    parser.add_argument("--out", default="bench_ppo")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # as the search runs its controller steps
    torch.use_deterministic_algorithms(True)
    uniform = uniform_rewards(1000, 0)
    spread = statistics.pstdev(uniform)
    rows = []
    grid = itertools.product(
        [float(v) for v in args.lrs.split(",")],
        [float(v) for v in args.entropy_weights.split(",")],
        [float(v) for v in args.noise.split(",")],
    )
    for lr, entropy_weight, noise in grid:
        runs = [
            run(lr, entropy_weight, noise * spread, seed, args.rounds, args.batch, args.tail)
            for seed in range(args.seeds)
        ]
        tails = [r["tail_mean_reward"] for r in runs]
        rows.append(
            {
                "lr": lr,
                "entropy_weight": entropy_weight,
                "noise": noise,
                "tail_mean_reward": statistics.mean(tails),
                "tail_sd_over_seeds": statistics.stdev(tails) if len(tails) > 1 else 0.0,
                "gain_over_uniform_in_spreads": (statistics.mean(tails) - statistics.mean(uniform))
                / spread,
                "final_entropy": statistics.mean(r["final_entropy"] for r in runs),
                "runs": runs,
            }
        )
        print(
            f"[ppo] lr {lr:g} entropy {entropy_weight:g} noise {noise:g}: tail reward "
            f"{rows[-1]['tail_mean_reward']:.3f}",
            flush=True,
        )
    header = {
        "rounds": args.rounds,
        "batch": args.batch,
        "seeds": args.seeds,
        "tail_rounds": args.tail,
        "uniform_mean_reward": statistics.mean(uniform),
        "uniform_spread": spread,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "ppo.json", {**header, "rows": rows})
    write_text(out / "ppo.md", markdown(rows, header))
    print(markdown(rows, header))
    return 0


def markdown(rows: list[dict], header: dict) -> str:
    lines = [
        f"{header['rounds']} rounds of B = {header['batch']} ({header['rounds'] * header['batch']} "
        f"architectures), {header['seeds']} seeds; target reward under uniform sampling: mean "
        f"{header['uniform_mean_reward']:.3f}, sd {header['uniform_spread']:.3f}. Tail = the "
        f"true reward of the last {header['tail_rounds']} rounds' architectures.",
        "",
        "| lr | entropy weight | noise (x sd) | tail reward (sd over seeds) | gain (sd units) "
        "| final entropy |",
        "|---:|---:|---:|---|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['lr']:g} | {row['entropy_weight']:g} | {row['noise']:g} | "
            f"{row['tail_mean_reward']:.3f} ({row['tail_sd_over_seeds']:.3f}) | "
            f"{row['gain_over_uniform_in_spreads']:+.2f} | {row['final_entropy']:.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
