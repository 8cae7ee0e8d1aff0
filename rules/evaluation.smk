# Evaluations: one job per (model, checkpoint) loads the model once and runs all of its conditions.


rule evaluate:
    input:
        model="results/models/{model}",
        selection="results/selection/{model}.parquet",
        blimp=suite_path("blimp"),
        tse=suite_path("tse"),
        nonsyntactic=suite_path("nonsyntactic"),
        ppl_text=corpus_file(EVALUATION["ppl_split"], "txt"),
        surprisal_text=corpus_file(EVALUATION["surprisal_split"], "txt"),
        surprisal_pos=corpus_file(EVALUATION["surprisal_split"], "pos"),
        cohort_text=split_file("txt"),
    output:
        metrics="results/evals/{model}/{checkpoint}/metrics.parquet",
        surprisal="results/evals/{model}/{checkpoint}/surprisal.parquet",
        cohort_wd="results/evals/{model}/{checkpoint}/cohort_wd.parquet",
    params:
        evaluation=section("evaluation", exclude=["checkpoints"]),
        main_set=f"wn@{SELECTION['main_percent']:g}",
        conditions=lambda wc: eval_conditions(wc.model, wc.checkpoint),
        n_layers=lambda wc: n_layers(wc.model),
        device=config["device"],
        code=code_fingerprint("evaluation", "evals", "interventions", "scoring", "models", "tokenizer", "corpus", "conditions", "data", "io", "runtime"),
    log:
        log_path("evaluate", "{model}", "{checkpoint}"),
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
        code=code_fingerprint("io", "runtime"),
    log:
        log_path("collect_evals"),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    script:
        "../workflow_scripts/collect_evals.py"
