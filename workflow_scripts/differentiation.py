import polars as pl

from negdiff.activation_reader import ActivationReader
from negdiff.data import read_text
from negdiff.differentiation import differentiation_table, token_pos
from negdiff.io import write_parquet
from negdiff.runtime import job

with job(snakemake) as log:
    cfg = snakemake.params.scoring
    reader = ActivationReader(snakemake.input.activations)
    scores = pl.read_parquet(snakemake.input.scores)
    gold = read_text(snakemake.input.pos[0]) if snakemake.input.pos else None
    pos, how = token_pos(read_text(snakemake.input.text), reader.offsets(), gold_pos=gold,
                         spacy_model=snakemake.params.spacy_model)
    if pos is None:
        log.warning("POS unavailable, top_function_share left null: %s", how)
    else:
        log.info("POS of the %d dump rows (%s): %s", len(pos), reader.keep, how)
    table = differentiation_table(reader, scores, top_k=cfg["differentiation_top_k"], md_pairs=cfg["md_pairs"],
                                  seed=cfg["seed"], pos=pos)
    write_parquet(snakemake.output[0], table)
    log.info("differentiation of %d neurons over %d layers (%d token rows, top_k %d)", table.height,
             len(reader.layers), reader.n_tokens, cfg["differentiation_top_k"])
