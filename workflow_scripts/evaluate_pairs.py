# evaluate_pairs: every condition of one (model, checkpoint) on the minimal-pair suites, one model load.
import json

import polars as pl

from negdiff.io import write_json, write_parquet
from negdiff.models import load_model
from negdiff.provenance import job_provenance
from negdiff.runtime import job
from negdiff.suites import SUITES, load_suite, sample_pairs
from negdiff.conditions import empty_sets, model_conditions
from negdiff.sweep import evaluate_conditions, prepare_eval_data, with_run_keys
from negdiff.tokenizer import use_prefix_token

with job(snakemake) as log:
    p = snakemake.params
    cfg = p.evaluation
    # suites first: a missing or malformed suite fails before the model is loaded
    suites = {
        name: sample_pairs(load_suite(cfg["suites"][name], local_dir=(snakemake.input.get(name) or [None])[0]),
                           cfg["pairs_per_paradigm"][name], seed=cfg["pairs_seed"])
        for name in SUITES
    }
    log.info("pairs: %s", {k: len(v) for k, v in suites.items()})
    model, tokenizer = load_model(**p.load, device=p.device)
    prefix = use_prefix_token(tokenizer, **p.prefix) if p.prefix else None  # what prepend_bos prepends
    conditions, _, _ = model_conditions(model, p.selection, cfg, cohort=p.cohort)  # logs what it leaves out
    data = prepare_eval_data(tokenizer, suites=suites, ppl_text=None, surprisal_text=None, surprisal_pos=None,
                             ppl_tokens=0, surprisal_tokens=0, window=None, stride=None,
                             prepend_bos=cfg["prepend_bos"])
    selection = pl.read_parquet(snakemake.input.selection)
    record = json.loads(open(snakemake.input.record).read())
    tables = evaluate_conditions(model, data, conditions, selection, batch_size=cfg["batch_size"],
                                 empty_sets=empty_sets(record))
    for name in ("metrics", "pairs"):
        write_parquet(snakemake.output[name],
                      with_run_keys(tables[name], snakemake.wildcards.model, snakemake.wildcards.checkpoint))
    overall = tables["metrics"].filter(pl.col("level") == "overall").select("condition", "suite", "value")
    log.info("overall metrics:\n%s", overall.pivot(on="suite", index="condition", values="value"))
    # the suite files read (generated "english" and hub suites have none: their sources say where they came from)
    write_json(snakemake.output.provenance,
               job_provenance(model, load=p.load, inputs={name: snakemake.input.get(name) for name in SUITES},
                              sources=cfg["suites"], prefix=prefix))
