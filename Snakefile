# negdiff: Negative pre-activations differentiate syntax (Kong et al., ICLR 2026) as a Snakemake pipeline.
# Thin on purpose: configuration, validation, rule modules and the default target.
from snakemake.utils import min_version, validate

min_version("9.0")


# --configfile X replaces config.yaml rather than extending it (profiles also set replace-workflow-config,
# but Snakemake does not pass that flag on to cluster jobs, which must see the same config).
if not workflow.overwrite_configfiles:

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
include: "rules/staging.smk"


# Run on the submitting host under a cluster executor (profiles/slurm): downloads of real text, hub models
# and hub suites (compute nodes are often offline), aggregation, figures and the report are light and need no GPU.
localrules:
    all,
    prepare_text,
    fetch_model,
    prepare_suite,
    stage,
    prepare_lmeval,
    collect_evals,
    figure_neuron_example,
    figure_negative_region,
    figure_claims,
    figure_verdicts,
    summary_table,
    provenance_table,
    report,


rule all:
    default_target: True
    input:
        FINAL_TARGETS,
