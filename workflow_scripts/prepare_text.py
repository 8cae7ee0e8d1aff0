from negdiff.data import load_split_text
from negdiff.io import write_text
from negdiff.runtime import job

with job(snakemake) as log:
    text = load_split_text(snakemake.params.data, snakemake.wildcards.split)
    if not text.strip():
        raise ValueError(f"the {snakemake.wildcards.split} split of the configured data is empty")
    write_text(snakemake.output[0], text)
    log.info("%s: %d lines, %d characters", snakemake.wildcards.split, text.count("\n"), len(text))
