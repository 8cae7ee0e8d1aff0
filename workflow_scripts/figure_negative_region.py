import polars as pl

from negdiff.plots import plot_negative_region
from negdiff.runtime import job

with job(snakemake) as log:
    p = snakemake.params
    tables = {m: pl.read_parquet(f) for m, f in zip(p.models, snakemake.input.scores)}
    summary = plot_negative_region(
        snakemake.output[0],
        tables,
        architectures=dict(zip(p.models, p.architectures)),
        percent=p.top_percent,
        data_label=f"{p.data}; checkpoints " + ", ".join(f"{m}:{c}" for m, c in zip(p.models, p.checkpoints)),
    )
    log.info("summary:\n%s", summary)
