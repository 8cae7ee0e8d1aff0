# Evaluations: one job per (model, checkpoint) loads the model once and runs all of its conditions.


rule evaluate:
    input:
        model=model_input,
        selection="results/selection/{model}.parquet",
        record="results/selection/{model}.json",
        blimp=suite_path("blimp"),
        tse=suite_path("tse"),
        nonsyntactic=suite_path("nonsyntactic"),
        ppl_text=text_file(EVALUATION["ppl_split"]),
        surprisal_text=text_file(EVALUATION["surprisal_split"]),
        surprisal_pos=gold_pos_file(EVALUATION["surprisal_split"]),
        cohort_text=text_file(config["activations"]["split"]),
    output:
        metrics="results/evals/{model}/{checkpoint}/metrics.parquet",
        surprisal="results/evals/{model}/{checkpoint}/surprisal.parquet",
        cohort_wd="results/evals/{model}/{checkpoint}/cohort_wd.parquet",
    params:
        evaluation=section("evaluation", exclude=["checkpoints"]),
        main_set=f"wn@{SELECTION['main_percent']:g}",
        selection=section("selection"),
        cohort=lambda wc: wc.checkpoint == cohort_checkpoint(wc.model),
        load=lambda wc: model_load(wc.model, wc.checkpoint),
        gold_pos=BUILTIN_DATA,
        device=config["device"],
        code=code_fingerprint("evaluate.py"),
    log:
        log_path("evaluate", "{model}", "{checkpoint}"),
    benchmark: benchmark_path("evaluate", "{model}", "{checkpoint}")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=GPU,
    script:
        "../workflow_scripts/evaluate.py"


rule collect_evals:
    input:
        metrics=[f"{d}/metrics.parquet" for d in EVAL_DIRS],
        surprisal=[f"{d}/surprisal.parquet" for d in EVAL_DIRS],
        cohort_wd=[f"{d}/cohort_wd.parquet" for d in EVAL_DIRS],
    output:
        metrics="results/tables/metrics.parquet",
        surprisal="results/tables/surprisal.parquet",
        cohort_wd="results/tables/cohort_wd.parquet",
    params:
        code=code_fingerprint("collect_evals.py"),
    log:
        log_path("collect_evals"),
    benchmark: benchmark_path("collect_evals")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    script:
        "../workflow_scripts/collect_evals.py"
