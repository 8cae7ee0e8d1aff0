import polars as pl

from negdiff.io import write_json, write_parquet
from negdiff.provenance import job_provenance
from negdiff.models import load_config, load_model
from negdiff.runtime import job
from negdiff.selection import SetContext, build_sets, identity_record, selection_table, set_entry
from negdiff.tokenizer import use_prefix_token


def load():
    """(model, tokenizer) with the model's prefix token (params.prefix) as the tokenizer's BOS."""
    model, tokenizer = load_model(**snakemake.params.load, device=snakemake.params.device)
    if snakemake.params.prefix:
        use_prefix_token(tokenizer, **snakemake.params.prefix)
    return model, tokenizer


with job(snakemake) as log:
    p = snakemake.params
    cfg = p.selection
    # the model's config alone (no weights): its nonlinearity, and whether the ppl-matched search runs
    architecture = load_config(**p.load)
    ctx = SetContext(
        scores=pl.read_parquet(snakemake.input.scores),
        selection=cfg,
        architecture=architecture,
        # the weights are loaded only for a set that runs the model (the ppl-matched search), once
        load_model=load,
        matched={"text_path": snakemake.input.ppl_text, **p.matched},
    )
    # nonlinearity and the operations that are the identity on it ({op: reason}), from the config alone
    identity = identity_record(architecture)
    if identity["identity_operations"]:
        log.info("%s: identity operations (their conditions are not evaluated): %s",
                 identity["nonlinearity"], identity["identity_operations"])
    sets = build_sets(p.sets, ctx)
    for name, search in ctx.records.items():
        if "skipped" in search:  # neg_zero is the identity here: an empty set, never evaluated
            log.info("%s search skipped: %s", name, search["skipped"])
        else:
            log.info("%s search: %s", name, {k: v for k, v in search.items() if k != "history"})
    searches = [ctx.records[name] for name in sets if name in ctx.records]
    record = {
        "model": snakemake.wildcards.model,
        "checkpoint": p.checkpoint,
        "seed": cfg["seed"],
        "sets": {name: set_entry(df, ctx.records.get(name)) for name, df in sets.items()},
        "ppl_matched": searches[0] if searches else None,
        **identity,
    }
    write_parquet(snakemake.output.table, selection_table(sets))
    write_json(snakemake.output.record, record)
    # the model and the held-out text were read only if a set method ran the model (the ppl-matched search)
    loaded = ctx.loaded()
    write_json(snakemake.output.provenance, job_provenance(
        loaded[0] if loaded else None, load=p.load,
        inputs={"ppl_text": snakemake.input.ppl_text} if loaded else {},
        prefix=use_prefix_token(loaded[1], **p.prefix) if loaded and p.prefix else None,
    ))
