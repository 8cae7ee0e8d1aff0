import json

import polars as pl

from negdiff import claim_plots as claims
from negdiff.runtime import job
from negdiff.stats import merge_replicates

with job(snakemake) as log:
    p = snakemake.params
    figure = snakemake.wildcards.figure
    # random controls drawn with several seeds are plotted as their seed mean
    metrics = merge_replicates(pl.read_parquet(snakemake.input.metrics), ["value", "margin"])
    records = {m: json.loads(open(f).read()) for m, f in zip(p.models, snakemake.input.records)}
    # a skipped search (neg_zero is the identity, e.g. ReLU) has no m and no ppl_matched results
    ppl_m = {m: r["ppl_matched"]["m"] for m, r in records.items() if (r.get("ppl_matched") or {}).get("m") is not None}
    n_pairs = metrics.filter((pl.col("condition") == "baseline") & (pl.col("level") == "overall"))
    n_label = ", ".join(
        f"{row['suite']} n={row['n']}" for row in n_pairs.unique(["suite"]).sort("suite").iter_rows(named=True)
    )
    data_label = f"{p.data} ({n_label}); models {', '.join(p.models)}"
    kw = dict(main_percent=p.main_percent, data_label=data_label)
    out = snakemake.output[0]
    if figure == "ablation":
        table = claims.plot_ablation(out, metrics, architectures=dict(zip(p.models, p.architectures)), ppl_matched_m=ppl_m, **kw)
    elif figure == "phenomena":
        table = claims.plot_phenomena(out, metrics, **kw)
    elif figure == "pos_surprisal":
        table = claims.plot_pos_surprisal(out, merge_replicates(pl.read_parquet(snakemake.input.surprisal), ["surprisal"]), **kw)
    elif figure == "layerwise":
        table = claims.plot_layerwise(out, metrics, **kw)
    elif figure == "training_dynamics":
        table = claims.plot_training_dynamics(out, metrics, pl.read_parquet(snakemake.input.cohort_wd), **kw)
    elif figure == "dissociation":
        table = claims.plot_dissociation(out, metrics, **kw)
    else:
        raise ValueError(f"unknown figure {figure!r}")
    log.info("%s:\n%s", figure, table)
