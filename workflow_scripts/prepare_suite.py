# prepare_suite: one hub suite written once as local JSON lines, with its revision and sha256 recorded.
from pathlib import Path

from negdiff.io import write_json
from negdiff.runtime import job
from negdiff.staging import stage_suite

with job(snakemake) as log:
    p = snakemake.params
    out = Path(snakemake.output[0])
    record = stage_suite(p.where, out, revision=p.revision)
    log.info("staged %s (commit %s): %d files, %d pairs", p.where, record["commit"], len(record["files"]),
             sum(f["rows"] for f in record["files"].values()))
    write_json(out / "staging.json", record)
