import polars as pl

from negdiff import claims
from negdiff.runtime import job

with job(snakemake) as log:
    p = snakemake.params
    table = claims.claims_table(
        pl.read_parquet(snakemake.input.metrics),
        pl.read_parquet(snakemake.input.surprisal),
        pl.read_parquet(snakemake.input.cohort_wd),
        {m: pl.read_parquet(f) for m, f in zip(p.models, snakemake.input.scores)},
        main_percent=p.main_percent,
        pairs=pl.read_parquet(snakemake.input.pairs),
        n_boot=p.bootstrap["n"],
        seed=p.bootstrap["seed"],
    )
    claims.write_summary_csv(snakemake.output[0], table)
    with pl.Config(tbl_rows=100, tbl_cols=20, fmt_str_lengths=60):
        log.info("claims:\n%s", table)
