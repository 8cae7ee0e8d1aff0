"""The tests-sized pipeline on a real one-node SLURM cluster, through snakemake-executor-plugin-slurm
and the project's profile (profiles/slurm).

``cluster`` installs Debian's slurm-wlm and munge where it can (root, apt-get), writes a one-node
``slurm.conf`` (cons_tres, no accounting) and starts munged, slurmctld and slurmd; it stops them by
PID at the end. Without root, apt-get or working daemons the tests skip and say why.

One run of the whole DAG goes through ``--executor slurm`` with ``NEGDIFF_FAIL_FIRST_ATTEMPT`` set to
``dump_activations``: every dump job writes its shards, then fails on attempt 1; the profile's
``retries`` resubmit it with twice the memory. The tests then check that

* every non-local job went through sbatch (one SLURM job id per submission, in Snakemake's log and in
  ``squeue``; plots, tables and the report ran on the submitting host);
* the requests follow the profile (partition, GPUs, memory scaled by attempt);
* each dump failed once (its SLURM log shows the injected failure), was retried, and the outputs of the
  whole run equal those of a local run of the same config, file by file;
* a rerun submits nothing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from workflow_util import REPO, copy_workflow, planned_jobs, snakemake

sys.path.insert(0, str(Path(__file__).parent))
from slurm_cluster import Cluster, ClusterUnavailable, install_packages  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

TINY = REPO / "tests" / "config" / "tiny.yaml"
FAILING_RULE = "dump_activations"
LOCAL_RULES = {"all", "prepare_text", "collect_evals", "figure_neuron_example", "figure_negative_region",
               "figure_claims", "summary_table", "provenance_table", "report"}
# settings for this one-node cluster, not the profile's business: no accounts, no slurmdbd (so no sacct:
# job states come from squeue), quick first status check, and keep the SLURM logs of successful jobs
CLUSTER_ARGS = ["--slurm-no-account", "--slurm-status-command", "squeue",
                "--slurm-init-seconds-before-status-checks", "2", "--slurm-keep-successful-logs"]
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the SLURM test needs root (it installs slurm-wlm and munge and runs slurmctld/slurmd)")
    try:
        install_packages()
        c = Cluster(tmp_path_factory.mktemp("slurm"))
        c.__enter__()
    except ClusterUnavailable as err:
        pytest.skip(f"no SLURM cluster here: {err}")
    try:
        yield c
    finally:
        c.stop()


def _slurm_env(cluster: Cluster, **extra: str) -> dict:
    env = dict(cluster.env)
    env.pop("PYTHONPATH", None)
    # the jobs run `python -m snakemake` with this interpreter; keep its bin/ first on PATH as well
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def _run(wf: Path, env: dict, *args: str, timeout: int = 2400) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", *args]
    return subprocess.run(cmd, cwd=wf, env=env, capture_output=True, text=True, timeout=timeout)


def _comparable(wf: Path) -> dict[str, object]:
    """Every result file except logs, timings (benchmark: files), PDFs and the HTML report; JSON without
    wall-clock fields."""

    def strip_times(obj):
        if isinstance(obj, dict):
            return {k: strip_times(v) for k, v in obj.items() if "seconds" not in k and "time" not in k}
        if isinstance(obj, list):
            return [strip_times(v) for v in obj]
        return obj

    out = {}
    res = wf / "results"
    for f in sorted(res.rglob("*")):
        rel = str(f.relative_to(wf))
        if not f.is_file() or rel.startswith(("results/logs/", "results/benchmarks/")) or f.suffix in (".pdf", ".html"):
            continue
        out[rel] = strip_times(json.loads(f.read_text())) if f.suffix == ".json" else f.read_bytes()
    return out


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    base = tmp_path_factory.mktemp("slurm-runs")
    t0 = time.time()
    # the reference: a local run of the same config (profiles/default)
    local = copy_workflow(base / "local")
    snakemake(local, "--configfile", str(TINY), "--cores", "2")
    t_local = time.time() - t0

    wf = copy_workflow(base / "slurm")
    env = _slurm_env(cluster, NEGDIFF_FAIL_FIRST_ATTEMPT=FAILING_RULE)
    args = ["--workflow-profile", "profiles/slurm", "--configfile", str(TINY), *CLUSTER_ARGS]
    t1 = time.time()
    first = _run(wf, env, *args)
    t_slurm = time.time() - t1
    log = first.stdout + first.stderr
    (base / "slurm-run.log").write_text(log)
    assert first.returncode == 0, f"SLURM run failed ({first.returncode}):\n{log[-8000:]}\n{cluster.logs()[-4000:]}"
    jobs_after_first = cluster.jobs()
    dry = _run(wf, env, *args, "-n")
    rerun = _run(wf, env, *args)
    return {
        "cluster": cluster, "local": local, "wf": wf, "log": log, "jobs": jobs_after_first, "dry": dry, "rerun": rerun,
        "jobs_after_rerun": cluster.jobs(), "seconds": {"local": t_local, "slurm": t_slurm},
    }


def _submissions(log: str) -> list[tuple[str, str, str]]:
    return SUBMITTED.findall(log)


def test_jobs_go_through_sbatch(runs):
    log, jobs = runs["log"], runs["jobs"]
    subs = _submissions(log)
    assert subs, log[-4000:]
    slurm_ids = [s[1] for s in subs]
    assert len(set(slurm_ids)) == len(slurm_ids)
    by_id = {j["JobId"]: j for j in jobs}
    # every submission is a real SLURM job that slurmctld ran
    assert set(slurm_ids) <= set(by_id), (slurm_ids, jobs)
    rules = Counter(_rule(by_id[i]) for i in slurm_ids)
    cfg = yaml.safe_load(TINY.read_text())
    n_models = len(cfg["models"])
    assert rules == {
        "make_corpus": 1, "train_tokenizer": 1, "train_model": n_models,
        FAILING_RULE: 2 * n_models,  # attempt 1 fails, attempt 2 succeeds
        "score_neurons": n_models, "differentiation": n_models, "select_neurons": n_models,
        # checkpoints step0, step8, step16, step30 of each model, a pair job and a text job each
        "evaluate_pairs": 4 * n_models, "evaluate_text": 4 * n_models,
    }, rules
    assert not set(rules) & LOCAL_RULES
    # local rules ran here, as local jobs (prepare_text is not in the DAG of the built-in corpus)
    for rule in LOCAL_RULES - {"prepare_text"}:
        assert re.search(rf"^localrule {rule}:", log, re.M), rule
    # slurmd launched each of them as a batch job
    slurmd_log = (runs["cluster"].root / "log" / "slurmd.log").read_text()
    for slurm_id in slurm_ids:
        assert f"Launching batch job {slurm_id} " in slurmd_log, slurm_id
    # each SLURM log is named by its job id and holds that job's Snakemake output
    for _, slurm_id, path in subs:
        p = Path(path)
        assert p.name == f"{slurm_id}.log" and p.exists(), path
        assert "slurm-jobstep" in p.read_text() or "Select jobs to execute" in p.read_text(), path


def test_requests_follow_the_profile(runs):
    jobs = {j["JobId"]: j for j in runs["jobs"]}
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    gpu_rules = {r for r, res in profile["set-resources"].items() if res.get("gpu")}
    assert gpu_rules == {"dump_activations", "select_neurons", "evaluate_pairs", "evaluate_text"}
    for _, slurm_id, _ in _submissions(runs["log"]):
        job = jobs[slurm_id]
        rule = _rule(job)
        want = profile["set-resources"][rule]
        assert job["Partition"] == ("gpu" if rule in gpu_rules else "cpu"), job
        assert job.get("TresPerJob", "") == ("gres:gpu:1" if rule in gpu_rules else ""), job
        if "cpus_per_task" in want:
            assert int(job["NumCPUs"]) == want["cpus_per_task"], job
        attempt = 2 if job["JobState"] == "COMPLETED" and _tries(runs["jobs"], job) == 2 else 1
        assert _mb(job["MinMemoryNode"]) == eval(want["mem_mb"], {"attempt": attempt}), job


def test_failed_first_attempt_is_retried_with_more_memory_and_nothing_is_lost(runs):
    jobs = runs["jobs"]
    dumps = [j for j in jobs if _rule(j) == FAILING_RULE]
    by_target: dict[str, list[dict]] = {}
    for j in sorted(dumps, key=lambda j: int(j["JobId"])):
        by_target.setdefault(j["Comment"], []).append(j)
    assert len(by_target) == 3
    for target, tries in by_target.items():
        assert [t["JobState"] for t in tries] == ["FAILED", "COMPLETED"], (target, tries)
        first_mem, second_mem = (_mb(t["MinMemoryNode"]) for t in tries)
        assert second_mem == 2 * first_mem, tries  # mem_mb: attempt * N
    # the failed attempts wrote their dumps, then failed; the job removed the outputs, and Snakemake
    # resubmitted it as attempt 2
    log = runs["log"]
    # (show-failed-logs prints the rule log of each failed job; the message may appear more than once)
    assert log.count(f"InjectedFailure: injected failure: NEGDIFF_FAIL_FIRST_ATTEMPT={FAILING_RULE}") >= 3
    assert log.count("Trying to restart job") == 3
    for _, slurm_id, path in _submissions(log):
        job = next(j for j in jobs if j["JobId"] == slurm_id)
        if _rule(job) != FAILING_RULE:
            continue
        text = Path(path).read_text()
        if job["JobState"] == "FAILED":
            assert "--attempt 1 " in text, text[-3000:]
            assert f"Removing output files of failed job {FAILING_RULE}" in text, text[-3000:]
        else:
            assert "--attempt 2 " in text and "Removing output files" not in text, text[-3000:]
    # nothing lost: every result equals the local run's
    got, want = _comparable(runs["wf"]), _comparable(runs["local"])
    assert sorted(got) == sorted(want)
    assert [k for k in want if got[k] != want[k]] == []
    assert any(k.endswith(".safetensors") for k in want) and any(k.endswith(".parquet") for k in want)


def test_rerun_submits_nothing(runs):
    assert planned_jobs(runs["dry"].stdout) == Counter(), runs["dry"].stdout[-3000:]
    rerun = runs["rerun"]
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert _submissions(rerun.stdout + rerun.stderr) == []
    assert "Nothing to be done" in rerun.stdout + rerun.stderr
    assert len(runs["jobs_after_rerun"]) == len(runs["jobs"])


def _rule(job: dict) -> str:
    """The rule of a SLURM job, from the comment the executor gives it (rule_NAME[_wildcards_...])."""
    return re.match(r"rule_([a-z_]+?)(_wildcards_.*)?$", job["Comment"]).group(1)


def _tries(jobs: list[dict], job: dict) -> int:
    """How many SLURM jobs were submitted for the same Snakemake job (same rule and wildcards)."""
    return sum(j["Comment"] == job["Comment"] for j in jobs)


def _mb(value: str) -> float:
    units = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
    return float(value[:-1]) * units[value[-1]] if value[-1] in units else float(value)
