# prepare_lmeval: the datasets of one lm-eval task list fetched into the datasets cache (no GPU, needs the network).
from negdiff.io import write_json
from negdiff.lmeval import prefetch
from negdiff.provenance import package_versions
from negdiff.runtime import job

with job(snakemake) as log:
    p = snakemake.params
    docs = prefetch(p.tasks, p.include_path)
    log.info("lm-eval documents per task: %s", docs)
    write_json(snakemake.output[0], {"tasks": list(p.tasks), "documents": docs, "include_path": p.include_path,
                                     "versions": package_versions()})
