# Pre-activation dumps: one job per (model, checkpoint), sharded safetensors plus a manifest.


rule dump_activations:
    input:
        model="results/models/{model}",
        text=split_file("txt"),
    output:
        directory("results/activations/{model}/{checkpoint}"),
    params:
        activations=section("activations", exclude=["checkpoints"]),
        device=config["device"],
        source=lambda wc: canonical(config["models"][wc.model]),
        code=code_fingerprint("activations", "models", "tokenizer", "data", "io", "runtime"),
    log:
        log_path("dump_activations", "{model}", "{checkpoint}"),
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=GPU,
    script:
        "../workflow_scripts/dump_activations.py"
