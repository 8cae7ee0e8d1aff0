import polars as pl

from negdiff.conditions import random_replicates, set_name
from negdiff.io import write_json, write_parquet
from negdiff.models import load_config
from negdiff.runtime import job
from negdiff.selection import counts_per_layer, identity_record, select_random, select_wn, selection_table

with job(snakemake) as log:
    p = snakemake.params
    cfg = p.selection
    scores = pl.read_parquet(snakemake.input.scores)
    sets = {}
    for percent in cfg["percents"]:
        wn = select_wn(scores, percent)
        sets[set_name("wn", percent)] = wn
        for k, name in enumerate(random_replicates(cfg, percent)):
            sets[name] = select_random(scores, counts_per_layer(wn), seed=cfg["seed"] + k)
    record = {
        "model": snakemake.wildcards.model,
        "checkpoint": p.checkpoint,
        "seed": cfg["seed"],
        "sets": {
            name: {"n_neurons": df.height, "counts_per_layer": counts_per_layer(df),
                   "seed": int(df["seed"][0]) if df.height and df["seed"][0] is not None else None}
            for name, df in sets.items()
        },
        "ppl_matched": None,
        # nonlinearity and the operations that are the identity on it ({op: reason}), from the config alone
        **identity_record(load_config(**p.load)),
    }
    if record["identity_operations"]:
        log.info("%s: identity operations (their conditions are not evaluated): %s",
                 record["nonlinearity"], record["identity_operations"])
    if cfg["ppl_matched"]["enabled"]:
        from negdiff.selection import matched_control

        pm = cfg["ppl_matched"]
        main = set_name("wn", cfg["main_percent"])
        chosen, search = matched_control(
            p.load,
            scores,
            sets[main],
            text_path=snakemake.input.ppl_text,
            tokens=pm["tokens"],
            window=p.window,
            stride=p.stride,
            prepend_bos=p.prepend_bos,
            tolerance=pm["tolerance"],
            max_iter=pm["max_iter"],
            hi=pm["hi"],
            device=p.device,
        )
        sets[set_name("ppl_matched", cfg["main_percent"])] = chosen
        record["ppl_matched"] = search
        record["sets"][set_name("ppl_matched", cfg["main_percent"])] = {
            "n_neurons": chosen.height,
            "counts_per_layer": counts_per_layer(chosen),
        }
        if "skipped" in search:  # neg_zero is the identity here: an empty set, never evaluated
            record["sets"][set_name("ppl_matched", cfg["main_percent"])]["skipped"] = search["skipped"]
            log.info("ppl-matched search skipped: %s", search["skipped"])
        else:
            log.info("ppl-matched search: %s", {k: v for k, v in search.items() if k != "history"})
    missing = sorted(set(p.sets) - set(sets))
    if missing:
        raise RuntimeError(f"selection did not produce the planned sets {missing}")
    write_parquet(snakemake.output.table, selection_table(sets))
    write_json(snakemake.output.record, record)
