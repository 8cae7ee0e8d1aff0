# Wasserstein distance, mapping difficulty and moments per neuron, in polars over lazily read shards.


rule score_neurons:
    input:
        "results/activations/{model}/{checkpoint}",
    output:
        "results/scores/{model}/{checkpoint}.parquet",
    params:
        # keyword arguments of negdiff.scoring.score_layer, under the config's names; the z-grid only
        # matters in streaming mode: changing it reruns scoring only there
        scoring=section("scoring", exclude=["differentiation_top_k"] + ([] if config["scoring"]["mode"] == "streaming" else ["bins", "z_range"])),
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


# Negative differentiation per neuron (claim C8): the share of each neuron's sharpest MD-pair separations
# (close inputs, far-apart pre-activations) that lies in its negative range; see negdiff/differentiation.py.
# Its output also matches score_neurons' pattern (checkpoint "X.differentiation"): this rule wins.
ruleorder: differentiation > score_neurons


rule differentiation:
    input:
        activations="results/activations/{model}/{checkpoint}",
        scores="results/scores/{model}/{checkpoint}.parquet",
        text=text_file(config["activations"]["split"]),
        pos=gold_pos_file(config["activations"]["split"]),
    output:
        "results/scores/{model}/{checkpoint}.differentiation.parquet",
    params:
        scoring=subsection("scoring", ["seed", "md_pairs", "differentiation_top_k"]),
        spacy_model=EVALUATION["spacy_model"],
        code=code_fingerprint("differentiation.py"),
    log:
        log_path("differentiation", "{model}", "{checkpoint}"),
    benchmark: benchmark_path("differentiation", "{model}", "{checkpoint}")
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=8000,
        runtime=120,
    script:
        "../workflow_scripts/differentiation.py"
