"""Profiles, conda pins and the test-only failure setting, without a cluster (tests/slurm has one)."""

from __future__ import annotations

import os
import re
import tomllib
from collections import Counter

import yaml

from workflow_util import REPO, copy_workflow, planned_jobs, snakemake

TINY = REPO / "tests" / "config" / "tiny.yaml"
SLURM = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
DEFAULT = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
GPU_RULES = {"dump_activations", "select_neurons", "evaluate_pairs", "evaluate_text"}


def _rules() -> set[str]:
    return {m for f in (REPO / "rules").glob("*.smk") for m in re.findall(r"^rule (\w+):", f.read_text(), re.M)} | {"all"}


def _local_rules() -> set[str]:
    block = re.search(r"^localrules:\n((?:    \w+,\n)+)", (REPO / "Snakefile").read_text(), re.M).group(1)
    return set(re.findall(r"\w+", block))


def test_conda_env_pins_agree_with_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = set(project["dependencies"]) | set(extras["real"]) | set(extras["lmeval"])
    env = yaml.safe_load((REPO / "envs" / "negdiff.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(pip) == wanted


def test_slurm_profile_covers_every_submitted_rule():
    assert SLURM["executor"] == "slurm" and SLURM["jobs"] > 0 and SLURM["retries"] >= 1
    assert SLURM["replace-workflow-config"] is True
    assert SLURM["rerun-triggers"] == DEFAULT["rerun-triggers"]
    local = _local_rules()
    assert {"all", "collect_evals", "figure_claims", "figure_negative_region", "figure_neuron_example",
            "summary_table", "report"} <= local
    submitted = _rules() - local
    assert set(SLURM["set-resources"]) == submitted
    for rule, res in SLURM["set-resources"].items():
        # memory and time grow with the attempt
        assert "attempt" in res["mem_mb"] and "attempt" in str(res["runtime"]), rule
        assert eval(res["mem_mb"], {"attempt": 2}) == 2 * eval(res["mem_mb"], {"attempt": 1}), rule
        if rule in GPU_RULES:
            assert res["gpu"] == 1 and res["slurm_partition"] == "gpu", rule
        else:
            assert "gpu" not in res and "slurm_partition" not in res, rule  # the default (CPU) partition
    assert SLURM["default-resources"]["slurm_partition"] == "cpu"
    assert SLURM["default-resources"]["attempt"] == DEFAULT["default-resources"]["attempt"] == "attempt"
    assert DEFAULT["resources"] == {"gpu": 1}


def test_slurm_profile_plans_the_dag(tmp_path):
    """The profile parses and plans the tiny DAG (dry run; the plugin needs no cluster for that)."""
    wf = copy_workflow(tmp_path / "wf")
    out = snakemake(wf, "--workflow-profile", "profiles/slurm", "--configfile", str(TINY), "-n")
    text = out.stdout + out.stderr
    assert planned_jobs(out.stdout)["evaluate_pairs"] == planned_jobs(out.stdout)["evaluate_text"] == 12
    assert re.search(r"rule evaluate_pairs:(?:\n.*)*?\n\s+resources: .*slurm_partition=gpu, .*gpu=1", text)


def test_config_file_replaces_config_yaml_without_the_profile_flag(tmp_path):
    """Cluster jobs do not get --replace-workflow-config; the Snakefile skips config.yaml itself when a
    --configfile is given, so a job sees exactly the config of the main process."""
    wf = copy_workflow(tmp_path / "wf")
    cfg = yaml.safe_load(TINY.read_text())
    cfg["models"] = {"only-one": cfg["models"]["tiny-llama"]}
    cfg["figures"]["example_model"] = "only-one"
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump(cfg))
    # no profile at all: plain Snakemake would merge config.yaml's three models into it
    out = snakemake(wf, "--workflow-profile", "none", "--configfile", str(path), "-n", "--cores", "1")
    assert planned_jobs(out.stdout)["train_model"] == 1


def test_failure_setting_fails_first_attempt_then_retry_completes(tmp_path):
    """NEGDIFF_FAIL_FIRST_ATTEMPT: the job writes its outputs, fails on attempt 1, Snakemake removes
    them, and the retry (attempt 2) rebuilds them."""
    wf = copy_workflow(tmp_path / "wf")
    target = "results/corpus/manifest.json"
    env_before = os.environ.get("NEGDIFF_FAIL_FIRST_ATTEMPT")
    os.environ["NEGDIFF_FAIL_FIRST_ATTEMPT"] = "make_corpus"
    try:
        failed = snakemake(wf, "--configfile", str(TINY), "--cores", "1", target, check=False)
        assert failed.returncode != 0
        text = failed.stdout + failed.stderr
        assert "injected failure" in text and "attempt 1" in text, text[-3000:]
        assert "Removing output files of failed job make_corpus" in text
        assert not (wf / target).exists() and not (wf / "results" / "corpus" / "train.txt").exists()
        done = snakemake(wf, "--configfile", str(TINY), "--cores", "1", "--retries", "1", target)
        assert "Trying to restart job" in done.stdout + done.stderr or "attempt" in done.stdout + done.stderr
    finally:
        if env_before is None:
            os.environ.pop("NEGDIFF_FAIL_FIRST_ATTEMPT")
        else:
            os.environ["NEGDIFF_FAIL_FIRST_ATTEMPT"] = env_before
    assert (wf / target).exists()
    assert planned_jobs(snakemake(wf, "--configfile", str(TINY), "-n", target).stdout) == Counter()
