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
        code=code_fingerprint("corpus", "io", "runtime"),
    log:
        log_path("make_corpus"),
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
        code=code_fingerprint("tokenizer", "io", "runtime"),
    log:
        log_path("train_tokenizer"),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../workflow_scripts/train_tokenizer.py"
