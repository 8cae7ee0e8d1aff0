import polars as pl

from negdiff.activation_reader import ActivationReader
from negdiff.pos import word_pos_for_offsets
from negdiff.data import read_text
from negdiff.plots import plot_neuron_example
from negdiff.pos import spacy_pos_tagger
from negdiff.runtime import job
from negdiff.mapping_difficulty import md_pairs, pair_distances

with job(snakemake) as log:
    cfg = snakemake.params.figures
    scores = pl.read_parquet(snakemake.input.scores)
    reader = ActivationReader(snakemake.input.activations)
    layer = min(cfg["example_layer"], max(reader.layers))
    if layer not in reader.layers:
        raise ValueError(f"config key figures.example_layer: layer {layer} was not dumped; dumped layers are {reader.layers}")
    best = scores.filter(pl.col("layer") == layer).sort(["wd", "neuron"], descending=[True, False]).row(0, named=True)
    neuron = int(best["neuron"])
    a = reader.read_pre_activation(layer, neuron, neuron + 1)
    x = reader.read_mlp_input(layer)
    i, j = md_pairs(reader.n_tokens, cfg["scatter_pairs"], snakemake.params.seed)
    dx_norm, dy_norm = pair_distances(x, a, i, j)
    text = read_text(snakemake.input.text)
    offsets = reader.offsets()
    tokens = [text[s:e] for s, e in offsets]
    if snakemake.input.pos:
        pos = word_pos_for_offsets(text, read_text(snakemake.input.pos[0]), offsets)
    else:
        pos = spacy_pos_tagger(snakemake.params.spacy_model)(text, offsets)
    rows = plot_neuron_example(
        snakemake.output[0],
        model=snakemake.params.model,
        checkpoint=snakemake.params.checkpoint,
        layer=layer,
        neuron=neuron,
        wd=float(best["wd"]),
        pre_activation=a[:, 0],
        pair_i=i,
        pair_j=j,
        dx_norm=dx_norm,
        dy_norm=dy_norm,
        tokens=tokens,
        pos=pos,
        data_label=f"{snakemake.params.data}, {reader.manifest['meta']['split']} split, n={reader.n_tokens} tokens"
        + (f" (seeded sample of {reader.n_tokens_seen})" if reader.keep == "histograms" else "")
        + f", seed {snakemake.params.seed}",
        n_pairs_marked=cfg["example_pairs"],
    )
    log.info("layer %d neuron %d; marked pairs: %s", layer, neuron, rows)
