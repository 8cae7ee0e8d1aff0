import json

import polars as pl

from negdiff.conditions import checkpoint_step, conditions_for
from negdiff.corpus import limit_pairs, load_suite
from negdiff.data import encode_text, read_text
from negdiff.evaluation import cohort_wd, evaluate_conditions, prepare_eval_data
from negdiff.io import write_parquet
from negdiff.models import load_model, n_layers
from negdiff.pos import spacy_pos_tagger
from negdiff.runtime import job
from negdiff.tokenizer import bos_token_id

with job(snakemake) as log:
    p = snakemake.params
    cfg = p.evaluation
    model_name, checkpoint = snakemake.wildcards.model, snakemake.wildcards.checkpoint
    # benchmarks first: a missing or malformed suite fails before the model is loaded
    suites = {
        name: limit_pairs(load_suite(cfg["suites"][name], builtin_dir=f"results/corpus/{name}"), cfg["max_pairs_per_paradigm"])
        for name in ("blimp", "tse", "nonsyntactic")
    }
    model, tokenizer = load_model(**p.load, device=p.device)
    conditions = conditions_for(p.selection, cfg, n_layers(model), cohort=p.cohort)
    log.info("%d conditions: %s", len(conditions), [c.name for c in conditions])
    data = prepare_eval_data(
        tokenizer,
        suites=suites,
        ppl_text=read_text(snakemake.input.ppl_text),
        surprisal_text=read_text(snakemake.input.surprisal_text),
        surprisal_pos=read_text(snakemake.input.surprisal_pos[0]) if p.gold_pos else None,
        pos_tagger=None if p.gold_pos else spacy_pos_tagger(cfg["spacy_model"]),
        ppl_tokens=cfg["ppl_tokens"],
        surprisal_tokens=cfg["surprisal_tokens"],
        window=cfg["window"],
        stride=cfg["stride"],
        prepend_bos=cfg["prepend_bos"],
    )
    selection = pl.read_parquet(snakemake.input.selection)
    record = json.loads(open(snakemake.input.record).read())
    empty = [name for name, info in record["sets"].items() if info["n_neurons"] == 0]
    tables = evaluate_conditions(model, data, conditions, selection, batch_size=cfg["batch_size"], empty_sets=empty)
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
