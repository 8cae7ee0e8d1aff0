# Pre-activation dumps: one job per (model, checkpoint), sharded safetensors plus a manifest.


rule dump_activations:
    input:
        model=model_input,
        text=text_file(config["activations"]["split"]),
    output:
        directory("results/activations/{model}/{checkpoint}"),
    params:
        # the sample only matters when keeping histograms: changing it reruns no full dump
        activations=section("activations", exclude=["checkpoints"] + ([] if DUMP_HISTOGRAMS else ["sample_tokens", "sample_seed"])),
        grid=subsection("scoring", ["bins", "z_range"]) if DUMP_HISTOGRAMS else None,
        device=config["device"],
        load=lambda wc: model_load(wc.model, wc.checkpoint),
        data=data_label(),
        code=code_fingerprint("dump_activations.py"),
    log:
        log_path("dump_activations", "{model}", "{checkpoint}"),
    benchmark: benchmark_path("dump_activations", "{model}", "{checkpoint}")
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
        gpu=GPU,
    script:
        "../workflow_scripts/dump_activations.py"
