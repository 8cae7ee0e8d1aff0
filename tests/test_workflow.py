"""The DAG as a whole: schema, dry runs, lint, an end-to-end tiny run, and exact rerun sets."""

from __future__ import annotations

import copy
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
import yaml

from workflow_util import REPO, copy_workflow, planned_jobs, snakemake

TINY = REPO / "tests" / "config" / "tiny.yaml"


def _validate(cfg: dict) -> dict:
    from snakemake.utils import validate

    cfg = copy.deepcopy(cfg)
    validate(cfg, str(REPO / "schemas" / "config.schema.yaml"))
    return cfg


def test_schema_fills_defaults():
    cfg = _validate({})
    assert cfg["device"] == "cpu"
    assert set(cfg["models"]) == {"tiny-llama", "tiny-neox", "tiny-opt"}
    assert cfg["scoring"]["mode"] == "exact"
    assert cfg["activations"]["window"] == 128
    assert cfg["activations"]["checkpoints"] == ["final"]


def test_default_config_is_valid_and_complete():
    cfg = _validate(yaml.safe_load((REPO / "config.yaml").read_text()))
    assert cfg["corpus"]["train_words"] >= 3_000_000
    assert {m["architecture"] for m in cfg["models"].values()} == {"llama", "gpt_neox", "opt"}


@pytest.mark.parametrize(
    "patch, key",
    [
        ({"scoring": {"mode": "fast"}}, "mode"),
        ({"activations": {"stride": -1}}, "stride"),
        ({"activations": {"layers": []}}, "layers"),
        ({"figures": {"top_percent": 100}}, "top_percent"),
        ({"scoring": {"unknown_key": 1}}, "unknown_key"),
        ({"models": {"m": {"source": "train", "architecture": "bert"}}}, "architecture"),
    ],
)
def test_schema_rejects_bad_config(patch, key):
    from snakemake.exceptions import WorkflowError

    with pytest.raises(WorkflowError) as err:
        _validate(patch)
    assert key in str(err.value)


def test_dry_run_api_plans_default_dag(tmp_path):
    """The default target plans the whole DAG through the Snakemake Python API, without running anything."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
        wf = api.workflow(
            resource_settings=ResourceSettings(cores=2),
            config_settings=ConfigSettings(configfiles=[REPO / "config.yaml"]),
            snakefile=REPO / "Snakefile",
            workdir=tmp_path,
        )
        dag = wf.dag(DAGSettings(targets={"all"}))
        dag.execute_workflow(executor="dryrun")
        planned = Counter(job.rule.name for job in wf._workflow.dag.jobs)
    assert planned == {
        "make_corpus": 1,
        "train_tokenizer": 1,
        "train_model": 3,
        "dump_activations": 3,
        "score_neurons": 3,
        "figure_neuron_example": 1,
        "figure_negative_region": 1,
        "all": 1,
    }


def test_dry_run_cli_and_lint(tmp_path):
    wf = copy_workflow(tmp_path / "wf")
    out = snakemake(wf, "-n", "--cores", "2")
    assert planned_jobs(out.stdout)["train_model"] == 3
    lint = snakemake(wf, "--lint", check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The whole default target on the tests-sized config, once per module, in a copy of the workflow."""
    wf = copy_workflow(tmp_path_factory.mktemp("tiny") / "wf")
    snakemake(wf, "--configfile", str(TINY), "--cores", "2")
    return wf


def test_end_to_end_outputs(tiny_run):
    wf = tiny_run
    res = wf / "results"
    for fig in ("neuron_example.pdf", "negative_region.pdf"):
        data = (res / "figures" / fig).read_bytes()
        assert data.startswith(b"%PDF") and len(data) > 5000
    cfg = _validate(yaml.safe_load(TINY.read_text()))
    for model, spec in cfg["models"].items():
        final = f"step{cfg['training']['steps']}"
        scores = pl.read_parquet(res / "scores" / model / f"{final}.parquet")
        assert scores.height == spec["num_layers"] * spec["intermediate_size"]
        assert {"layer", "neuron", "wd", "wd_neg", "wd_pos", "md", "mean", "std", "frac_negative"} <= set(scores.columns)
        assert scores["wd"].is_finite().all() and scores["md"].is_finite().all()
        manifest = yaml.safe_load((res / "activations" / model / final / "manifest.json").read_text())
        assert manifest["n_tokens"] == cfg["activations"]["max_tokens"]
        assert (res / "logs" / "train_model" / f"{model}.log").stat().st_size > 0
    # nothing left to do
    assert planned_jobs(snakemake(wf, "--configfile", str(TINY), "-n").stdout) == Counter()


def _dry_run_with(wf: Path, tmp_path: Path, patch: dict) -> Counter:
    cfg = yaml.safe_load(TINY.read_text())
    for section, values in patch.items():
        if isinstance(values, dict) and isinstance(cfg.get(section), dict):
            for k, v in values.items():
                if isinstance(v, dict):
                    cfg[section][k].update(v)
                else:
                    cfg[section][k] = v
        else:
            cfg[section] = values
    path = tmp_path / "patched.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return planned_jobs(snakemake(wf, "--configfile", str(path), "-n").stdout)


def test_rerun_after_scoring_change_is_exactly_downstream(tiny_run, tmp_path):
    planned = _dry_run_with(tiny_run, tmp_path, {"scoring": {"mode": "sample"}})
    assert planned == {"score_neurons": 3, "figure_neuron_example": 1, "figure_negative_region": 1, "all": 1}


def test_rerun_after_one_model_change_touches_only_that_model(tiny_run, tmp_path):
    planned = _dry_run_with(tiny_run, tmp_path, {"models": {"tiny-opt": {"hidden_size": 48}}})
    assert planned == {"train_model": 1, "dump_activations": 1, "score_neurons": 1, "figure_negative_region": 1, "all": 1}


def test_rerun_after_figure_setting_change(tiny_run, tmp_path):
    planned = _dry_run_with(tiny_run, tmp_path, {"figures": {"example_pairs": 3}})
    assert planned == {"figure_neuron_example": 1, "all": 1}
    planned = _dry_run_with(tiny_run, tmp_path, {"figures": {"top_percent": 10.0}})
    assert planned == {"figure_negative_region": 1, "all": 1}


def test_rerun_after_library_code_change(tiny_run, tmp_path):
    scoring = tiny_run / "negdiff" / "scoring.py"
    original = scoring.read_text()
    try:
        scoring.write_text(original + "\n# a code change\n")
        planned = planned_jobs(snakemake(tiny_run, "--configfile", str(TINY), "-n").stdout)
    finally:
        scoring.write_text(original)
    assert planned == {"score_neurons": 3, "figure_neuron_example": 1, "figure_negative_region": 1, "all": 1}
