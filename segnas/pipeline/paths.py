"""Where the stages keep their artifacts, relative to the repository root (written once, here).

The stage registry declares these as inputs and outputs; the stage scripts read and write them.
"""

from __future__ import annotations

from pathlib import Path

from ..search.layout import SearchLayout

PREPARED = Path("data/prepared")
SPLIT = Path("data/split")
STEM_CACHE = Path("cache/stem")
SEARCH = Path("search")
COMPARE = Path("compare")
MODELS = Path("models")
RESULTS = Path("results")
REPORT = Path("report")
# the search's trained controller, compare's input
SEARCH_CONTROLLER = SearchLayout(SEARCH).final_checkpoint
# the paper's published numbers the report shows beside ours (segnas.report.base reads it)
PAPER_RESULTS = Path("segnas/report/paper_results.yaml")

PROJECT_FILES = ("params.yaml", "dvc.yaml")


def require_project_root(script: str | Path) -> None:
    """Refuse to run the stage ``script`` anywhere but a project root (a folder holding
    params.yaml or dvc.yaml): every path above is relative to the current directory, so a
    stage run elsewhere would read and write the wrong folders ("run prepare first")."""
    from ..errors import ConfigError

    cwd = Path.cwd()
    if any((cwd / name).exists() for name in PROJECT_FILES):
        return
    root = Path(script).resolve().parent.parent
    raise ConfigError(
        f"the current directory {cwd} is not a project root (it has no params.yaml or "
        f"dvc.yaml); stages run from the project root: cd {root} and rerun "
        f"python stages/{Path(script).name} --params params.yaml"
    )
