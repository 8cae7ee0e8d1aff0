"""The figure registry: every PDF figure of the pipeline, the rule that draws it and how the report shows it.

A figure is one :class:`Figure` in :data:`FIGURES`, keyed by its name (the file
``{run_dir}/figures/{name}.pdf``). The Snakefile reads the registry to plan the figures
(``CLAIM_FIGURES``, ``REPORTED``) and to mark each output for the report with its caption and category;
``workflow_scripts/figure_claims.py`` dispatches on it. Light on purpose (no matplotlib, no polars): the
Snakefile imports it at parse time; :func:`plot_function` imports the plotting modules only when a job
draws a figure.

A new figure of the evaluation stage (drawn by rule ``figure_claims`` from the collected tables) takes
three files: its function in :mod:`negdiff.claim_plots`, ``fn(out, *tables, main_percent, data_label,
**extras) -> polars.DataFrame`` (the table it plotted); its entry here; and its caption, a branch
``{% elif snakemake.wildcards.figure == "NAME" %}`` of ``report/claim_figures.rst`` (one caption file
per rule: Snakemake takes a rule's caption as a fixed path).
"""

from __future__ import annotations

from dataclasses import dataclass

# the rule drawing every evaluation-stage figure, one job per figure (wildcard ``{figure}``)
CLAIM_RULE = "figure_claims"
# tables rule figure_claims reads (its inputs), each passed to a plot function at most once, in ``tables`` order
CLAIM_TABLES = ("metrics", "surprisal", "cohort_wd")
# what figure_claims can pass beyond main_percent and data_label, by keyword
CLAIM_EXTRAS = ("architectures", "ppl_matched_m")


@dataclass(frozen=True)
class Figure:
    """One figure: ``plot`` names its function (``"module.function"`` in :mod:`negdiff`), ``rule`` the
    Snakemake rule that draws it, ``caption`` its reST caption (relative to the repository) and
    ``category`` its report category. For the figures of :data:`CLAIM_RULE`: ``tables`` are the tables
    passed after ``out`` (names from :data:`CLAIM_TABLES`), ``extras`` the keywords from
    :data:`CLAIM_EXTRAS`, and ``needs_checkpoints`` leaves the figure out where no model has more than
    one evaluated checkpoint."""

    plot: str
    rule: str
    caption: str
    category: str
    tables: tuple[str, ...] = ()
    extras: tuple[str, ...] = ()
    needs_checkpoints: bool = False


_CLAIMS = dict(rule=CLAIM_RULE, caption="report/claim_figures.rst", category="Evaluation")

FIGURES: dict[str, Figure] = {
    "neuron_example": Figure("plots.plot_neuron_example", "figure_neuron_example", "report/neuron_example.rst",
                             "Scores"),
    "negative_region": Figure("plots.plot_negative_region", "figure_negative_region", "report/negative_region.rst",
                              "Scores"),
    "ablation": Figure("claim_plots.plot_ablation", tables=("metrics",), extras=("architectures", "ppl_matched_m"),
                       **_CLAIMS),
    "phenomena": Figure("claim_plots.plot_phenomena", tables=("metrics",), **_CLAIMS),
    "pos_surprisal": Figure("claim_plots.plot_pos_surprisal", tables=("surprisal",), **_CLAIMS),
    "layerwise": Figure("claim_plots.plot_layerwise", tables=("metrics",), **_CLAIMS),
    "training_dynamics": Figure("claim_plots.plot_training_dynamics", tables=("metrics", "cohort_wd"),
                                needs_checkpoints=True, **_CLAIMS),
    "dissociation": Figure("claim_plots.plot_dissociation", tables=("metrics",), **_CLAIMS),
    "claims": Figure("claim_plots.plot_claims", "figure_verdicts", "report/claims.rst", "Summary"),
}


def planned_figures(*, checkpoints: bool, rule: str | None = None) -> list[str]:
    """Names of the figures a run draws, in registry order (only ``rule``'s, if given); ``checkpoints``
    says whether some model has more than one evaluated checkpoint."""
    return [name for name, f in FIGURES.items()
            if (rule is None or f.rule == rule) and (checkpoints or not f.needs_checkpoints)]


def rule_report(rule: str) -> tuple[str, str]:
    """``(caption, category)`` of a rule's figures, which share them (one caption file per rule)."""
    found = {(f.caption, f.category) for f in FIGURES.values() if f.rule == rule}
    if len(found) != 1:
        raise ValueError(f"figures of rule {rule!r} need one caption and category, found {sorted(found) or 'none'}")
    return found.pop()


def plot_function(name: str):
    """The function that draws figure ``name`` (imports matplotlib)."""
    from negdiff import claim_plots, plots

    module, _, function = FIGURES[name].plot.partition(".")
    return getattr({"claim_plots": claim_plots, "plots": plots}[module], function)
