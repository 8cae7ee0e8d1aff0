# Entry point of evaluate_pairs (minimal-pair suites) and evaluate_text (perplexity, POS surprisal,
# cohort WD): one model load per job, every condition of the (model, checkpoint) inside.
import json

import polars as pl

from negdiff.conditions import checkpoint_step, conditions_for, random_replicates
from negdiff.corpus import load_suite, sample_pairs
from negdiff.data import read_text
from negdiff.evaluation import (
    LAYER_COHORT,
    LAYER_COHORT_SIZE,
    cohort_token_stream,
    cohort_wd,
    evaluate_conditions,
    layer_cohort,
    prepare_eval_data,
    selection_cohorts,
)
from negdiff.io import write_parquet
from negdiff.models import load_model, n_layers, n_neurons
from negdiff.models import arch_spec, identity_operations, identity_reason
from negdiff.pos import spacy_pos_tagger
from negdiff.runtime import job
from negdiff.tokenizer import bos_token_id

with job(snakemake) as log:
    p = snakemake.params
    cfg = p.evaluation
    pairs_job = snakemake.rule == "evaluate_pairs"
    model_name, checkpoint = snakemake.wildcards.model, snakemake.wildcards.checkpoint
    # suites first: a missing or malformed suite fails before the model is loaded
    suites = {}
    if pairs_job:
        suites = {
            name: sample_pairs(
                load_suite(cfg["suites"][name], builtin_dir=f"results/corpus/{name}"),
                cfg["pairs_per_paradigm"][name],
                seed=cfg["pairs_seed"],
            )
            for name in ("blimp", "tse", "nonsyntactic")
        }
        log.info("pairs: %s", {k: len(v) for k, v in suites.items()})
    model, tokenizer = load_model(**p.load, device=p.device)
    # operations that change nothing on this nonlinearity (on ReLU: neg_zero, sign_flip, pos_relu) are not run
    spec = arch_spec(model)
    identity = {op: identity_reason(op, spec.activation) for op in identity_operations(spec)}
    conditions = conditions_for(p.selection, cfg, n_layers(model), cohort=p.cohort, identity_operations=identity)
    left_out = [c.name for c in conditions_for(p.selection, cfg, n_layers(model), cohort=p.cohort) if c not in conditions]
    if left_out:
        log.info("%s (%s): %d conditions left out, their operation is the identity (%s): %s", spec.name,
                 spec.activation, len(left_out), "; ".join(identity.values()), left_out)
    log.info("%d conditions: %s", len(conditions), [c.name for c in conditions])
    text = (lambda key: None) if pairs_job else (lambda key: read_text(snakemake.input[key]))
    data = prepare_eval_data(
        tokenizer,
        suites=suites,
        ppl_text=text("ppl_text"),
        surprisal_text=text("surprisal_text"),
        surprisal_pos=read_text(snakemake.input.surprisal_pos[0]) if not pairs_job and p.gold_pos else None,
        pos_tagger=None if pairs_job or p.gold_pos else spacy_pos_tagger(cfg["spacy_model"]),
        ppl_tokens=0 if pairs_job else cfg["ppl_tokens"],
        surprisal_tokens=0 if pairs_job else cfg["surprisal_tokens"],
        window=None if pairs_job else cfg["window"],
        stride=None if pairs_job else cfg["stride"],
        prepend_bos=cfg["prepend_bos"],
    )
    selection = pl.read_parquet(snakemake.input.selection)
    record = json.loads(open(snakemake.input.record).read())
    empty = [name for name, info in record["sets"].items() if info["n_neurons"] == 0]
    tables = evaluate_conditions(model, data, conditions, selection, batch_size=cfg["batch_size"], empty_sets=empty)
    if pairs_job:
        names = ("metrics", "pairs")
    else:
        names = ("metrics", "surprisal", "cohort_wd")
        # held-out tokens (evaluation.ppl_split), disjoint from the dumped ones that selected the sets
        cohort_ids, skip = cohort_token_stream(
            tokenizer, read_text(snakemake.input.cohort_text), evaluation=cfg, activations=p.activations
        )
        if skip:
            log.info("cohort WD: evaluation.ppl_split == activations.split (%r): skipped the first %d tokens "
                     "(activations.max_tokens, the dumped ones)", cfg["ppl_split"], skip)
        log.info("cohort WD on %d tokens %d.. of the %r text", len(cohort_ids), skip, cfg["ppl_split"])
        cohorts = selection_cohorts(
            selection, [p.main_set] + random_replicates(p.selection, p.selection["main_percent"]), empty
        )
        cohorts[LAYER_COHORT] = layer_cohort(n_layers(model), n_neurons(model), seed=p.selection["seed"])
        log.info("cohorts %s; %r: up to %d neurons per layer drawn with seed selection.seed=%d",
                 {k: v.height for k, v in cohorts.items()}, LAYER_COHORT, LAYER_COHORT_SIZE, p.selection["seed"])
        tables["cohort_wd"] = cohort_wd(
            model,
            cohort_ids,
            cohorts,
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
    for name in names:
        write_parquet(snakemake.output[name], tables[name].select(*keys, pl.all()))
    overall = tables["metrics"].filter(pl.col("level") == "overall").select("condition", "suite", "value")
    log.info("overall metrics:\n%s", overall.pivot(on="suite", index="condition", values="value"))
