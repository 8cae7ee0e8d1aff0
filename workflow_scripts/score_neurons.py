from negdiff.activations import ActivationReader
from negdiff.io import write_parquet
from negdiff.runtime import job
from negdiff.scoring import score_activations

with job(snakemake) as log:
    cfg = snakemake.params.scoring
    reader = ActivationReader(snakemake.input[0])
    scores = score_activations(
        reader,
        mode=cfg["mode"],
        seed=cfg["seed"],
        neuron_block=cfg["neuron_block"],
        md_pairs_n=cfg["md_pairs"],
        md_seed=cfg["seed"],
        # the rule passes the z-grid only in streaming mode (so changing it reruns nothing else)
        **({"bins": cfg["bins"], "z_range": cfg["z_range"]} if cfg["mode"] == "streaming" else {}),
    )
    write_parquet(snakemake.output[0], scores)
    log.info("scored %d neurons over %d layers (%d tokens)", scores.height, len(reader.layers), reader.n_tokens)
