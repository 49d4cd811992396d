# segnas pipeline for Snakemake: the same stages, inputs and outputs as dvc.yaml, with the search
# fanned out into per-round jobs (workflow/rules/search.smk). Every rule reruns when its code
# (stage script + the segnas modules it imports), its inputs or the params sections it reads
# change, the last also after a DVC run (each stage's params file, common.smk's params_input).
# Run: snakemake --profile workflow/profiles/local   (see docs/pipeline.md)
from snakemake.utils import min_version

min_version("8.20")


configfile: "params.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/search.smk"
include: "workflow/rules/compare.smk"
include: "workflow/rules/results.smk"


rule all:
    input:
        rules.report.output,
    default_target: True
