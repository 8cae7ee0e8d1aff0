from negdiff.data import load_split
from negdiff.io import write_json, write_text
from negdiff.runtime import job

with job(snakemake) as log:
    text, record = load_split(snakemake.params.data, snakemake.wildcards.split)
    if not text.strip():
        raise ValueError(f"the {snakemake.wildcards.split} split of the configured data is empty")
    write_text(snakemake.output.text, text)
    write_json(snakemake.output.record, record)
    log.info("%s: %s", snakemake.wildcards.split, record)
