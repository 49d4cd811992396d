"""The search strategies besides the controller: uniform random search and regularized (aging)
evolution (Real et al., AAAI 2019). Every choice derives from (seed, round, index), so each is
deterministic given its seed and resumes like the controller.

Evolution keeps a population of the last ``population`` evaluated architectures (the oldest
leaves as each new one enters). Until it is full, children are drawn uniformly; then each child
is one decision of a tournament winner, mutated: ``tournament`` members drawn without
replacement, the best reward wins (the older on a tie).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from ..seeds import derive_seed
from ..space import Genotype, SearchSpace
from .config import EvolutionConfig
from .controller import choices_to_genotype, decision_sequence, genotype_to_choices

STRATEGIES = ("controller", "random", "evolution")


def random_proposal(space: SearchSpace, seed: int, round_index: int, index: int) -> Genotype:
    """A uniform genotype for sample ``index`` of ``round_index``."""
    return space.sample(random.Random(derive_seed(seed, "sample", round_index, index)))


def mutate(genotype: Genotype, rng: random.Random, space: SearchSpace) -> Genotype:
    """``genotype`` with one decision (of those with a choice) changed to another value."""
    choices = genotype_to_choices(genotype, space)
    decisions = decision_sequence(space)
    position = rng.choice([i for i, d in enumerate(decisions) if d.num_choices > 1])
    value = rng.randrange(decisions[position].num_choices - 1)
    choices[position] = value + (value >= choices[position])
    return choices_to_genotype(choices, space)


def evolution_proposal(
    population: Sequence[dict],
    config: EvolutionConfig,
    space: SearchSpace,
    seed: int,
    round_index: int,
    index: int,
) -> Genotype:
    """Sample ``index`` of ``round_index`` given the population after the previous round."""
    if len(population) < config.population:
        return random_proposal(space, seed, round_index, index)
    rng = random.Random(derive_seed(seed, "evolve", round_index, index))
    contenders = rng.sample(list(population), config.tournament)
    parent = max(contenders, key=lambda member: (member["reward"], -member["born"]))
    return mutate(space.parse(parent["genotype"]), rng, space)


def evolved_population(
    population: Sequence[dict],
    children: Sequence[tuple[Genotype, float]],
    born: int,
    config: EvolutionConfig,
) -> list[dict]:
    """The population after ``children`` (genotype, reward) entered, in order, the first of
    them the ``born``-th architecture of the search; the oldest leave."""
    members = [*population]
    for offset, (genotype, reward) in enumerate(children):
        members.append(
            {
                "genotype": genotype.to_text(),
                "hash": genotype.hash,
                "reward": float(reward),
                "born": born + offset,
            }
        )
    return members[-config.population :]
