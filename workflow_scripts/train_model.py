from negdiff.runtime import job
from negdiff.training import train_model

with job(snakemake) as log:
    spec = dict(snakemake.params.model)
    cfg = snakemake.params.training
    hparams = {k: spec[k] for k in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "context")}
    report = train_model(
        architecture=spec["architecture"],
        model_hparams=hparams,
        tokenizer_dir=snakemake.input.tokenizer,
        train_text_path=snakemake.input.train,
        valid_text_path=snakemake.input.valid,
        out_dir=snakemake.output[0],
        steps=cfg["steps"],
        batch_size=cfg["batch_size"],
        lr=cfg["lr"],
        warmup=cfg["warmup"],
        weight_decay=cfg["weight_decay"],
        seed=cfg["seed"],
        checkpoints=snakemake.params.checkpoints,
        threads=snakemake.threads,
        eval_tokens=cfg["eval_tokens"],
    )
    log.info("checkpoints: %s", report["checkpoints"])
