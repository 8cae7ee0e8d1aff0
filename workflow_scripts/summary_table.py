import json

import polars as pl

from negdiff import claims
from negdiff.runtime import job

with job(snakemake) as log:
    p = snakemake.params
    table = claims.claims_table(
        pl.read_parquet(snakemake.input.metrics),
        pl.read_parquet(snakemake.input.pairs),
        main_percent=p.main_percent,
        surprisal=pl.read_parquet(snakemake.input.surprisal),
        cohort_wd=pl.read_parquet(snakemake.input.cohort_wd),
        differentiation={m: pl.read_parquet(f) for m, f in zip(p.models, snakemake.input.differentiation)},
        records={m: json.loads(open(f).read()) for m, f in zip(p.models, snakemake.input.records)},
        smallest_effect=p.claims["smallest_effect"],
        chance=p.claims["chance"],
        surprisal_block_tokens=p.claims["surprisal_block_tokens"],
        n_boot=p.bootstrap["n"],
        seed=p.bootstrap["seed"],
        models=p.models,
    )
    claims.write_summary_csv(snakemake.output[0], table)
    with pl.Config(tbl_rows=100, tbl_cols=20, fmt_str_lengths=60):
        log.info("claims:\n%s", table.select("claim_id", "model", "diff", "ci_low", "ci_high", "verdict", "margin_verdict"))
