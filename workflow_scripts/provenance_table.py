# provenance_table: one row per model job from the provenance records the jobs wrote (negdiff/provenance.py).
from negdiff.io import read_json, write_csv
from negdiff.provenance import provenance_table
from negdiff.runtime import job

with job(snakemake) as log:
    records = {tuple(key): read_json(path) for key, path in zip(snakemake.params.jobs, snakemake.input)}
    table = provenance_table(records)
    write_csv(snakemake.output[0], table)
    log.info("provenance of %d jobs:\n%s", table.height, table.select("rule", "model", "checkpoint", "dtype", "devices"))
