# Compare stage fanned out like the search: one `compare_sample` job draws N architectures from
# the trained controller and N uniformly, 4N `compare_trial` jobs (group x setup x index,
# spread by the executor: local cores or SLURM) train and score them, and `compare` assembles
# compare/compare.csv and compare/metrics.json. Every job runs the same library step as the
# local `python stages/compare.py`, so both give identical results (docs/results.md).
# Needs from common.smk: PARAMS_FILE, code(), params_input(), made(), stage_params(); from search.smk: SEARCH_DATA, SEARCH_EVAL.
COMPARE = config.get("compare") or {}
COMPARE_N = int(COMPARE.get("num_archs", 20))
COMPARE_CONTROLLER = COMPARE.get("controller", "search/controller/final.pt")
COMPARE_GPU = 1 if str(config.get("device", "cpu")).startswith("cuda") else 0
# The params that decide the results (not how the jobs run): the rules' rerun trigger.
COMPARE_PARAMS = stage_params("compare")
COMPARE_JOBS = [
    f"compare/evals/{group}_{setup}_{index:04d}.json"
    for group in ("controller", "random")
    for setup in ("search", "long")
    for index in range(COMPARE_N)
]


wildcard_constraints:
    group=r"controller|random",
    setup=r"search|long",


rule compare_sample:
    input:
        code("compare"),
        params_input("compare"),
        SEARCH_DATA,
        COMPARE_CONTROLLER,
    output:
        "compare/samples.json",
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
        samples="compare/samples.json",
    output:
        "compare/evals/{group}_{setup}_{index}.json",
    params:
        sections=COMPARE_PARAMS,
    log:
        "logs/compare/{group}_{setup}_{index}.log",
    threads: int(SEARCH_EVAL.get("threads", 1))
    resources:
        mem_mb=4000,
        runtime=240,
        gpu=COMPARE_GPU,
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
        samples="compare/samples.json",
    output:
        csv=report(
            "compare/compare.csv", caption="../report/compare.rst", category="Controller vs random"
        ),
        metrics="compare/metrics.json",
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
