import json

import polars as pl

from negdiff.figure_registry import FIGURES, plot_function
from negdiff.runtime import job
from negdiff.stats import merge_replicates

# how each table of rule figure_claims is read: random controls drawn with several seeds are plotted as
# their seed mean (negdiff.figure_registry.CLAIM_TABLES)
READ = {
    "metrics": lambda path: merge_replicates(pl.read_parquet(path), ["value", "margin"]),
    "surprisal": lambda path: merge_replicates(pl.read_parquet(path), ["surprisal"]),
    "cohort_wd": pl.read_parquet,
}

with job(snakemake) as log:
    p = snakemake.params
    figure = snakemake.wildcards.figure
    spec = FIGURES[figure]
    # metrics always (the data label counts its pairs), the other tables where the figure takes them
    tables = {name: READ[name](getattr(snakemake.input, name)) for name in dict.fromkeys(["metrics", *spec.tables])}
    records = {m: json.loads(open(f).read()) for m, f in zip(p.models, snakemake.input.records)}
    # a skipped search (neg_zero is the identity, e.g. ReLU) has no m and no ppl_matched results
    ppl_m = {m: r["ppl_matched"]["m"] for m, r in records.items() if (r.get("ppl_matched") or {}).get("m") is not None}
    metrics = tables["metrics"]
    n_pairs = metrics.filter((pl.col("condition") == "baseline") & (pl.col("level") == "overall"))
    n_label = ", ".join(
        f"{row['suite']} n={row['n']}" for row in n_pairs.unique(["suite"]).sort("suite").iter_rows(named=True)
    )
    extras = {"architectures": dict(zip(p.models, p.architectures)), "ppl_matched_m": ppl_m}
    table = plot_function(figure)(
        snakemake.output[0],
        *[tables[name] for name in spec.tables],
        main_percent=p.main_percent,
        data_label=f"{p.data} ({n_label}); models {', '.join(p.models)}",
        **{key: extras[key] for key in spec.extras},
    )
    log.info("%s:\n%s", figure, table)
