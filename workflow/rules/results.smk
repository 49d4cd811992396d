# Result stages: train -> evaluate -> report; inputs and outputs from the stage registry
# (segnas/pipeline/stages.py), as in dvc.yaml.

# the most models the train stage trains (the search may hold fewer than top_k that fit)
TRAIN_MODELS = len(config["train"]["architectures"]) + int(config["train"]["top_k"])


rule train:
    input:
        code("train"),
        params_input("train"),
        stage_inputs("train"),
    output:
        stage_dir("train"),
    params:
        sections=stage_params("train"),
    log:
        "logs/train.log",
    # on CPU the stage trains as many models side by side as its cores hold (train.threads each);
    # Snakemake lowers a request above --cores, SLURM grants it as the job's CPUs
    threads: int(config["train"]["threads"]) * TRAIN_MODELS
    resources:
        mem_mb=8000,
        runtime=24 * 60,
        gpu=GPU,
    shell:
        stage_cmd("train")


rule evaluate:
    input:
        code("evaluate"),
        params_input("evaluate"),
        stage_inputs("evaluate"),
    output:
        report(
            stage_dir("evaluate"),
            patterns=["{name}/per_class_iou.csv"],
            caption="../report/results.rst",
            category="Trained models",
        ),
    params:
        sections=stage_params("evaluate"),
    log:
        "logs/evaluate.log",
    threads: int(config["evaluate"]["threads"])
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=GPU,
    shell:
        stage_cmd("evaluate")


rule report:
    input:
        code("report"),
        params_input("report"),
        stage_inputs("report"),
    output:
        report(
            stage_dir("report"),
            patterns=["figures/{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    params:
        sections=stage_params("report"),
    log:
        "logs/report.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    shell:
        stage_cmd("report")
