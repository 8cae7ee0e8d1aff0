from pathlib import Path

from negdiff.models import convert_gguf
from negdiff.runtime import job

with job(snakemake) as log:
    record = convert_gguf(snakemake.input[0], Path(snakemake.output[0]) / snakemake.params.checkpoint,
                          dtype=snakemake.params.dtype, package=snakemake.params.package)
    log.info("de-quantised: %s", record)
