from negdiff.activations import dump_activations
from negdiff.data import encode_text, read_text
from negdiff.io import write_json
from negdiff.models import load_model
from negdiff.provenance import job_provenance
from negdiff.runtime import job
from negdiff.streaming import Grid
from negdiff.tokenizer import use_prefix_token

with job(snakemake) as log:
    p = snakemake.params
    model, tokenizer = load_model(**p.load, device=p.device)
    prefix = use_prefix_token(tokenizer, **p.prefix) if p.prefix else None
    stream = encode_text(tokenizer, read_text(snakemake.input.text), max_tokens=p.dump["max_tokens"])
    log.info("%d tokens from %s", len(stream), snakemake.input.text)
    manifest = dump_activations(
        model,
        stream,
        snakemake.output.dump,
        **p.dump,
        grid=Grid(**p.grid) if p.grid else None,
        bos_token_id=prefix["bos_token_id"] if prefix else None,
        meta={
            "model": snakemake.wildcards.model,
            "checkpoint": snakemake.wildcards.checkpoint,
            "load": dict(p.load),
            "data": p.data,
            "text": str(snakemake.input.text),
            "split": p.split,
            "bos_token": prefix["bos_token"] if prefix else None,
        },
    )
    log.info("dumped %d tokens x %d layers into %d shards", manifest["n_tokens"], len(manifest["layers"]), len(manifest["shards"]))
    write_json(snakemake.output.provenance,
               job_provenance(model, load=p.load, inputs={"text": snakemake.input.text}, prefix=prefix))
