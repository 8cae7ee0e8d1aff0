# evaluate_text: every condition of one (model, checkpoint) on running text (perplexity, per-token
# surprisal with POS), and the WD of the WN cohort and its controls on held-out text; one model load.
import json

import polars as pl

from negdiff.cohorts import LAYER_COHORT, LAYER_COHORT_SIZE, cohort_token_stream, cohort_wd, layer_cohort, selection_cohorts
from negdiff.data import read_text
from negdiff.io import write_json, write_parquet
from negdiff.models import load_model, n_layers, n_neurons
from negdiff.pos import spacy_pos_tagger
from negdiff.provenance import job_provenance
from negdiff.runtime import job
from negdiff.conditions import empty_sets, model_conditions, random_replicates
from negdiff.sweep import evaluate_conditions, prepare_eval_data, with_run_keys
from negdiff.tokenizer import use_prefix_token

with job(snakemake) as log:
    p = snakemake.params
    cfg = p.evaluation
    model, tokenizer = load_model(**p.load, device=p.device)
    prefix = use_prefix_token(tokenizer, **p.prefix) if p.prefix else None  # what prepend_bos prepends
    conditions, _, _ = model_conditions(model, p.selection, cfg, cohort=p.cohort)  # logs what it leaves out
    data = prepare_eval_data(
        tokenizer,
        suites={},
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
    empty = empty_sets(json.loads(open(snakemake.input.record).read()))
    tables = evaluate_conditions(model, data, conditions, selection, batch_size=cfg["batch_size"], empty_sets=empty)
    # held-out tokens (evaluation.ppl_split), disjoint from the dumped ones that selected the sets
    cohort_ids, skip = cohort_token_stream(
        tokenizer, read_text(snakemake.input.cohort_text), evaluation=cfg, activations=p.activations
    )
    if skip:
        log.info("cohort WD: evaluation.ppl_split == activations.split (%r): skipped the first %d tokens "
                 "(activations.max_tokens, the dumped ones)", cfg["ppl_split"], skip)
    log.info("cohort WD on %d tokens %d.. of the %r text", len(cohort_ids), skip, cfg["ppl_split"])
    cohorts = selection_cohorts(selection, [p.main_set] + random_replicates(p.selection, p.selection["main_percent"]), empty)
    cohorts[LAYER_COHORT] = layer_cohort(n_layers(model), n_neurons(model), seed=p.selection["seed"])
    log.info("cohorts %s; %r: up to %d neurons per layer drawn with seed selection.seed=%d",
             {k: v.height for k, v in cohorts.items()}, LAYER_COHORT, LAYER_COHORT_SIZE, p.selection["seed"])
    tables["cohort_wd"] = cohort_wd(
        model,
        cohort_ids,
        cohorts,
        window=cfg["window"],
        stride=cfg["stride"],
        max_tokens=cfg["cohort_wd_tokens"],
        bos_token_id=prefix["bos_token_id"] if prefix else None,
    )
    for name in ("metrics", "surprisal", "cohort_wd"):
        write_parquet(snakemake.output[name],
                      with_run_keys(tables[name], snakemake.wildcards.model, snakemake.wildcards.checkpoint))
    overall = tables["metrics"].filter(pl.col("level") == "overall").select("condition", "suite", "value")
    log.info("overall metrics:\n%s", overall.pivot(on="suite", index="condition", values="value"))
    texts = ("ppl_text", "surprisal_text", "surprisal_pos", "cohort_text")
    write_json(snakemake.output.provenance,
               job_provenance(model, load=p.load, inputs={k: snakemake.input.get(k) for k in texts}, prefix=prefix))
