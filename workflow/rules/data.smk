# Data stages: prepare -> split -> cache_stem (same commands, inputs and outputs as dvc.yaml).


rule prepare:
    input:
        code("prepare"),
    output:
        directory("data/prepared"),
    params:
        sections=stage_params("prepare"),
    log:
        "logs/prepare.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        stage_cmd("prepare")


rule split:
    input:
        code("split"),
        "data/prepared",
    output:
        directory("data/split"),
    params:
        sections=stage_params("split"),
    log:
        "logs/split.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        stage_cmd("split")


rule cache_stem:
    input:
        code("cache_stem"),
        "data/prepared",
        "data/split",
    output:
        directory("cache/stem"),
    params:
        sections=stage_params("cache_stem"),
    log:
        "logs/cache_stem.log",
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        stage_cmd("cache_stem")
