# Built-in corpus (seeded grammar) and the BPE tokenizer trained on it.


rule make_corpus:
    output:
        text=expand("results/corpus/{split}.txt", split=SPLITS),
        pos=expand("results/corpus/{split}.pos", split=SPLITS),
        blimp=directory("results/corpus/blimp"),
        tse=directory("results/corpus/tse"),
        nonsyntactic=directory("results/corpus/nonsyntactic"),
        manifest="results/corpus/manifest.json",
    params:
        corpus=section("corpus"),
        code=code_fingerprint("make_corpus.py"),
    log:
        log_path("make_corpus"),
    benchmark: benchmark_path("make_corpus")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../workflow_scripts/make_corpus.py"


rule train_tokenizer:
    input:
        train="results/corpus/train.txt",
    output:
        directory("results/tokenizer"),
    params:
        tokenizer=section("tokenizer"),
        code=code_fingerprint("train_tokenizer.py"),
    log:
        log_path("train_tokenizer"),
    benchmark: benchmark_path("train_tokenizer")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../workflow_scripts/train_tokenizer.py"


rule prepare_text:
    input:
        split_source,
    output:
        text=f"{RUN}/text/{{split}}.txt",
        record=f"{RUN}/text/{{split}}.json",
    wildcard_constraints:
        split="train|valid|test",
    params:
        data=lambda wc: split_data(wc.split),
        code=code_fingerprint("prepare_text.py"),
    log:
        log_path("prepare_text", "{split}"),
    benchmark: benchmark_path("prepare_text", "{split}")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../workflow_scripts/prepare_text.py"
