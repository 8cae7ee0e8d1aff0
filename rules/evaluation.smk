# Evaluations. Per (model, checkpoint), two jobs each load the model once and run all of its
# conditions: evaluate_pairs (BLiMP, TSE and non-syntactic minimal pairs) and evaluate_text
# (perplexity, per-token surprisal with POS, the WD of the WN cohort and its controls). Each depends
# only on its own settings, so changing a pair sample size reruns only the pair jobs and what follows them.


rule evaluate_pairs:
    input:
        model=model_input,
        selection="results/selection/{model}.parquet",
        record="results/selection/{model}.json",
        # one named input per suite of negdiff.suites.SUITES (the script reads them by name)
        **{name: suite_path(name) for name in SUITES},
    output:
        metrics="results/evals/{model}/{checkpoint}/pair_metrics.parquet",
        pairs="results/evals/{model}/{checkpoint}/pairs.parquet",
        provenance=provenance_path("evaluate_pairs", "{model}", "{checkpoint}"),
    params:
        evaluation=subsection("evaluation", CONDITION_KEYS + PAIR_KEYS),
        selection=section("selection"),
        cohort=lambda wc: wc.checkpoint == cohort_checkpoint(wc.model),
        load=lambda wc: model_load(wc.model, wc.checkpoint),
        prefix=lambda wc: prefix_kwargs(wc.model, EVALUATION["prepend_bos"]),
        device=config["device"],
        code=code_fingerprint("evaluate_pairs.py"),
    log:
        log_path("evaluate_pairs", "{model}", "{checkpoint}"),
    benchmark: benchmark_path("evaluate_pairs", "{model}", "{checkpoint}")
    conda:
        ENV
    threads: EVALUATION["threads"]  # the job sets torch to these (negdiff.runtime.job)
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=GPU,
    script:
        "../workflow_scripts/evaluate_pairs.py"


rule evaluate_text:
    input:
        model=model_input,
        selection="results/selection/{model}.parquet",
        record="results/selection/{model}.json",
        ppl_text=text_file(EVALUATION["ppl_split"]),
        surprisal_text=text_file(EVALUATION["surprisal_split"]),
        surprisal_pos=gold_pos_file(EVALUATION["surprisal_split"]),
        # cohort WD (the WN cohort, its random controls and a per-layer "layer" cohort) on held-out
        # text, disjoint from the dumped tokens that selected the sets: the ppl_split text, minus its
        # first activations.max_tokens tokens when it is the activation split
        # (negdiff.cohorts.cohort_token_stream; params.activations decides the skip)
        cohort_text=text_file(EVALUATION["ppl_split"]),
    output:
        metrics="results/evals/{model}/{checkpoint}/text_metrics.parquet",
        surprisal="results/evals/{model}/{checkpoint}/surprisal.parquet",
        cohort_wd="results/evals/{model}/{checkpoint}/cohort_wd.parquet",
        provenance=provenance_path("evaluate_text", "{model}", "{checkpoint}"),
    params:
        evaluation=subsection("evaluation", CONDITION_KEYS + TEXT_KEYS),
        main_set=set_name("wn", SELECTION["main_percent"]),
        selection=section("selection"),
        activations=subsection("activations", ["split", "max_tokens"]),
        cohort=lambda wc: wc.checkpoint == cohort_checkpoint(wc.model),
        load=lambda wc: model_load(wc.model, wc.checkpoint),
        prefix=lambda wc: prefix_kwargs(wc.model, EVALUATION["prepend_bos"]),
        gold_pos=BUILTIN_DATA,
        device=config["device"],
        code=code_fingerprint("evaluate_text.py"),
    log:
        log_path("evaluate_text", "{model}", "{checkpoint}"),
    benchmark: benchmark_path("evaluate_text", "{model}", "{checkpoint}")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=GPU,
    script:
        "../workflow_scripts/evaluate_text.py"


rule collect_evals:
    input:
        pair_metrics=[f"{d}/pair_metrics.parquet" for d in EVAL_DIRS],
        text_metrics=[f"{d}/text_metrics.parquet" for d in EVAL_DIRS],
        pairs=[f"{d}/pairs.parquet" for d in EVAL_DIRS],
        surprisal=[f"{d}/surprisal.parquet" for d in EVAL_DIRS],
        cohort_wd=[f"{d}/cohort_wd.parquet" for d in EVAL_DIRS],
    output:
        metrics=f"{RUN}/tables/metrics.parquet",
        pairs=f"{RUN}/tables/pairs.parquet",
        surprisal=f"{RUN}/tables/surprisal.parquet",
        cohort_wd=f"{RUN}/tables/cohort_wd.parquet",
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
