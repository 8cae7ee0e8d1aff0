# fetch_model: every configured revision of one hub model into the staging cache (no GPU, needs the network).
from negdiff.io import write_json
from negdiff.runtime import job
from negdiff.staging import stage_model

with job(snakemake) as log:
    p = snakemake.params
    record = stage_model(p.path, p.revisions, cache_dir=p.cache_dir)
    log.info("staged %s: %s", p.path, {r: v["commit"] for r, v in record["revisions"].items()})
    write_json(snakemake.output[0], record)
