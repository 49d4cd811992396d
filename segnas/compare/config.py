"""The ``compare`` params as a typed config, and the hash that stamps the comparison's files
(kept apart from ``segnas.compare.steps`` so that readers of the stamp import no training code)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..io import sha256_json


@dataclass(frozen=True)
class CompareConfig:
    """The ``compare`` params: N per group, the longer setup's phase 2, local workers (build
    it with ``segnas.config.load_config``; the schema holds the ranges)."""

    num_archs: int
    long_phase2_epochs: int
    workers: int

    def result_fields(self) -> dict[str, Any]:
        return {"num_archs": self.num_archs, "long_phase2_epochs": self.long_phase2_epochs}


def compare_hash(search_hash: str, config: CompareConfig) -> str:
    """16 hex digits over the search run's params hash and the compare params."""
    return sha256_json({"search": search_hash, "compare": config.result_fields()})[:16]
