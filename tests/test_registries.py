"""The registries agree with what uses them: figures with the rules and captions, set methods with the
set names, operations and suites with the config schema."""

from __future__ import annotations

import inspect
import re

import pytest
import yaml

from workflow_util import REPO

from negdiff import figure_registry as F

SCHEMA = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
RULES = {m for f in (REPO / "rules").glob("*.smk") for m in re.findall(r"^rule (\w+):", f.read_text(), re.M)}
BRANCH = re.compile(r"""\{%-?\s*(?:el)?if\s+snakemake\.wildcards\.figure\s*==\s*["'](\w+)["']\s*-?%\}""")


def _enums(node, path=()):
    """Every ``enum`` of the schema, with where it is."""
    if isinstance(node, dict):
        if "enum" in node:
            yield path, node["enum"]
        for k, v in node.items():
            yield from _enums(v, path + (k,))
    elif isinstance(node, list):
        for k, v in enumerate(node):
            yield from _enums(v, path + (k,))


# --------------------------------------------------------------------------- figures


@pytest.mark.parametrize("name", list(F.FIGURES))
def test_every_figure_has_its_rule_caption_and_function(name):
    fig = F.FIGURES[name]
    assert fig.rule in RULES, f"{name}: no rule {fig.rule} in rules/*.smk"
    assert (REPO / fig.caption).is_file(), f"{name}: caption {fig.caption} does not exist"
    assert fig.category
    fn = F.plot_function(name)
    assert callable(fn) and fn.__name__ == fig.plot.partition(".")[2]
    if fig.rule == F.CLAIM_RULE:  # figure_claims calls fn(out, *tables, main_percent=, data_label=, **extras)
        assert fig.tables and set(fig.tables) <= set(F.CLAIM_TABLES) and set(fig.extras) <= set(F.CLAIM_EXTRAS)
        params = inspect.signature(fn).parameters
        positional = [p for p in params.values() if p.kind == p.POSITIONAL_OR_KEYWORD]
        assert len(positional) == 1 + len(fig.tables), f"{name}: takes out and {len(fig.tables)} table(s)"
        assert {"main_percent", "data_label", *fig.extras} <= set(params)
    else:
        assert not fig.tables and not fig.extras and not fig.needs_checkpoints


def test_each_rule_has_one_caption_and_the_claim_caption_one_branch_per_figure():
    for rule in {f.rule for f in F.FIGURES.values()}:
        F.rule_report(rule)
    caption, _ = F.rule_report(F.CLAIM_RULE)
    branches = BRANCH.findall((REPO / caption).read_text())
    assert sorted(branches) == sorted(F.planned_figures(checkpoints=True, rule=F.CLAIM_RULE))
    assert len(branches) == len(set(branches))


def test_claim_caption_renders_per_figure():
    from jinja2 import Environment

    caption, _ = F.rule_report(F.CLAIM_RULE)
    template = Environment(trim_blocks=True, lstrip_blocks=True).from_string((REPO / caption).read_text())
    texts = {}
    for name in F.planned_figures(checkpoints=True, rule=F.CLAIM_RULE):
        wildcards = type("W", (), {"figure": name})
        texts[name] = template.render(snakemake=type("S", (), {"wildcards": wildcards})).strip()
        assert texts[name].startswith("**") and "*How to read it:*" in texts[name], name
    assert len(set(texts.values())) == len(texts)


def test_checkpoint_figures_are_planned_only_with_checkpoints():
    every = F.planned_figures(checkpoints=True)
    assert every == list(F.FIGURES)
    without = F.planned_figures(checkpoints=False)
    assert without == [n for n in every if not F.FIGURES[n].needs_checkpoints]
    assert "training_dynamics" in every and "training_dynamics" not in without


def test_registry_is_cheap_to_import():
    """The Snakefile imports the registry at parse time: no matplotlib, polars or torch behind it."""
    import subprocess
    import sys

    code = ("import sys; import negdiff.figure_registry; "
            "print(sorted(m for m in ('matplotlib', 'polars', 'torch', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


def test_the_planned_dag_draws_every_registered_figure_by_its_rule_caption_and_category(tmp_path):
    """Dry run of the default config (models with checkpoints, so every figure): each figure's PDF comes from
    its registry rule, marked for the report with its caption and category, and the report waits for it."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        wf = api.workflow(
            resource_settings=ResourceSettings(cores=1),
            config_settings=ConfigSettings(configfiles=[REPO / "config.yaml"]),
            snakefile=REPO / "Snakefile",
            workdir=tmp_path,
        )
        dag = wf.dag(DAGSettings(targets={"all"}))
        dag.execute_workflow(executor="dryrun")
        workflow = wf._workflow
        run = workflow.globals["RUN"]
        assert workflow.globals["CLAIM_FIGURES"] == F.planned_figures(checkpoints=True, rule=F.CLAIM_RULE)
        by_output = {str(f): job for job in workflow.dag.jobs for f in job.output}
        reported = [str(f) for job in workflow.dag.jobs if job.rule.name == "report" for f in job.input]
        for name, fig in F.FIGURES.items():
            path = f"{run}/figures/{name}.pdf"
            job = by_output[path]
            assert job.rule.name == fig.rule, name
            flags = next(f for f in job.rule.output if f.flags.get("report")).flags["report"]
            assert str(flags.caption.get_path_or_uri(secret_free=True)).endswith(fig.caption), name
            assert flags.category == fig.category, name
            assert path in reported, name
            if fig.rule == F.CLAIM_RULE:
                assert set(F.CLAIM_TABLES) <= set(job.input.keys()), name


# --------------------------------------------------------------------------- neuron sets


def test_set_methods_are_the_set_names_methods():
    from negdiff import conditions, selection

    assert tuple(selection.SET_METHODS) == conditions.SET_METHODS
    for name, method in selection.SET_METHODS.items():
        assert callable(method.build), name
    # no schema enum names set methods today; one that does must name exactly these
    for path, enum in _enums(SCHEMA):
        if set(enum) & set(selection.SET_METHODS):
            assert set(enum) == set(selection.SET_METHODS), path


# --------------------------------------------------------------------------- schema enums


def test_schema_operations_are_the_registered_operations():
    from negdiff.interventions import OPERATIONS

    ops = SCHEMA["properties"]["evaluation"]["properties"]["operations"]
    assert ops["items"]["enum"] == list(OPERATIONS)
    assert ops["default"] == list(OPERATIONS)


def test_schema_suites_are_the_registered_suites():
    from negdiff.suites import SUITES

    evaluation = SCHEMA["properties"]["evaluation"]["properties"]
    assert set(evaluation["suites"]["properties"]) == set(SUITES)
    assert set(evaluation["pairs_per_paradigm"]["properties"]) == set(SUITES)
