"""Reliability of the workflow as a whole: interrupted runs, a corrupted shard in a finished run, and
determinism, on a one-model variant of the tiny config.

Two copies of the workflow run the same config: ``reference`` straight through (in the background), and
``interrupted``, which is stopped twice while ``dump_activations`` is writing its shards (Ctrl-C, i.e.
SIGINT to the whole process group, then SIGTERM to the whole group as a batch system or ``timeout``
sends it), and then rerun to completion. Its outputs must equal the reference byte for byte.

To stop the dump *between* shards every time, the interrupted runs put a ``sitecustomize`` on
PYTHONPATH that sleeps after each shard is saved (the signal itself is real). Marked slow: the module
takes about two minutes on two busy cores.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import polars as pl
import pytest
import yaml

from workflow_util import REPO, copy_workflow, planned_jobs, snakemake

pytestmark = pytest.mark.slow

TINY = REPO / "tests" / "config" / "tiny.yaml"
MODEL = "tiny-llama"

SLOW_SHARDS = '''
import os, time
if os.environ.get("NEGDIFF_TEST_SLOW_SHARDS"):
    import safetensors.torch as _st
    _save = _st.save_file
    def save_file(*args, **kwargs):
        out = _save(*args, **kwargs)
        time.sleep(float(os.environ["NEGDIFF_TEST_SLOW_SHARDS"]))
        return out
    _st.save_file = save_file
'''


def _one_model_config(path: Path) -> tuple[Path, str]:
    cfg = yaml.safe_load(TINY.read_text())
    cfg["models"] = {MODEL: cfg["models"][MODEL]}
    path.write_text(yaml.safe_dump(cfg))
    return path, f"step{cfg['training']['steps']}"


def _env(slow_dir: Path | None = None) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if slow_dir is not None:
        env.update(PYTHONPATH=str(slow_dir), NEGDIFF_TEST_SLOW_SHARDS="1.0")
    return env


def _start(wf: Path, *args: str, env: dict, log: Path) -> subprocess.Popen:
    # own session: a signal to its process group reaches Snakemake and its jobs, never pytest
    return subprocess.Popen([sys.executable, "-m", "snakemake", *args], cwd=wf, env=env,
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, start_new_session=True)


def _interrupt_dump(proc: subprocess.Popen, dump: Path, sig: int, log: Path, timeout: float = 300) -> dict:
    """Wait until the dump has saved its first shard (and not its manifest), then signal the group."""
    t0 = time.time()
    first = dump / "shard-00000.safetensors"
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended ({proc.returncode}) before the dump wrote a shard:\n"
                                 + log.read_text()[-4000:])
        if time.time() - t0 > timeout:
            os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError("the dump never wrote a shard:\n" + log.read_text()[-4000:])
        try:
            if first.stat().st_mtime >= t0 and not (dump / "manifest.json").exists():
                break
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    seen = sorted(p.name for p in dump.iterdir())
    os.killpg(proc.pid, sig)
    rc = proc.wait(timeout=120)
    return {"rc": rc, "seen": seen, "output": log.read_text()}


def _incomplete(wf: Path) -> set[str]:
    d = wf / ".snakemake" / "incomplete"
    if not d.is_dir():
        return set()
    return {base64.b64decode(p.name).decode() for p in d.iterdir() if p.is_file()}


def _bytes(wf: Path, checkpoint: str) -> dict[str, bytes]:
    """Every output compared between runs: scores, selection, metrics, and the dump itself."""
    res = wf / "results"
    files = [
        res / "scores" / MODEL / f"{checkpoint}.parquet",
        res / "selection" / f"{MODEL}.parquet",
        res / "selection" / f"{MODEL}.json",
        res / "evals" / MODEL / checkpoint / "pair_metrics.parquet",
        res / "evals" / MODEL / checkpoint / "text_metrics.parquet",
        *sorted((res / "activations" / MODEL / checkpoint).glob("shard-*.safetensors")),
        res / "activations" / MODEL / checkpoint / "manifest.json",
    ]
    return {str(f.relative_to(wf)): f.read_bytes() for f in files}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("reliability")
    config, checkpoint = _one_model_config(base / "one.yaml")
    targets = [
        f"results/scores/{MODEL}/{checkpoint}.parquet",
        f"results/selection/{MODEL}.parquet",
        f"results/evals/{MODEL}/{checkpoint}/pair_metrics.parquet",
        f"results/evals/{MODEL}/{checkpoint}/text_metrics.parquet",
    ]
    common = ["--configfile", str(config), "--cores", "2"]
    slow = base / "slow"
    slow.mkdir()
    (slow / "sitecustomize.py").write_text(SLOW_SHARDS)
    t_start = time.time()

    ref = copy_workflow(base / "reference")
    ref_proc = _start(ref, *common, *targets, env=_env(), log=base / "reference.log")

    wf = copy_workflow(base / "interrupted")
    dump = wf / "results" / "activations" / MODEL / checkpoint
    dump_rel = str(dump.relative_to(wf))
    out: dict = {"wf": wf, "ref": ref, "common": common, "targets": targets, "checkpoint": checkpoint,
                 "dump": dump, "dump_rel": dump_rel}
    try:
        # 1. Ctrl-C while the dump is writing shards
        r = _interrupt_dump(_start(wf, *common, *targets, env=_env(slow), log=base / "run1.log"),
                            dump, signal.SIGINT, base / "run1.log")
        r.update(after=sorted(p.name for p in dump.iterdir()) if dump.exists() else None,
                 incomplete=_incomplete(wf), scores=(wf / targets[0]).exists())
        out["sigint"] = r
        out["dry_after_sigint"] = snakemake(wf, *common, "-n", *targets, check=False)

        # 2. rerun the incomplete job, then SIGTERM to the whole group while it dumps
        r = _interrupt_dump(_start(wf, *common, "--rerun-incomplete", *targets, env=_env(slow), log=base / "run2.log"),
                            dump, signal.SIGTERM, base / "run2.log")
        r.update(after=sorted(p.name for p in dump.iterdir()) if dump.exists() else None,
                 incomplete=_incomplete(wf), scores=(wf / targets[0]).exists())
        out["sigterm"] = r

        # 3. a plain rerun finishes the job
        out["final"] = snakemake(wf, *common, *targets, check=False)
        out["dry_after_final"] = snakemake(wf, *common, "-n", *targets, check=False)
    finally:
        ref_rc = ref_proc.wait(timeout=900)
    assert ref_rc == 0, (base / "reference.log").read_text()[-6000:]
    out["reference_bytes"] = _bytes(ref, checkpoint)
    out["seconds"] = time.time() - t_start
    return out


def test_ctrl_c_during_dump_leaves_no_trusted_output(runs):
    r = runs["sigint"]
    assert r["rc"] != 0
    assert r["seen"] and "manifest.json" not in r["seen"]  # it really was mid-dump
    assert "Terminating processes on user request" in r["output"]
    # the job's KeyboardInterrupt removed the finished shards again; no manifest, no scores
    assert r["after"] is None or not [f for f in r["after"] if f.startswith("shard-") or f == "manifest.json"]
    assert not r["scores"]
    # Snakemake keeps the job marked incomplete and refuses to go on without --rerun-incomplete
    assert runs["dump_rel"] in r["incomplete"]
    dry = runs["dry_after_sigint"]
    assert dry.returncode != 0
    assert "IncompleteFilesException" in dry.stdout + dry.stderr
    assert runs["dump_rel"] in dry.stdout + dry.stderr
    assert "--rerun-incomplete" in dry.stdout + dry.stderr


def test_sigterm_during_dump_removes_the_partial_dump(runs):
    """SIGTERM kills the job at once (no Python cleanup): Snakemake removes the failed job's output."""
    r = runs["sigterm"]
    assert r["rc"] != 0
    assert r["seen"] and "manifest.json" not in r["seen"]
    assert "Removing output files of failed job dump_activations" in r["output"]
    assert r["after"] is None
    assert not r["scores"]
    assert runs["dump_rel"] not in r["incomplete"]


def test_rerun_after_interruptions_equals_uninterrupted_run(runs):
    final = runs["final"]
    assert final.returncode == 0, final.stdout[-4000:] + final.stderr[-4000:]
    assert planned_jobs(runs["dry_after_final"].stdout) == Counter()
    got, want = _bytes(runs["wf"], runs["checkpoint"]), runs["reference_bytes"]
    assert sorted(got) == sorted(want)
    assert [k for k in want if got[k] != want[k]] == []


def test_same_config_and_seed_are_deterministic(runs):
    """Two independent runs (separate copies, one of them interrupted twice): byte-identical score and
    selection tables and dump shards, equal metrics."""
    want = runs["reference_bytes"]
    ckpt = runs["checkpoint"]
    for rel in (f"results/scores/{MODEL}/{ckpt}.parquet", f"results/selection/{MODEL}.parquet",
                f"results/selection/{MODEL}.json"):
        assert (runs["wf"] / rel).read_bytes() == want[rel], rel
    m_ref = pl.read_parquet(runs["ref"] / "results" / "evals" / MODEL / ckpt / "pair_metrics.parquet")
    m_run = pl.read_parquet(runs["wf"] / "results" / "evals" / MODEL / ckpt / "pair_metrics.parquet")
    assert m_ref.height > 0 and m_ref["value"].is_finite().all()
    assert m_run.equals(m_ref)
    s = pl.read_parquet(runs["wf"] / "results" / "scores" / MODEL / f"{ckpt}.parquet")
    assert s["wd"].is_finite().all() and s.height > 0


def test_corrupted_shard_in_finished_run_is_caught_and_rebuilt(runs):
    """Snakemake does not rerun on a content change inside a finished dump: a dry run plans nothing.
    The next job that reads the dump fails with the reader's error naming the shard (and leaves no score
    table); ``snakemake --forcerun dump_activations`` rebuilds it, identical to the reference.

    (Equivalently: ``rm -r results/activations/MODEL/CKPT`` and a plain ``snakemake``.)"""
    wf, common, ckpt = runs["wf"], runs["common"], runs["checkpoint"]
    score = f"results/scores/{MODEL}/{ckpt}.parquet"
    shard = runs["dump"] / "shard-00001.safetensors"
    data = shard.read_bytes()
    shard.write_bytes(data[:8] + b"\x00" * 16 + data[24:])  # same size, header overwritten

    assert planned_jobs(snakemake(wf, *common, "-n", score).stdout) == Counter()  # not noticed by Snakemake

    proc = snakemake(wf, *common, score, "--forcerun", "score_neurons", check=False)  # --forcerun takes nargs
    assert proc.returncode != 0
    log = (wf / "results" / "logs" / "score_neurons" / MODEL / f"{ckpt}.log").read_text()
    assert f"shard {shard.relative_to(wf)} cannot be read" in log or f"shard {shard} cannot be read" in log, log[-3000:]
    assert "corrupted" in log
    assert not (wf / score).exists()

    proc = snakemake(wf, *common, score, "--forcerun", "dump_activations", check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert planned_jobs(proc.stdout + proc.stderr) == Counter({"dump_activations": 1, "score_neurons": 1})
    want = runs["reference_bytes"]
    assert (wf / score).read_bytes() == want[score]
    assert shard.read_bytes() == want[str(shard.relative_to(wf))]
