import polars as pl

from negdiff.claim_plots import plot_claims
from negdiff.runtime import job

with job(snakemake) as log:
    p = snakemake.params
    summary = pl.read_csv(snakemake.input.summary)
    table = plot_claims(snakemake.output[0], summary, data_label=p.data, margin_smallest=p.margin_smallest)
    log.info("claims.pdf rows:\n%s", table)
