"""Where the stages keep their artifacts, relative to the repository root (written once, here).

The stage registry declares these as inputs and outputs; the stage scripts read and write them.
"""

from __future__ import annotations

from pathlib import Path

PREPARED = Path("data/prepared")
SPLIT = Path("data/split")
STEM_CACHE = Path("cache/stem")
SEARCH = Path("search")
COMPARE = Path("compare")
MODELS = Path("models")
RESULTS = Path("results")
REPORT = Path("report")
