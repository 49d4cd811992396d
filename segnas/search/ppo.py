"""Proximal policy optimisation of the controller with an EMA reward baseline and a
rollout buffer of the most recent architectures."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from ..space import Genotype
from .config import PPOConfig
from .controller import Controller


@dataclass
class Rollout:
    """One evaluated architecture as PPO sees it."""

    choices: list[int]
    reward: float
    old_log_prob: float
    advantage: float


class PPOTrainer:
    """Holds the controller's optimiser, the reward baseline and the rollout buffer."""

    def __init__(self, controller: Controller, config: PPOConfig) -> None:
        self.controller = controller
        self.config = config
        self.optimizer = torch.optim.Adam(controller.parameters(), lr=config.lr)
        self.baseline: float | None = None
        self.buffer: list[Rollout] = []

    def add(self, genotype: Genotype, reward: float, old_log_prob: float) -> Rollout:
        """Add a result: its advantage is taken against the baseline, which then moves."""
        from .controller import genotype_to_choices

        if self.baseline is None:
            self.baseline = reward
        advantage = reward - self.baseline
        decay = self.config.baseline_decay
        self.baseline = decay * self.baseline + (1 - decay) * reward
        rollout = Rollout(
            genotype_to_choices(genotype, self.controller.space), reward, old_log_prob, advantage
        )
        self.buffer = (self.buffer + [rollout])[-self.config.buffer_size :]
        return rollout

    def step(self) -> dict[str, float]:
        """Run ``epochs`` clipped-surrogate updates over the whole buffer; return statistics."""
        stats: dict[str, float] = {}
        if not self.buffer:
            return stats
        choices = torch.tensor([r.choices for r in self.buffer])
        old = torch.tensor([r.old_log_prob for r in self.buffer], dtype=torch.float32)
        advantage = torch.tensor([r.advantage for r in self.buffer], dtype=torch.float32)
        clip = self.config.clip
        for _ in range(self.config.epochs):
            log_prob, entropy = self.controller.log_probs_of_choices(choices)
            ratio = torch.exp(log_prob - old)
            surrogate = torch.minimum(
                ratio * advantage, torch.clamp(ratio, 1 - clip, 1 + clip) * advantage
            )
            loss = -surrogate.mean() - self.config.entropy_weight * entropy.mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(
                self.controller.parameters(), self.config.max_grad_norm
            )
            self.optimizer.step()
            stats = {
                "loss": float(loss.detach()),
                "entropy": float(entropy.detach().mean()),
                "grad_norm": float(grad_norm),
                "ratio_mean": float(ratio.detach().mean()),
            }
        return stats

    def state_dict(self) -> dict:
        """Everything needed to continue exactly (plain types and tensors only)."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "baseline": self.baseline,
            "buffer": [[r.choices, r.reward, r.old_log_prob, r.advantage] for r in self.buffer],
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict` (copies: the source keeps its own tensors)."""
        self.optimizer.load_state_dict(copy.deepcopy(state["optimizer"]))
        self.baseline = state["baseline"]
        self.buffer = [
            Rollout(list(c), float(r), float(o), float(a)) for c, r, o, a in state["buffer"]
        ]
