# Terminal figure targets (PDF). Each figure states its model, data and n. What each rule draws, its
# caption and report category: negdiff/figure_registry.py (FIGURES); figure_output marks the PDF for the report.

rule figure_neuron_example:
    input:
        scores=lambda wc: f"results/scores/{EXAMPLE_MODEL}/{example_checkpoint()}.parquet",
        activations=lambda wc: f"results/activations/{EXAMPLE_MODEL}/{example_checkpoint()}",
        text=text_file(config["activations"]["split"]),
        pos=gold_pos_file(config["activations"]["split"]),
    output:
        figure_output("figure_neuron_example"),
    params:
        figures=canonical({k: config["figures"][k] for k in ("example_layer", "example_pairs", "scatter_pairs")}),
        model=EXAMPLE_MODEL,
        checkpoint=lambda wc: example_checkpoint(),
        seed=config["scoring"]["seed"],
        data=data_label(),
        spacy_model=EVALUATION["spacy_model"],
        code=code_fingerprint("figure_neuron_example.py"),
    log:
        log_path("figure_neuron_example"),
    benchmark: benchmark_path("figure_neuron_example")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    script:
        "../workflow_scripts/figure_neuron_example.py"


rule figure_negative_region:
    input:
        scores=[f"results/scores/{m}/{final_checkpoint(m)}.parquet" for m in MODELS],
    output:
        figure_output("figure_negative_region"),
    params:
        top_percent=config["figures"]["top_percent"],
        models=MODELS,
        architectures=[SPECS[m].get("architecture", "?") for m in MODELS],
        checkpoints=[final_checkpoint(m) for m in MODELS],
        data=data_label(),
        code=code_fingerprint("figure_negative_region.py"),
    log:
        log_path("figure_negative_region"),
    benchmark: benchmark_path("figure_negative_region")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    script:
        "../workflow_scripts/figure_negative_region.py"


rule figure_claims:
    input:
        metrics=f"{RUN}/tables/metrics.parquet",
        surprisal=f"{RUN}/tables/surprisal.parquet",
        cohort_wd=f"{RUN}/tables/cohort_wd.parquet",
        records=[f"results/selection/{m}.json" for m in MODELS],
    output:
        figure_output("figure_claims"),
    wildcard_constraints:
        figure="|".join(CLAIM_FIGURES),
    params:
        models=MODELS,
        architectures=[SPECS[m].get("architecture", "?") for m in MODELS],
        main_percent=SELECTION["main_percent"],
        data=data_label(),
        code=code_fingerprint("figure_claims.py"),
    log:
        log_path("figure_claims", "{figure}"),
    benchmark: benchmark_path("figure_claims", "{figure}")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    script:
        "../workflow_scripts/figure_claims.py"


rule summary_table:
    input:
        metrics=f"{RUN}/tables/metrics.parquet",
        surprisal=f"{RUN}/tables/surprisal.parquet",
        cohort_wd=f"{RUN}/tables/cohort_wd.parquet",
        pairs=f"{RUN}/tables/pairs.parquet",
        records=[f"results/selection/{m}.json" for m in MODELS],
        differentiation=[f"results/scores/{m}/{cohort_checkpoint(m)}.differentiation.parquet" for m in MODELS],
    output:
        report(f"{RUN}/tables/summary.csv", caption="../report/summary.rst", category="Summary"),
    params:
        models=MODELS,
        main_percent=SELECTION["main_percent"],
        claims=section("claims"),
        bootstrap={"n": EVALUATION["bootstrap"], "seed": EVALUATION["pairs_seed"]},
        code=code_fingerprint("summary_table.py"),
    log:
        log_path("summary_table"),
    benchmark: benchmark_path("summary_table")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    script:
        "../workflow_scripts/summary_table.py"


# Which model, software, device and input files produced each model job's outputs: one row per job
# (negdiff.provenance.provenance_table) from the records the jobs wrote beside their outputs.
PROVENANCE_JOBS = (
    [("dump_activations", m, c) for m, c in model_checkpoint_pairs()]
    + [("select_neurons", m, cohort_checkpoint(m)) for m in MODELS]
    + [(r, m, c) for m in MODELS for c in eval_checkpoints(m) for r in ("evaluate_pairs", "evaluate_text")]
)


rule provenance_table:
    input:
        [provenance_path(r, m, c) if r != "select_neurons" else provenance_path(r, m) for r, m, c in PROVENANCE_JOBS],
    output:
        report(f"{RUN}/tables/provenance.csv", caption="../report/provenance.rst", category="Summary"),
    params:
        jobs=[list(job) for job in PROVENANCE_JOBS],
        code=code_fingerprint("provenance_table.py"),
    log:
        log_path("provenance_table"),
    benchmark: benchmark_path("provenance_table")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow_scripts/provenance_table.py"


rule figure_verdicts:
    input:
        summary=f"{RUN}/tables/summary.csv",
    output:
        figure_output("figure_verdicts"),
    params:
        data=data_label(),
        margin_smallest=config["claims"]["smallest_effect"]["margin_nats"],
        code=code_fingerprint("figure_verdicts.py"),
    log:
        log_path("figure_verdicts"),
    benchmark: benchmark_path("figure_verdicts")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../workflow_scripts/figure_verdicts.py"


rule report:
    input:
        REPORTED,
    output:
        f"{RUN}/report.html",
    params:
        snakefile=workflow.main_snakefile,
        code=code_fingerprint("report.py"),
    log:
        log_path("report"),
    benchmark: benchmark_path("report")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    script:
        "../workflow_scripts/report.py"
