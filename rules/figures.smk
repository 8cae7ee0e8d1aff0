# Terminal figure targets (PDF). Each figure states its model, data and n.

rule figure_neuron_example:
    input:
        scores=lambda wc: f"results/scores/{EXAMPLE_MODEL}/{example_checkpoint()}.parquet",
        activations=lambda wc: f"results/activations/{EXAMPLE_MODEL}/{example_checkpoint()}",
        text=split_file("txt"),
        pos=split_file("pos"),
    output:
        "results/figures/neuron_example.pdf",
    params:
        figures=canonical({k: config["figures"][k] for k in ("example_layer", "example_pairs", "scatter_pairs")}),
        model=EXAMPLE_MODEL,
        checkpoint=lambda wc: example_checkpoint(),
        seed=config["scoring"]["seed"],
        code=code_fingerprint("figures", "scoring", "activations", "corpus", "io", "runtime"),
    log:
        log_path("figure_neuron_example"),
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
        "results/figures/negative_region.pdf",
    params:
        top_percent=config["figures"]["top_percent"],
        models=MODELS,
        architectures=[config["models"][m]["architecture"] for m in MODELS],
        checkpoints=[final_checkpoint(m) for m in MODELS],
        code=code_fingerprint("figures", "scoring", "io", "runtime"),
    log:
        log_path("figure_negative_region"),
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=4000,
        runtime=20,
    script:
        "../workflow_scripts/figure_negative_region.py"
