# Compare stage fanned out like the search: one `compare_sample` job draws N architectures from
# the trained controller and N uniformly, 4N `compare_trial` jobs (group x setup x index,
# spread by the executor: local cores or SLURM) train and score them, and `compare` assembles
# compare/compare.csv and compare/metrics.json. Every job runs the same library step as the
# local `python stages/compare.py`, so both give identical results (docs/results.md).
# Needs from common.smk: code(), params_input(), made(), stage_params(), GPU, GROUPS, SETUPS,
# SEARCH_LAYOUT, COMPARE_LAYOUT; from search.smk: SEARCH_DATA, SEARCH_EVAL.
COMPARE = config["compare"]
# every file pattern of the fan-out comes from the library's layout (common.smk's COMPARE_LAYOUT)
COMPARE_SAMPLES = str(COMPARE_LAYOUT.samples)
COMPARE_TRIAL = str(COMPARE_LAYOUT.evaluation("{group}", "{setup}", "{index}"))
COMPARE_CONTROLLER = str(SEARCH_LAYOUT.final_checkpoint)
# The params that decide the results (not how the jobs run): the rules' rerun trigger.
COMPARE_PARAMS = stage_params("compare")
COMPARE_JOBS = [str(COMPARE_LAYOUT.evaluation(*job)) for job in COMPARE_LAYOUT.jobs(COMPARE["num_archs"])]


wildcard_constraints:
    group="|".join(GROUPS),
    setup="|".join(SETUPS),


rule compare_sample:
    input:
        code("compare"),
        params_input("compare"),
        SEARCH_DATA,
        COMPARE_CONTROLLER,
    output:
        COMPARE_SAMPLES,
    params:
        sections=COMPARE_PARAMS,
    log:
        "logs/compare/sample.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
        gpu=0,
    shell:
        "python stages/compare.py --params params.yaml sample 2>&1 | tee {log}"


rule compare_trial:
    input:
        code("compare"),
        params_input("compare"),
        SEARCH_DATA,
        COMPARE_CONTROLLER,
        samples=COMPARE_SAMPLES,
    output:
        COMPARE_TRIAL,
    params:
        sections=COMPARE_PARAMS,
    log:
        "logs/compare/{group}_{setup}_{index}.log",
    threads: int(SEARCH_EVAL["threads"])
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=GPU,
    shell:
        "python stages/compare.py --params params.yaml trial --group {wildcards.group}"
        " --setup {wildcards.setup} --index {wildcards.index} 2>&1 | tee {log}"


rule compare:
    input:
        code("compare"),
        params_input("compare"),
        SEARCH_DATA,
        COMPARE_CONTROLLER,
        COMPARE_JOBS,
        samples=COMPARE_SAMPLES,
    output:
        csv=report(
            str(COMPARE_LAYOUT.csv), caption="../report/compare.rst", category="Controller vs random"
        ),
        metrics=str(COMPARE_LAYOUT.metrics),
    params:
        sections=COMPARE_PARAMS,
    log:
        "logs/compare/assemble.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
        gpu=0,
    shell:
        f"python stages/compare.py --params params.yaml assemble 2>&1 | tee {{log}}{made('compare')}"
