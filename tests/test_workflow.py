"""The DAG as a whole: schema, dry runs, lint, an end-to-end tiny run, and exact rerun sets."""

from __future__ import annotations

import copy
import json
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


def test_config_yaml_spells_out_the_schema_defaults():
    """profiles/default replaces config.yaml by a --configfile, so the two must agree."""
    assert _validate(yaml.safe_load((REPO / "config.yaml").read_text())) == _validate({})


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
        "differentiation": 3,
        "figure_neuron_example": 1,
        "figure_negative_region": 1,
        "select_neurons": 3,
        # 8 checkpoints x 3 models, a pair job and a text job each; the final one carries the full condition list
        "evaluate_pairs": 24,
        "evaluate_text": 24,
        "collect_evals": 1,
        "figure_claims": 6,
        "summary_table": 1,
        "provenance_table": 1,
        "figure_verdicts": 1,
        "report": 1,
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
    figures = ["neuron_example", "negative_region", "ablation", "phenomena", "pos_surprisal", "layerwise",
               "training_dynamics", "dissociation", "claims"]
    for fig in figures:
        data = (res / "figures" / f"{fig}.pdf").read_bytes()
        assert data.startswith(b"%PDF") and len(data) > 5000, fig
    report = (res / "report.html").read_text(errors="replace")
    assert report.lstrip().lower().startswith("<!doctype html") and "summary.csv" in report
    summary = pl.read_csv(res / "tables" / "summary.csv")
    assert set(summary["claim_id"]) == {f"C{k}" for k in (1, 2, 3, 4, 6, 7, 8, 9)} | {"C5a", "C5b", "C5c"}
    assert summary.height == 11 * 3
    assert set(summary["verdict"]) <= {"holds", "absent", "inconclusive", "n/a"} and summary["reason"].is_not_null().all()
    # the ReLU model's neg_zero claims do not apply, with the reason
    opt = summary.filter((pl.col("model") == "tiny-opt") & ~pl.col("claim_id").is_in(["C7", "C8"]))
    assert (opt["verdict"] == "n/a").all() and opt["reason"].str.contains("relu").all()
    assert "claims.pdf" in report
    # provenance: one row per model job, from the records beside their outputs, in the report too
    prov = pl.read_csv(res / "tables" / "provenance.csv")
    assert prov.group_by("rule").len().sort("rule").rows() == [
        ("dump_activations", 3), ("evaluate_pairs", 12), ("evaluate_text", 12), ("select_neurons", 3)]
    assert "provenance.csv" in report
    loaded = prov.filter(pl.col("loaded"))
    assert (loaded["dtype"] == "float32").all() and loaded["model_files_sha256"].is_not_null().all()
    assert (loaded["bos_token"] == "<|endoftext|>").all() and (loaded["bos_token_id"] == 0).all()
    rec = json.loads((res / "provenance" / "tiny-llama" / "step30" / "evaluate_pairs.json").read_text())
    assert set(rec["inputs"]) == {"blimp", "tse", "nonsyntactic"} and rec["attn_implementation"]
    assert all(f.startswith("results/corpus/") for group in rec["inputs"].values() for f in group)
    text = json.loads((res / "provenance" / "tiny-llama" / "step30" / "evaluate_text.json").read_text())
    assert "results/corpus/valid.txt" in text["inputs"]["ppl_text"] and text["versions"]["torch"]
    metrics = pl.read_parquet(res / "tables" / "metrics.parquet")
    final = metrics.filter(pl.col("step") == 30)
    assert {"baseline", "neg_zero|wn@5|all", "neg_zero|random@5|all", "neg_zero|ppl_matched@5|all",
            "full|wn@5|all", "neg_zero|wn@5|single:1", "neg_zero|wn@5|cumulative:0"} <= set(final["condition"])
    # ReLU (tiny-opt): neg_zero, sign_flip and pos_relu are the identity, so never evaluated nor searched for
    opt_ops = {c.partition("|")[0] for c in metrics.filter(pl.col("model") == "tiny-opt")["condition"].to_list()}
    assert opt_ops == {"baseline", "full", "pos_zero"}
    opt_rec = json.loads((res / "selection" / "tiny-opt.json").read_text())
    assert opt_rec["nonlinearity"] == "relu" and set(opt_rec["identity_operations"]) == {"neg_zero", "sign_flip", "pos_relu"}
    assert opt_rec["ppl_matched"]["skipped"].startswith("relu(a) = 0 for a < 0, so neg_zero changes nothing")
    assert opt_rec["sets"]["ppl_matched@5"]["n_neurons"] == 0
    llama_rec = json.loads((res / "selection" / "tiny-llama.json").read_text())
    assert llama_rec["nonlinearity"] == "silu" and llama_rec["identity_operations"] == {} and "m" in llama_rec["ppl_matched"]
    assert set(metrics["suite"]) == {"ppl", "blimp", "tse", "nonsyntactic"}
    assert sorted(metrics["step"].unique().to_list()) == [0, 8, 16, 30]
    cfg = _validate(yaml.safe_load(TINY.read_text()))
    for model, spec in cfg["models"].items():
        final = f"step{cfg['training']['steps']}"
        scores = pl.read_parquet(res / "scores" / model / f"{final}.parquet")
        assert scores.height == spec["num_layers"] * spec["intermediate_size"]
        assert {"layer", "neuron", "wd", "wd_neg", "wd_pos", "md", "mean", "std", "frac_negative"} <= set(scores.columns)
        assert scores["wd"].is_finite().all() and scores["md"].is_finite().all()
        manifest = yaml.safe_load((res / "activations" / model / final / "manifest.json").read_text())
        assert manifest["n_tokens"] == cfg["activations"]["max_tokens"]
        # the prefix resolved from models.<name>.bos_token (default: the tokenizer's own BOS)
        assert manifest["meta"]["bos_token"] == "<|endoftext|>" and manifest["bos_token_id"] == 0
        assert (res / "logs" / "train_model" / f"{model}.log").stat().st_size > 0
    # nothing left to do
    assert planned_jobs(snakemake(wf, "--configfile", str(TINY), "-n").stdout) == Counter()


def _dry_run_with(wf: Path, tmp_path: Path, patch: dict) -> Counter:
    def merge(base: dict, update: dict) -> dict:
        for k, v in update.items():
            base[k] = merge(base.get(k) or {}, v) if isinstance(v, dict) else v
        return base

    cfg = merge(yaml.safe_load(TINY.read_text()), patch)
    path = tmp_path / "patched.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return planned_jobs(snakemake(wf, "--configfile", str(path), "-n").stdout)


EVAL_BOTH = {"evaluate_pairs": 12, "evaluate_text": 12}
EVAL_DOWNSTREAM = {"collect_evals": 1, "figure_claims": 6, "summary_table": 1, "figure_verdicts": 1, "report": 1, "all": 1,
                   "provenance_table": 1}


def test_rerun_after_scoring_change_is_exactly_downstream(tiny_run, tmp_path):
    planned = _dry_run_with(tiny_run, tmp_path, {"scoring": {"mode": "sample"}})
    assert planned == {
        "score_neurons": 3, "differentiation": 3, "figure_neuron_example": 1, "figure_negative_region": 1,
        "select_neurons": 3, **EVAL_BOTH, **EVAL_DOWNSTREAM,
    }


@pytest.mark.parametrize("patch, jobs", [
    ({"batch_size": 7}, EVAL_BOTH),
    ({"layer_group_size": 2}, EVAL_BOTH),
    ({"pairs_per_paradigm": {"blimp": 3}}, {"evaluate_pairs": 12}),
    ({"secondary_pairs_per_paradigm": {"blimp": 2}}, {"evaluate_pairs": 12}),
    ({"pairs_seed": 1}, {"evaluate_pairs": 12}),
    ({"suites": {"tse": "results/corpus/tse"}}, {"evaluate_pairs": 12}),
    ({"ppl_tokens": 500}, {"evaluate_text": 12}),
    ({"surprisal_tokens": 500}, {"evaluate_text": 12}),
])
def test_rerun_after_eval_only_change_is_evals_and_figures(tiny_run, tmp_path, patch, jobs):
    """Eval-only settings never rerun training, dumps, scores or selection; pair settings rerun only the
    pair jobs, text settings only the text jobs."""
    planned = _dry_run_with(tiny_run, tmp_path, {"evaluation": patch})
    assert planned == {**jobs, **EVAL_DOWNSTREAM}


def test_rerun_after_bootstrap_change_is_summary_only(tiny_run, tmp_path):
    planned = _dry_run_with(tiny_run, tmp_path, {"evaluation": {"bootstrap": 500}})
    assert planned == {"summary_table": 1, "figure_verdicts": 1, "report": 1, "all": 1}


def test_rerun_after_selection_change(tiny_run, tmp_path):
    planned = _dry_run_with(tiny_run, tmp_path, {"selection": {"seed": 1}})
    assert planned == {"select_neurons": 3, **EVAL_BOTH, **EVAL_DOWNSTREAM}


def test_rerun_after_one_model_change_touches_only_that_model(tiny_run, tmp_path):
    planned = _dry_run_with(tiny_run, tmp_path, {"models": {"tiny-opt": {"hidden_size": 48}}})
    assert planned == {
        "train_model": 1, "dump_activations": 1, "score_neurons": 1, "differentiation": 1,
        "figure_negative_region": 1, "select_neurons": 1, "evaluate_pairs": 4, "evaluate_text": 4, **EVAL_DOWNSTREAM,
    }


def test_rerun_after_bos_token_change_touches_only_that_models_prefixed_jobs(tiny_run, tmp_path):
    """A model's bos_token feeds its dump, its ppl-matched search and its evaluations (every job that prepends
    a prefix), never the training; the same token as the tokenizer's own BOS still reruns them (params)."""
    planned = _dry_run_with(tiny_run, tmp_path, {"models": {"tiny-neox": {"bos_token": "<|endoftext|>"}}})
    assert planned == {
        "dump_activations": 1, "score_neurons": 1, "differentiation": 1, "figure_negative_region": 1,
        "select_neurons": 1, "evaluate_pairs": 4, "evaluate_text": 4, **EVAL_DOWNSTREAM,
    }


def test_rerun_after_figure_setting_change(tiny_run, tmp_path):
    planned = _dry_run_with(tiny_run, tmp_path, {"figures": {"example_pairs": 3}})
    assert planned == {"figure_neuron_example": 1, "report": 1, "all": 1}
    planned = _dry_run_with(tiny_run, tmp_path, {"figures": {"top_percent": 10.0}})
    assert planned == {"figure_negative_region": 1, "report": 1, "all": 1}


def test_rerun_after_library_code_change(tiny_run, tmp_path):
    scoring = tiny_run / "negdiff" / "scoring.py"
    original = scoring.read_text()
    try:
        scoring.write_text(original + "\n# a code change\n")
        planned = planned_jobs(snakemake(tiny_run, "--configfile", str(TINY), "-n").stdout)
    finally:
        scoring.write_text(original)
    assert planned == {
        "score_neurons": 3, "differentiation": 3, "figure_neuron_example": 1, "figure_negative_region": 1,
        "select_neurons": 3, **EVAL_BOTH, **EVAL_DOWNSTREAM,
    }


def test_sample_settings_rerun_nothing_while_keeping_every_token(tiny_run, tmp_path):
    assert _dry_run_with(tiny_run, tmp_path, {"activations": {"sample_tokens": 100, "sample_seed": 3}}) == Counter()


def test_keeping_histograms_reruns_dumps_and_everything_after(tiny_run, tmp_path):
    planned = _dry_run_with(tiny_run, tmp_path, {"activations": {"keep": "histograms"},
                                                 "scoring": {"mode": "streaming"}})
    assert planned == {
        "dump_activations": 3, "score_neurons": 3, "differentiation": 3, "figure_neuron_example": 1,
        "figure_negative_region": 1, "select_neurons": 3, **EVAL_BOTH, **EVAL_DOWNSTREAM,
    }


def test_keeping_histograms_needs_streaming_scores(tiny_run, tmp_path):
    with pytest.raises(AssertionError, match=r"activations.keep: histograms.*scoring.mode: streaming"):
        _dry_run_with(tiny_run, tmp_path, {"activations": {"keep": "histograms"}})


def test_histogram_dump_runs_through_scoring_and_the_example_figure(tiny_run, tmp_path):
    """keep: histograms end to end for the example model: dump (two passes), scores from the histograms,
    the example-neuron figure from the token sample; then the sample size reruns exactly that chain."""
    import shutil

    wf = tmp_path / "wf"
    shutil.copytree(tiny_run, wf, symlinks=True)
    cfg = yaml.safe_load(TINY.read_text())
    cfg["activations"].update(keep="histograms", sample_tokens=400)
    cfg["scoring"].update(mode="streaming", bins=512)
    path = tmp_path / "hist.yaml"
    path.write_text(yaml.safe_dump(cfg))
    targets = ["results/scores/tiny-llama/step30.parquet", "results/figures/neuron_example.pdf"]
    snakemake(wf, *targets, "--configfile", str(path), "--cores", "2")
    manifest = json.loads((wf / "results/activations/tiny-llama/step30/manifest.json").read_text())
    assert manifest["keep"] == "histograms" and manifest["n_tokens"] == 400
    assert manifest["n_tokens_seen"] == cfg["activations"]["max_tokens"]
    assert manifest["histograms"]["bins"] == 512
    got = pl.read_parquet(wf / "results/scores/tiny-llama/step30.parquet")
    exact = pl.read_parquet(tiny_run / "results/scores/tiny-llama/step30.parquet")
    from negdiff.streaming import Grid, error_bound

    assert got.height == exact.height and got["md"].is_finite().all()
    assert (got["wd"] - exact["wd"]).abs().max() <= error_bound(Grid(512, 8.0))
    assert (wf / "results/figures/neuron_example.pdf").read_bytes().startswith(b"%PDF")
    cfg["activations"]["sample_tokens"] = 300
    path.write_text(yaml.safe_dump(cfg))
    planned = planned_jobs(snakemake(wf, *targets, "--configfile", str(path), "-n").stdout)
    assert planned == {"dump_activations": 1, "score_neurons": 1, "figure_neuron_example": 1}
