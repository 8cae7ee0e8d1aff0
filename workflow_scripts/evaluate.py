from pathlib import Path

import polars as pl

from negdiff.conditions import checkpoint_step, parse_condition
from negdiff.corpus import limit_pairs, read_pairs
from negdiff.data import encode_text, read_text
from negdiff.evaluation import cohort_wd, evaluate_conditions, prepare_eval_data
from negdiff.io import write_parquet
from negdiff.models import load_model
from negdiff.runtime import job
from negdiff.tokenizer import bos_token_id

with job(snakemake) as log:
    p = snakemake.params
    cfg = p.evaluation
    model_name, checkpoint = snakemake.wildcards.model, snakemake.wildcards.checkpoint
    model, tokenizer = load_model(Path(snakemake.input.model) / checkpoint, device=p.device)
    conditions = [parse_condition(c, p.n_layers, cfg["layer_group_size"]) for c in p.conditions]
    suites = {
        name: limit_pairs(read_pairs(snakemake.input[name]), cfg["max_pairs_per_paradigm"])
        for name in ("blimp", "tse", "nonsyntactic")
    }
    data = prepare_eval_data(
        tokenizer,
        suites=suites,
        ppl_text=read_text(snakemake.input.ppl_text),
        surprisal_text=read_text(snakemake.input.surprisal_text),
        surprisal_pos=read_text(snakemake.input.surprisal_pos),
        ppl_tokens=cfg["ppl_tokens"],
        surprisal_tokens=cfg["surprisal_tokens"],
        window=cfg["window"],
        stride=cfg["stride"],
        prepend_bos=cfg["prepend_bos"],
    )
    selection = pl.read_parquet(snakemake.input.selection)
    tables = evaluate_conditions(model, data, conditions, selection, batch_size=cfg["batch_size"])
    cohort_stream = encode_text(tokenizer, read_text(snakemake.input.cohort_text), max_tokens=cfg["cohort_wd_tokens"])
    tables["cohort_wd"] = cohort_wd(
        model,
        cohort_stream.ids,
        selection.filter(pl.col("set") == p.main_set),
        window=cfg["window"] - cfg["prepend_bos"],
        stride=cfg["stride"],
        max_tokens=cfg["cohort_wd_tokens"],
        bos_token_id=bos_token_id(tokenizer) if cfg["prepend_bos"] else None,
    )
    keys = [
        pl.lit(model_name).alias("model"),
        pl.lit(checkpoint).alias("checkpoint"),
        pl.lit(checkpoint_step(checkpoint), dtype=pl.Int64).alias("step"),
    ]
    for name in ("metrics", "surprisal", "cohort_wd"):
        frame = tables[name].select(*keys, pl.all())
        write_parquet(snakemake.output[name], frame)
    overall = tables["metrics"].filter(pl.col("level") == "overall").select("condition", "suite", "value")
    log.info("overall metrics:\n%s", overall.pivot(on="suite", index="condition", values="value"))
