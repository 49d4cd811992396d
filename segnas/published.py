"""The two architectures released with the paper, in the release's integer encoding."""

from __future__ import annotations

from .errors import GenotypeError
from .space import DEFAULT_SPACE, Genotype, SearchSpace

RELEASED = {
    "arch0": [
        [[3, 0, 1], [4, 1, 1], [3, 1, 1]],
        [
            [0, 1, 0, 0, 1],
            [2, 1, 2, 1, 0],
            [3, 1, 1, 1, 0],
            [1, 1, 2, 0, 0],
            [3, 0, 2, 0, 0],
            [5, 3, 2, 1, 0],
            [0, 5, 0, 1, 0],
        ],
    ],
    "arch1": [
        [[1, 1, 0], [1, 3, 0], [3, 4, 0]],
        [
            [1, 1, 0, 0, 0],
            [0, 1, 1, 1, 1],
            [3, 1, 2, 3, 0],
            [3, 0, 2, 2, 0],
            [0, 1, 2, 0, 0],
            [2, 1, 1, 3, 0],
            [4, 0, 2, 2, 0],
        ],
    ],
}


def published(name: str) -> Genotype:
    """The released genotype ``name`` (``arch0`` or ``arch1``)."""
    if name not in RELEASED:
        raise GenotypeError(f"unknown published architecture {name!r}; known: {sorted(RELEASED)}")
    return DEFAULT_SPACE.from_release(RELEASED[name])


def resolve_genotype(spec: str, space: SearchSpace = DEFAULT_SPACE) -> Genotype:
    """A published name, the readable text form, or the JSON form -> genotype."""
    if spec in RELEASED:
        return published(spec)
    return space.parse(spec)
