"""Where a search's files live (pure paths, no torch: the Snakemake rules read it too)."""

from __future__ import annotations

from pathlib import Path


class SearchLayout:
    """File names under the search directory. A round or index given as text (a Snakemake
    wildcard such as ``"{round}"``) is used as it is, so the rules take their file patterns
    from here."""

    def __init__(self, root: str | Path = "search") -> None:
        self.root = Path(root)

    @property
    def state(self) -> Path:
        return self.root / "state.json"

    @property
    def rounds_dir(self) -> Path:
        return self.root / "rounds"

    @property
    def controller_dir(self) -> Path:
        return self.root / "controller"

    def round_dir(self, round_index: int | str) -> Path:
        return self.rounds_dir / f"r{padded(round_index, 5)}"

    def samples(self, round_index: int | str) -> Path:
        return self.round_dir(round_index) / "samples.json"

    def evaluation(self, round_index: int | str, index: int | str) -> Path:
        return self.round_dir(round_index) / f"e{padded(index, 4)}.json"

    def checkpoint(self, round_index: int | str) -> Path:
        return self.controller_dir / f"round_{padded(round_index, 5)}.pt"

    @property
    def final_checkpoint(self) -> Path:
        return self.controller_dir / "final.pt"

    @property
    def archs_csv(self) -> Path:
        return self.root / "archs.csv"

    @property
    def timings_csv(self) -> Path:
        return self.root / "timings.csv"

    @property
    def controller_csv(self) -> Path:
        return self.root / "controller.csv"

    @property
    def top(self) -> Path:
        return self.root / "top.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def assembled(self) -> tuple[Path, ...]:
        """What the search's last step writes from its rounds."""
        return (self.archs_csv, self.timings_csv, self.controller_csv, self.top, self.metrics)


def padded(value: int | str, digits: int) -> str:
    """``value`` zero-padded to ``digits``; text (a wildcard) as it is."""
    return value if isinstance(value, str) else f"{value:0{digits}d}"
