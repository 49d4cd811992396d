"""The LSTM controller that writes genotypes decision by decision (the paper's policy).

Decision order: for each of the M templates ``op1, op2, agg``; then for each of the N blocks
``loc1, loc2, template, repeats`` and, in the first ``floor(N / 2)`` blocks only, ``stride``.
Strides fixed to 1 in the second half are not decisions: they take no LSTM step and add
nothing to the log-probability or the entropy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ArtifactError
from ..integrity import DamagedArchive, load_torch, non_finite
from ..io import torch_load_reason
from ..space import Block, Genotype, SearchSpace, Template

DECISION_KINDS = ("op", "agg", "loc", "template", "repeats", "stride")
CHECKPOINT_FORMAT = "segnas-controller/1"


@dataclass(frozen=True)
class Decision:
    """One step of the sequence: its kind and how many of the kind's choices are allowed."""

    kind: str
    num_choices: int


def decision_sequence(space: SearchSpace) -> list[Decision]:
    """The decisions that describe one architecture of ``space``, in controller order."""
    steps: list[Decision] = []
    for _ in range(space.num_templates):
        steps += [
            Decision("op", len(space.ops)),
            Decision("op", len(space.ops)),
            Decision("agg", len(space.aggregations)),
        ]
    for i in range(space.num_blocks):
        pool = space.pool_size(i)
        steps += [
            Decision("loc", pool),
            Decision("loc", pool),
            Decision("template", space.num_templates),
            Decision("repeats", space.max_repeats),
        ]
        if len(space.stride_choices(i)) > 1:
            steps.append(Decision("stride", len(space.stride_choices(i))))
    return steps


def genotype_to_choices(genotype: Genotype, space: SearchSpace) -> list[int]:
    """The choice index of every decision of ``genotype`` (see :func:`decision_sequence`)."""
    space.validate(genotype)
    choices: list[int] = []
    for t in genotype.templates:
        choices += [space.ops.index(t.op1), space.ops.index(t.op2), space.aggregations.index(t.agg)]
    for i, b in enumerate(genotype.blocks):
        choices += [b.loc1, b.loc2, b.template, b.repeats - 1]
        strides = space.stride_choices(i)
        if len(strides) > 1:
            choices.append(strides.index(b.stride))
    return choices


def choices_to_genotype(choices: list[int], space: SearchSpace) -> Genotype:
    """Inverse of :func:`genotype_to_choices`."""
    it = iter(choices)
    templates = tuple(
        Template(space.ops[next(it)], space.ops[next(it)], space.aggregations[next(it)])
        for _ in range(space.num_templates)
    )
    blocks = []
    for i in range(space.num_blocks):
        loc1, loc2, template, repeats = next(it), next(it), next(it), next(it) + 1
        strides = space.stride_choices(i)
        stride = strides[next(it)] if len(strides) > 1 else strides[0]
        blocks.append(Block(loc1, loc2, template, repeats, stride))
    return space.validate(Genotype(templates, tuple(blocks)))


def space_to_dict(space: SearchSpace) -> dict:
    """Plain form of a search space (stored in checkpoints)."""
    return {
        "num_templates": space.num_templates,
        "num_blocks": space.num_blocks,
        "max_repeats": space.max_repeats,
        "ops": list(space.ops),
        "aggregations": list(space.aggregations),
        "num_stem_outputs": space.num_stem_outputs,
        "strides": list(space.strides),
    }


def space_from_dict(data: dict) -> SearchSpace:
    """Inverse of :func:`space_to_dict`."""
    return SearchSpace(
        num_templates=int(data["num_templates"]),
        num_blocks=int(data["num_blocks"]),
        max_repeats=int(data["max_repeats"]),
        ops=tuple(data["ops"]),
        aggregations=tuple(data["aggregations"]),
        num_stem_outputs=int(data["num_stem_outputs"]),
        strides=tuple(int(s) for s in data["strides"]),
    )


class Controller(nn.Module):
    """A 2-layer LSTM policy with one embedding and one output layer per decision kind.

    Each step reads the embedding of the previous decision (a learned start vector for the
    first), and its output layer's logits are masked to the step's allowed choices (the
    location pool grows by one per block). Parameters are initialised uniformly in
    ``[-init_range, init_range]``.
    """

    def __init__(
        self,
        space: SearchSpace,
        hidden_size: int = 100,
        num_layers: int = 2,
        init_range: float = 0.1,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.space = space
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.steps = decision_sequence(space)
        sizes: dict[str, int] = {}
        for step in self.steps:
            sizes[step.kind] = max(sizes.get(step.kind, 0), step.num_choices)
        self.kinds = [k for k in DECISION_KINDS if k in sizes]
        self.start = nn.Parameter(torch.empty(1, hidden_size))
        self.embeddings = nn.ModuleDict(
            {k: nn.Embedding(sizes[k], hidden_size) for k in self.kinds}
        )
        self.heads = nn.ModuleDict({k: nn.Linear(hidden_size, sizes[k]) for k in self.kinds})
        self.lstm = nn.LSTM(hidden_size, hidden_size, num_layers=num_layers, batch_first=True)
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for param in self.parameters():
                param.copy_(
                    torch.rand(param.shape, generator=generator) * 2 * init_range - init_range
                )
        masks = torch.full((len(self.steps), max(sizes.values())), float("-inf"))
        for index, step in enumerate(self.steps):
            masks[index, : step.num_choices] = 0.0
        self.register_buffer("masks", masks, persistent=False)
        self._steps_by_kind = {
            kind: torch.tensor([i for i, step in enumerate(self.steps) if step.kind == kind])
            for kind in self.kinds
        }

    def _logits(self, index: int, output: torch.Tensor) -> torch.Tensor:
        step = self.steps[index]
        logits = self.heads[step.kind](output)
        return logits + self.masks[index, : logits.shape[-1]]

    def _embed(self, index: int, choice: torch.Tensor) -> torch.Tensor:
        return self.embeddings[self.steps[index].kind](choice)

    @torch.no_grad()
    def sample(self, generator: torch.Generator) -> tuple[Genotype, float]:
        """Sample one genotype; return it with its log-probability under the current policy."""
        x = self.start.unsqueeze(0)
        state = None
        choices: list[int] = []
        log_prob = torch.zeros(())
        for index in range(len(self.steps)):
            output, state = self.lstm(x, state)
            log_probs = torch.log_softmax(self._logits(index, output[0, 0]), dim=-1)
            choice = int(torch.multinomial(log_probs.exp(), 1, generator=generator))
            log_prob = log_prob + log_probs[choice]
            choices.append(choice)
            x = self._embed(index, torch.tensor([[choice]]))
        return choices_to_genotype(choices, self.space), float(log_prob)

    def log_probs(self, genotypes: list[Genotype]) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities and entropies (summed over decisions) of ``genotypes``.

        Runs the LSTM over the decisions as given (teacher forcing); differentiable.
        """
        choices = torch.tensor([genotype_to_choices(g, self.space) for g in genotypes])
        return self.log_probs_of_choices(choices)

    def log_probs_of_choices(self, choices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As :meth:`log_probs`, for a (batch, decisions) tensor of choice indices."""
        batch, length = choices.shape
        inputs = torch.empty(batch, length, self.hidden_size)
        inputs[:, 0] = self.start
        for kind, steps in self._steps_by_kind.items():
            inputs_at = steps + 1
            keep = inputs_at < length
            inputs[:, inputs_at[keep]] = self.embeddings[kind](choices[:, steps[keep]])
        outputs, _ = self.lstm(inputs)
        log_prob = torch.zeros(batch)
        entropy = torch.zeros(batch)
        for kind, steps in self._steps_by_kind.items():
            logits = self.heads[kind](outputs[:, steps])
            log_probs = torch.log_softmax(logits + self.masks[steps, : logits.shape[-1]], dim=-1)
            chosen = log_probs.gather(2, choices[:, steps].unsqueeze(-1)).squeeze(-1)
            log_prob = log_prob + chosen.sum(dim=1)
            finite = log_probs.masked_fill(torch.isinf(log_probs), 0.0)
            entropy = entropy - (log_probs.exp() * finite).sum(dim=(1, 2))
        return log_prob, entropy

    def config(self) -> dict:
        """Constructor arguments other than the space (stored in checkpoints)."""
        return {"hidden_size": self.hidden_size, "num_layers": self.num_layers}


def save_controller(
    path: str | Path, controller: Controller, params_hash: str, extra: dict | None = None
) -> None:
    """Atomically save a controller with its search space and the params hash of its run."""
    from ..io import save_torch

    payload = {
        "format": CHECKPOINT_FORMAT,
        "space": space_to_dict(controller.space),
        "config": controller.config(),
        "params_hash": params_hash,
        "state_dict": controller.state_dict(),
        **(extra or {}),
    }
    save_torch(path, payload)


def read_checkpoint(path: str | Path) -> dict:
    """Load a controller checkpoint safely (``weights_only=True``) and check its format."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path} does not exist; run the search stage first")
    try:
        payload = load_torch(path)
    except DamagedArchive as exc:
        raise ArtifactError(f"{path}: {exc}; rerun the search stage") from exc
    except Exception as exc:
        raise ArtifactError(
            f"{path} is not a readable controller checkpoint ({torch_load_reason(exc)})"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ArtifactError(f"{path} is not a segnas controller checkpoint ({CHECKPOINT_FORMAT})")
    bad = non_finite(payload)
    if bad is not None:
        raise ArtifactError(
            f"{path}: tensor {bad} is NaN or infinite; the checkpoint is damaged, rerun the "
            "search stage"
        )
    return payload


def load_controller(
    path: str | Path,
    space: SearchSpace | None = None,
    params_hash: str | None = None,
) -> Controller:
    """Load a controller checkpoint (e.g. ``search/controller/final.pt``).

    With ``space`` or ``params_hash`` given, refuse a checkpoint written for another search
    space or other search params, naming both.
    """
    payload = read_checkpoint(path)
    stored_space = space_from_dict(payload["space"])
    if space is not None and stored_space != space:
        raise ArtifactError(
            f"{path} was trained for search space {space_to_dict(stored_space)}, "
            f"not {space_to_dict(space)}; rerun the search stage with the current params"
        )
    if params_hash is not None and payload["params_hash"] != params_hash:
        raise ArtifactError(
            f"{path} was written with search params hash {payload['params_hash']}, but the "
            f"current params hash to {params_hash}; rerun the search stage (dvc repro / "
            "snakemake) or restore the params it was run with"
        )
    controller = Controller(stored_space, **payload["config"])
    controller.load_state_dict(payload["state_dict"])
    return controller
