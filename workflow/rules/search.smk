# Search stage fanned out into per-round jobs: for each round r one `search_sample` job, B
# `search_trial` jobs (one per architecture, spread by the executor: local cores or SLURM)
# and one `search_update` job (PPO); then `search` assembles search/archs.csv, timings.csv,
# controller.csv, top.json, metrics.json and controller/final.pt. Every job runs the same library
# step as the local pool of `python stages/search.py`, so both give identical archs.csv
# (docs/search.md).
# Needs from common.smk: code(), params_input(), made(), stage_params(), SEARCH_LAYOUT,
# _previous_checkpoint(), _round_evaluations().
SEARCH = config["search"]
# every file pattern of the fan-out comes from the library's layout (common.smk's SEARCH_LAYOUT)
SAMPLES = str(SEARCH_LAYOUT.samples("{round}"))
TRIAL = str(SEARCH_LAYOUT.evaluation("{round}", "{index}"))
CHECKPOINT = str(SEARCH_LAYOUT.checkpoint("{round}"))
SEARCH_ROUNDS = int(SEARCH["rounds"])
SEARCH_B = int(SEARCH["archs_per_round"])
SEARCH_EVAL = SEARCH["eval"]
SEARCH_GPU = GPU
SEARCH_TRAINS = SEARCH["objective"] == "train"
SEARCH_DATA = stage_inputs("search") if SEARCH_TRAINS else []
# The params that decide the results (not how the jobs run): the rules' rerun trigger.
SEARCH_PARAMS = stage_params("search")


wildcard_constraints:
    round=r"\d{5}",
    index=r"\d{4}",


rule search_sample:
    input:
        code("search"),
        params_input("search"),
        SEARCH_DATA,
        _previous_checkpoint,
    output:
        SAMPLES,
    params:
        sections=SEARCH_PARAMS,
    log:
        "logs/search/r{round}_sample.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
        gpu=0,
    shell:
        "python stages/search.py --params params.yaml sample --round {wildcards.round} 2>&1 | tee {log}"


rule search_trial:
    input:
        code("search"),
        params_input("search"),
        SEARCH_DATA,
        samples=SAMPLES,
    output:
        TRIAL,
    params:
        sections=SEARCH_PARAMS,
    log:
        "logs/search/r{round}_e{index}.log",
    threads: int(SEARCH_EVAL["threads"])
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=SEARCH_GPU,
    shell:
        "python stages/search.py --params params.yaml trial --round {wildcards.round}"
        " --index {wildcards.index} 2>&1 | tee {log}"


rule search_update:
    input:
        code("search"),
        params_input("search"),
        SEARCH_DATA,
        _previous_checkpoint,
        _round_evaluations,
        samples=SAMPLES,
    output:
        CHECKPOINT,
    params:
        sections=SEARCH_PARAMS,
    log:
        "logs/search/r{round}_update.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
        gpu=0,
    shell:
        "python stages/search.py --params params.yaml update --round {wildcards.round} 2>&1 | tee {log}"


rule search:
    input:
        code("search"),
        params_input("search"),
        SEARCH_DATA,
        [
            str(SEARCH_LAYOUT.evaluation(r, i))
            for r in range(SEARCH_ROUNDS)
            for i in range(SEARCH_B)
        ],
        str(SEARCH_LAYOUT.checkpoint(SEARCH_ROUNDS - 1)),
    output:
        archs=report(
            str(SEARCH_LAYOUT.archs_csv), caption="../report/search_archs.rst", category="Search"
        ),
        timings=str(SEARCH_LAYOUT.timings_csv),
        controller_stats=report(
            str(SEARCH_LAYOUT.controller_csv),
            caption="../report/search_controller.rst",
            category="Search",
        ),
        top=str(SEARCH_LAYOUT.top),
        metrics=str(SEARCH_LAYOUT.metrics),
        controller=str(SEARCH_LAYOUT.final_checkpoint),
    params:
        sections=SEARCH_PARAMS,
    log:
        "logs/search/assemble.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
        gpu=0,
    shell:
        f"python stages/search.py --params params.yaml assemble 2>&1 | tee {{log}}{made('search')}"
