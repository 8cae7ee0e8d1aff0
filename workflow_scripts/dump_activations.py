from negdiff.activations import dump_activations
from negdiff.data import encode_text, read_text
from negdiff.models import load_model
from negdiff.tokenizer import bos_token_id
from negdiff.runtime import job
from negdiff.streaming import Grid

with job(snakemake) as log:
    cfg = snakemake.params.activations
    checkpoint = snakemake.wildcards.checkpoint
    model, tokenizer = load_model(**snakemake.params.load, device=snakemake.params.device)
    text = read_text(snakemake.input.text)
    stream = encode_text(tokenizer, text, max_tokens=cfg["max_tokens"])
    log.info("%d tokens from %s", len(stream), snakemake.input.text)
    layers = None if cfg["layers"] == "all" else list(cfg["layers"])
    bos = bos_token_id(tokenizer) if cfg["prepend_bos"] else None
    manifest = dump_activations(
        model,
        stream,
        snakemake.output[0],
        layers=layers,
        window=cfg["window"] - (bos is not None),
        stride=cfg["stride"],
        max_tokens=cfg["max_tokens"],
        tokens_per_shard=cfg["tokens_per_shard"],
        dtype=cfg["dtype"],
        capture_mlp_input=cfg["capture_mlp_input"],
        batch_size=cfg["batch_size"],
        keep=cfg["keep"],
        # the grid and the sample reach this job only when it keeps histograms
        **({"grid": Grid(**snakemake.params.grid), "sample_tokens": cfg["sample_tokens"],
            "sample_seed": cfg["sample_seed"]} if cfg["keep"] == "histograms" else {}),
        bos_token_id=bos,
        meta={
            "model": snakemake.wildcards.model,
            "checkpoint": checkpoint,
            "load": dict(snakemake.params.load),
            "data": snakemake.params.data,
            "text": str(snakemake.input.text),
            "split": cfg["split"],
        },
    )
    log.info("dumped %d tokens x %d layers into %d shards", manifest["n_tokens"], len(manifest["layers"]), len(manifest["shards"]))
