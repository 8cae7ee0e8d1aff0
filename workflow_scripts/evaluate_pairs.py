# evaluate_pairs: every condition of one (model, checkpoint) on the minimal-pair suites, one model load;
# a suite given as a list of lm-eval task names (negdiff/lmeval.py) is scored per document at the cohort
# checkpoint under the dissociation conditions, its rows appended to the same tables.
import json

import polars as pl

from negdiff import lmeval
from negdiff.io import write_json, write_parquet
from negdiff.models import load_model
from negdiff.provenance import job_provenance
from negdiff.runtime import job
from negdiff.suites import SUITES, load_suite
from negdiff.conditions import empty_sets, model_conditions
from negdiff.sweep import with_run_keys
from negdiff.tiers import evaluate_tiers, tier_suites
from negdiff.tokenizer import use_prefix_token

with job(snakemake) as log:
    p = snakemake.params
    cfg = p.evaluation
    task_suites = lmeval.task_suites(cfg)  # lm-eval task lists, scored by negdiff/lmeval.py
    # suites first: a missing or malformed suite (or an unknown lm-eval task) fails before the model is loaded
    loaded = {name: load_suite(cfg["suites"][name], local_dir=(snakemake.input.get(name) or [None])[0])
              for name in SUITES if name not in task_suites}
    tiers = tier_suites(loaded, cfg)  # the main sample, and the nested tier of the other conditions
    for name, tasks in task_suites.items():
        lmeval.check_tasks(tasks, cfg["lmeval"]["include_path"], key=f"evaluation.suites.{name}")
    log.info("pairs: %s (nested tier: %s); lm-eval tasks: %s", {k: len(v) for k, v in tiers.main.items()},
             tiers.nested and {k: len(v) for k, v in tiers.nested.items()}, task_suites)
    model, tokenizer = load_model(**p.load, device=p.device)
    prefix = use_prefix_token(tokenizer, **p.prefix) if p.prefix else None  # what prepend_bos prepends
    conditions, _, _ = model_conditions(model, p.selection, cfg, cohort=p.cohort)  # logs what it leaves out
    selection = pl.read_parquet(snakemake.input.selection)
    empty = empty_sets(json.loads(open(snakemake.input.record).read()))
    tables = evaluate_tiers(model, tokenizer, tiers, conditions, selection,
                            main_percent=p.selection["main_percent"], prepend_bos=cfg["prepend_bos"],
                            batch_size=cfg["batch_size"], empty_sets=empty)
    if p.cohort:  # the dissociation is read at the cohort checkpoint, the one where ppl_matched runs
        extra = lmeval.config_tables(model, tokenizer, conditions, selection, cfg, p.selection["main_percent"],
                                     empty_sets=empty)
        if extra is not None:
            tables = {k: pl.concat([tables[k], extra[k]], how="diagonal") for k in ("metrics", "pairs")}
    for name in ("metrics", "pairs"):
        write_parquet(snakemake.output[name],
                      with_run_keys(tables[name], snakemake.wildcards.model, snakemake.wildcards.checkpoint))
    overall = tables["metrics"].filter(pl.col("level") == "overall").select("condition", "suite", "value")
    log.info("overall metrics:\n%s", overall.pivot(on="suite", index="condition", values="value"))
    # the suite files read (generated "english" and hub suites have none: their sources say where they came from)
    write_json(snakemake.output.provenance,
               job_provenance(model, load=p.load, inputs={name: snakemake.input.get(name) for name in SUITES},
                              sources=cfg["suites"], prefix=prefix))
