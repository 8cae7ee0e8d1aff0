from negdiff.activation_reader import ActivationReader
from negdiff.io import write_parquet
from negdiff.runtime import job
from negdiff.scoring import score_activations

with job(snakemake) as log:
    # the rule passes score_layer's keywords under the config's names (the z-grid only in streaming mode,
    # so changing it reruns nothing else); scoring.seed seeds both the WD sample and the MD pairs
    cfg = snakemake.params.scoring
    reader = ActivationReader(snakemake.input[0])
    scores = score_activations(reader, **cfg, md_seed=cfg["seed"])
    write_parquet(snakemake.output[0], scores)
    log.info("scored %d neurons over %d layers (%d tokens)", scores.height, len(reader.layers), reader.n_tokens)
