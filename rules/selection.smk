# Neuron sets per model: WNs at each percent, same-count random controls, and the perplexity-matched control.


rule select_neurons:
    input:
        scores=lambda wc: f"results/scores/{wc.model}/{cohort_checkpoint(wc.model)}.parquet",
        model=model_input,
        ppl_text=text_file(EVALUATION["ppl_split"]),
    output:
        table="results/selection/{model}.parquet",
        record="results/selection/{model}.json",
        provenance=provenance_path("select_neurons", "{model}"),
    params:
        # seed and percents; the sets planned (negdiff.conditions.selection_sets) are built by their methods
        # (negdiff.selection.SET_METHODS); ppl_matched.enabled decides whether ppl_matched@main is planned
        selection=section("selection", exclude=["ppl_matched"]),
        sets=selection_sets(SELECTION),
        checkpoint=lambda wc: cohort_checkpoint(wc.model),
        load=lambda wc: model_load(wc.model, cohort_checkpoint(wc.model)),
        # keyword arguments of negdiff.selection.matched_control (window: model positions, BOS included)
        matched=canonical({**{k: SELECTION["ppl_matched"][k] for k in ("tokens", "tolerance", "max_iter", "hi")},
                           **{k: EVALUATION[k] for k in ("window", "stride", "prepend_bos")}}),
        # the prefix of the ppl-matched search's perplexity (only that set method runs the model)
        prefix=lambda wc: prefix_kwargs(wc.model, EVALUATION["prepend_bos"] and SELECTION["ppl_matched"]["enabled"]),
        device=config["device"],
        code=code_fingerprint("select_neurons.py"),
    log:
        log_path("select_neurons", "{model}"),
    benchmark: benchmark_path("select_neurons", "{model}")
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=GPU,
    script:
        "../workflow_scripts/select_neurons.py"
