# Pre-activation dumps: one job per (model, checkpoint), sharded safetensors plus a manifest.


# Keyword arguments of negdiff.activations.dump_activations from the activations section, under its names:
# layers ("all" is None), window (model positions, BOS included), stride, ... and the token sample only when
# keeping histograms (changing it then reruns no full dump). The job adds what needs the tokenizer or the
# scoring grid: bos_token_id (prepend_bos; the model's bos_token, params.prefix), grid and meta.
DUMP_KWARGS = canonical(
    {k: config["activations"][k] for k in ["window", "stride", "max_tokens", "tokens_per_shard", "dtype",
                                           "capture_mlp_input", "batch_size", "keep"]}
    | ({k: config["activations"][k] for k in ["sample_tokens", "sample_seed"]} if DUMP_HISTOGRAMS else {})
    | {"layers": None if config["activations"]["layers"] == "all" else list(config["activations"]["layers"])}
)


rule dump_activations:
    input:
        model=model_input,
        text=text_file(config["activations"]["split"]),
    output:
        dump=directory("results/activations/{model}/{checkpoint}"),
        provenance=provenance_path("dump_activations", "{model}", "{checkpoint}"),
    params:
        dump=DUMP_KWARGS,
        # keyword arguments of negdiff.tokenizer.use_prefix_token (None: prepend_bos is off)
        prefix=lambda wc: prefix_kwargs(wc.model, config["activations"]["prepend_bos"]),
        split=config["activations"]["split"],
        # the z-grid of keep: histograms (negdiff.streaming.Grid keywords), else none
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
