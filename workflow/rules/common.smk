# Shared helpers for the segnas rules: params validation, per-rule params (from the stage
# registry, segnas/pipeline/stages.py) and code dependencies.
import json

from segnas.config import load_params, validate_params
from segnas.errors import SegnasError
from segnas.pipeline.deps import stage_code_deps
from segnas.pipeline.ruleparams import made_path, params_file
from segnas.pipeline.stages import stage
from segnas.compare.layout import GROUPS, SETUPS, CompareLayout
from segnas.pipeline.paths import COMPARE as COMPARE_DIR
from segnas.pipeline.paths import SEARCH as SEARCH_DIR
from segnas.search.layout import SearchLayout

PARAMS_FILE = "params.yaml"

validate_params(config, PARAMS_FILE)
if config != load_params(PARAMS_FILE):
    raise ValueError(
        f"the Snakemake config differs from {PARAMS_FILE}; the stages read {PARAMS_FILE} only, "
        "so edit it (or run `segnas config use NAME`) instead of passing --config/--configfile"
    )

# Optional: run every job inside the project image (snakemake --sdm apptainer); see
# docs/pipeline.md. Without --sdm apptainer this is ignored.
container: "docker://localhost/segnas:latest"


def code(stage):
    """The stage script and the segnas modules it imports (missing script: just its path)."""
    try:
        return stage_code_deps(stage)
    except SegnasError:
        return [f"stages/{stage}.py"]


def stage_params(name):
    """The params that decide a stage's results (segnas/pipeline/stages.py), as canonical JSON:
    the rule's rerun trigger."""
    return json.dumps(stage(name).params(config), sort_keys=True)


def stage_inputs(name):
    """The stage's inputs, as the stage registry declares them."""
    return list(stage(name).inputs)


def stage_dir(name):
    """The stage's one output folder, as the stage registry declares it."""
    (output,) = stage(name).outputs
    return directory(output.path)


GPU = 1 if str(config["device"]).startswith("cuda") else 0


_PARAMS_FILES = {}


def params_input(name):
    """The file holding stage ``name``'s params (segnas/pipeline/ruleparams.py): an input of
    each of its rules, rewritten only when those params change, so that Snakemake reruns the
    stage after a params edit even where DVC made the outputs (no Snakemake metadata)."""
    if name not in _PARAMS_FILES:
        _PARAMS_FILES[name] = params_file(name, config, params_path=PARAMS_FILE)
    return _PARAMS_FILES[name]


def made(name):
    """Shell to append to a stage's last rule: record the params its outputs are now made with
    (segnas/pipeline/ruleparams.py)."""
    return f" && cp {params_input(name)} {made_path(name)}"


def stage_cmd(stage):
    """The command both engines run for a stage (progress to the terminal and the log), then
    the record of its params."""
    return f"python stages/{stage}.py --params {PARAMS_FILE} 2>&1 | tee {{log}}{made(stage)}"


# Where the fan-outs' files live: the library's layouts
# (segnas.search.layout, segnas.compare.layout).
SEARCH_LAYOUT = SearchLayout(SEARCH_DIR)
COMPARE_LAYOUT = CompareLayout(COMPARE_DIR)


# Search fan-out helpers (workflow/rules/search.smk; kept here as Snakemake's lint asks).
def _previous_checkpoint(wildcards):
    r = int(wildcards.round)
    return [] if r == 0 else [str(SEARCH_LAYOUT.checkpoint(r - 1))]


def _round_evaluations(wildcards):
    round_index = int(wildcards.round)
    return [str(SEARCH_LAYOUT.evaluation(round_index, i)) for i in range(SEARCH_B)]
