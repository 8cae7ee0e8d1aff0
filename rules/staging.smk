# Staging (staging.enabled): hub models and hub suites fetched once, on the submitting host, before any
# GPU job. `snakemake --configfile config/paper.yaml stage` on the login node (network, no GPU) does both;
# the model jobs then read only local files and run with HF_HUB_OFFLINE=1 (negdiff.staging).


rule fetch_model:
    output:
        staged_model_record("{model}"),
    wildcard_constraints:
        model="|".join(HUB_MODELS) or "NO_HUB_MODELS",
    params:
        path=lambda wc: SPECS[wc.model]["path"],
        revisions=lambda wc: list(SPECS[wc.model]["revisions"]),
        cache_dir=STAGING["cache_dir"],
        code=code_fingerprint("fetch_model.py"),
    log:
        log_path("fetch_model", "{model}"),
    benchmark: benchmark_path("fetch_model", "{model}")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
        runtime=240,
        gpu=0,
    script:
        "../workflow_scripts/fetch_model.py"


rule prepare_suite:
    output:
        directory(staged_suite_dir("{suite}")),
    wildcard_constraints:
        suite="|".join(HUB_SUITES) or "NO_HUB_SUITES",
    params:
        where=lambda wc: EVALUATION["suites"][wc.suite],
        revision=lambda wc: STAGING["suite_revisions"].get(wc.suite),
        code=code_fingerprint("prepare_suite.py"),
    log:
        log_path("prepare_suite", "{suite}"),
    benchmark: benchmark_path("prepare_suite", "{suite}")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=0,
    script:
        "../workflow_scripts/prepare_suite.py"


rule prepare_lmeval:
    output:
        "results/staging/lmeval-{suite}.json",
    wildcard_constraints:
        suite="|".join(LMEVAL_SUITES) or "NO_LMEVAL_SUITES",
    params:
        tasks=lambda wc: list(EVALUATION["suites"][wc.suite]),
        include_path=EVALUATION["lmeval"]["include_path"],
        code=code_fingerprint("prepare_lmeval.py"),
    log:
        log_path("prepare_lmeval", "{suite}"),
    benchmark: benchmark_path("prepare_lmeval", "{suite}")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=0,
    script:
        "../workflow_scripts/prepare_lmeval.py"


# Everything that needs the network: staged models and suites, lm-eval task datasets (into the datasets
# cache, HF_DATASETS_CACHE, shared with the compute nodes) and hub text (prepare_text, data.source: hf).
rule stage:
    input:
        [staged_model_record(m) for m in HUB_MODELS],
        [staged_suite_dir(s) for s in HUB_SUITES],
        [f"results/staging/lmeval-{s}.json" for s in LMEVAL_SUITES] if STAGING["enabled"] else [],
        [text_file(s) for s in SPLITS] if config["data"]["source"] == "hf" else [],
