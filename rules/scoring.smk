# Wasserstein distance, mapping difficulty and moments per neuron, in polars over lazily read shards.


rule score_neurons:
    input:
        "results/activations/{model}/{checkpoint}",
    output:
        "results/scores/{model}/{checkpoint}.parquet",
    params:
        # the z-grid only matters in streaming mode: changing it reruns scoring only there
        scoring=section("scoring", exclude=[] if config["scoring"]["mode"] == "streaming" else ["bins", "z_range"]),
        code=code_fingerprint("score_neurons.py"),
    log:
        log_path("score_neurons", "{model}", "{checkpoint}"),
    benchmark: benchmark_path("score_neurons", "{model}", "{checkpoint}")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    script:
        "../workflow_scripts/score_neurons.py"
