import polars as pl

from negdiff.io import write_parquet
from negdiff.runtime import job

# metrics: the pair jobs' and the text jobs' rows in one table (a nested tier's rows add paired_baseline,
# null elsewhere); the other tables concatenate as they are
SOURCES = {"metrics": ("pair_metrics", "text_metrics"), "pairs": ("pairs",), "surprisal": ("surprisal",),
           "cohort_wd": ("cohort_wd",)}

with job(snakemake) as log:
    for name, keys in SOURCES.items():
        files = [f for key in keys for f in snakemake.input[key]]
        table = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
        write_parquet(snakemake.output[name], table)
        log.info("%s: %d rows from %d files", name, table.height, len(files))
