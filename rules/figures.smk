# Terminal figure targets (PDF). Each figure states its model, data and n.

EXAMPLE_MODEL = config["figures"]["example_model"]


def example_checkpoint():
    return analysis_checkpoints(EXAMPLE_MODEL)[-1]


rule figure_neuron_example:
    input:
        scores=lambda wc: f"{RESULTS}/scores/{EXAMPLE_MODEL}/{example_checkpoint()}.parquet",
        activations=lambda wc: f"{RESULTS}/activations/{EXAMPLE_MODEL}/{example_checkpoint()}",
        text=RESULTS + "/corpus/" + config["activations"]["split"] + ".txt",
        pos=RESULTS + "/corpus/" + config["activations"]["split"] + ".pos",
    output:
        RESULTS + "/figures/neuron_example.pdf",
    params:
        figures={k: config["figures"][k] for k in ("example_layer", "example_pairs", "scatter_pairs")},
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
        scores=[f"{RESULTS}/scores/{m}/{final_checkpoint(m)}.parquet" for m in MODELS],
    output:
        RESULTS + "/figures/negative_region.pdf",
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


FINAL_TARGETS = [
    RESULTS + "/figures/neuron_example.pdf",
    RESULTS + "/figures/negative_region.pdf",
] + [f"{RESULTS}/scores/{m}/{c}.parquet" for m, c in model_checkpoint_pairs()]
