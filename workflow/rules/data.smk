# Data stages: prepare -> split -> cache_stem; inputs and outputs from the stage registry
# (segnas/pipeline/stages.py), as in dvc.yaml.


rule prepare:
    input:
        code("prepare"),
        params_input("prepare"),
        stage_inputs("prepare"),
    output:
        stage_dir("prepare"),
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
        params_input("split"),
        stage_inputs("split"),
    output:
        stage_dir("split"),
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
        params_input("cache_stem"),
        stage_inputs("cache_stem"),
    output:
        stage_dir("cache_stem"),
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
