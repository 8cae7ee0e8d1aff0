import polars as pl

from negdiff.io import write_parquet
from negdiff.runtime import job

with job(snakemake) as log:
    for name in ("metrics", "surprisal", "cohort_wd"):
        files = snakemake.input[name]
        table = pl.concat([pl.read_parquet(f) for f in files], how="vertical_relaxed")
        write_parquet(snakemake.output[name], table)
        log.info("%s: %d rows from %d files", name, table.height, len(files))
