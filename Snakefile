# negdiff: Negative pre-activations differentiate syntax (Kong et al., ICLR 2026) as a Snakemake pipeline.
# Thin on purpose: configuration, validation, rule modules and the default target.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "schemas/config.schema.yaml")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/corpus.smk"
include: "rules/models.smk"
include: "rules/activations.smk"
include: "rules/scoring.smk"
include: "rules/selection.smk"
include: "rules/evaluation.smk"
include: "rules/figures.smk"


rule all:
    default_target: True
    input:
        FINAL_TARGETS,
