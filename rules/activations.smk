# Pre-activation dumps: one job per (model, checkpoint), sharded safetensors plus a manifest.


rule dump_activations:
    input:
        model="results/models/{model}",
        text=split_file("txt"),
    output:
        directory("results/activations/{model}/{checkpoint}"),
    params:
        activations={k: v for k, v in config["activations"].items() if k != "checkpoints"},
        device=config["device"],
        source=lambda wc: config["models"][wc.model],
        code=code_fingerprint("activations", "models", "data", "io", "runtime"),
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
