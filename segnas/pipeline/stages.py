"""The pipeline's stages, in the order they run (``dvc.yaml`` and the Snakefile follow it)."""

from __future__ import annotations

STAGES = ("prepare", "split", "cache_stem", "search", "compare", "train", "evaluate", "report")
