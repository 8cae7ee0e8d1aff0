# Tiny models trained from scratch on the built-in corpus, saved at log-spaced checkpoints.


rule train_model:
    input:
        tokenizer="results/tokenizer",
        train="results/corpus/train.txt",
        valid="results/corpus/valid.txt",
    output:
        directory("results/models/{model}"),
    wildcard_constraints:
        model="|".join(TRAIN_MODELS) or "NO_TRAINED_MODELS",
    params:
        model=lambda wc: canonical(config["models"][wc.model]),
        training=section("training"),
        checkpoints=lambda wc: checkpoint_steps(config["training"]["steps"], config["training"]["first_checkpoint"]),
        code=code_fingerprint("train_model.py"),
    log:
        log_path("train_model", "{model}"),
    benchmark: benchmark_path("train_model", "{model}")
    conda:
        ENV
    threads: config["training"]["threads"]
    resources:
        mem_mb=4000,
        runtime=120,
        gpu=0,
    script:
        "../workflow_scripts/train_model.py"
