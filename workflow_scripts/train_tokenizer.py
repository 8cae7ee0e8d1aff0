from negdiff.runtime import job
from negdiff.tokenizer import train_tokenizer

with job(snakemake) as log:
    cfg = snakemake.params.tokenizer
    tok = train_tokenizer([snakemake.input.train], snakemake.output[0], vocab_size=cfg["vocab_size"], seed=cfg["seed"])
    log.info("tokenizer with %d entries written to %s", len(tok), snakemake.output[0])
