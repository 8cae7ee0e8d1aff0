# Built-in corpus (seeded grammar) and the BPE tokenizer trained on it.


rule make_corpus:
    output:
        text=expand(RESULTS + "/corpus/{split}.txt", split=SPLITS),
        pos=expand(RESULTS + "/corpus/{split}.pos", split=SPLITS),
        blimp=directory(RESULTS + "/corpus/blimp"),
        tse=directory(RESULTS + "/corpus/tse"),
        nonsyntactic=directory(RESULTS + "/corpus/nonsyntactic"),
        manifest=RESULTS + "/corpus/manifest.json",
    params:
        corpus=config["corpus"],
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
        train=RESULTS + "/corpus/train.txt",
    output:
        directory(RESULTS + "/tokenizer"),
    params:
        tokenizer=config["tokenizer"],
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
