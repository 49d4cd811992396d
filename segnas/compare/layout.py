"""Where the comparison's files live (pure paths, no torch: the Snakemake rules read it too)."""

from __future__ import annotations

from pathlib import Path

from ..search.layout import padded

GROUPS = ("controller", "random")
SETUPS = ("search", "long")


class CompareLayout:
    """File names under the compare directory. A group, setup or index given as a Snakemake
    wildcard (``"{index}"``) is used as it is, so the rules take their file patterns from
    here."""

    def __init__(self, root: str | Path = "compare") -> None:
        self.root = Path(root)

    @property
    def samples(self) -> Path:
        return self.root / "samples.json"

    @property
    def evals_dir(self) -> Path:
        return self.root / "evals"

    def evaluation(self, group: str, setup: str, index: int | str) -> Path:
        return self.evals_dir / f"{group}_{setup}_{padded(index, 4)}.json"

    @property
    def csv(self) -> Path:
        return self.root / "compare.csv"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    def jobs(self, num_archs: int) -> list[tuple[str, str, int]]:
        """Every (group, setup, index) trial of a comparison of ``num_archs`` per group."""
        return [(g, s, i) for g in GROUPS for s in SETUPS for i in range(num_archs)]
