from pathlib import Path

from negdiff.grammar import generate_corpus
from negdiff.runtime import job

with job(snakemake) as log:
    cfg = snakemake.params.corpus
    manifest = generate_corpus(
        Path(snakemake.output.manifest).parent,
        seed=cfg["seed"],
        train_words=cfg["train_words"],
        valid_words=cfg["valid_words"],
        test_words=cfg["test_words"],
        pairs_per_paradigm=cfg["pairs_per_paradigm"],
    )
    log.info("corpus written: %s", {k: v for k, v in manifest.items() if k != "paradigms"})
