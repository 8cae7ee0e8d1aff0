"""Staging (negdiff.staging, rules fetch_model / prepare_suite / stage) against local stand-ins of the hub.

The hub itself cannot be reached here. A hub cache is laid out as huggingface_hub writes it
(``models--org--name/refs/{revision}`` holding a commit, ``snapshots/{commit}/`` the files), and the
model calls run under ``HF_HUB_OFFLINE=1``: exactly what a compute node sees after staging.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from negdiff import staging
from negdiff.suites import load_suite
from workflow_util import copy_workflow, hub_cache, paper_workflow, planned_jobs, snakemake

REPO = Path(__file__).resolve().parents[1]
SHARED_BLIMP = REPO.parent / "shared" / "data" / "blimp"
HUB_ID = "negdiff-test/tiny-llama"


@pytest.fixture(scope="module")
def staged_cache(tmp_path_factory, tiny_hf_model):
    root = tmp_path_factory.mktemp("hub")
    commits = hub_cache(root / "cache", HUB_ID, {"step1": tiny_hf_model("llama"), "main": tiny_hf_model("llama")})
    return root / "cache", commits


def offline_env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    env.pop("PYTHONPATH", None)
    return env


def test_stage_model_records_each_revision_and_jobs_load_it_offline(staged_cache, tmp_path):
    cache, commits = staged_cache
    script = f"""
import json
from negdiff.staging import stage_model
from negdiff.models import load_model
record = stage_model({HUB_ID!r}, ["step1", "main"], cache_dir={str(cache)!r})
model, tok = load_model({HUB_ID!r}, revision="step1", cache_dir={str(cache)!r}, local_files_only=True)
print(json.dumps({{"record": record, "model": type(model).__name__}}))
"""
    proc = subprocess.run([sys.executable, "-c", script], env=offline_env(), capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {r: v["commit"] for r, v in out["record"]["revisions"].items()} == commits
    assert "model.safetensors" in out["record"]["revisions"]["main"]["files"]
    assert out["model"] == "LlamaForCausalLM"


def test_stage_model_refuses_a_revision_without_safetensors(tmp_path):
    folder = tmp_path / "snap" / ("0" * 40)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"org/m revision 'main' has no \*.safetensors"):
        staging.stage_model("org/m", ["main"], cache_dir=tmp_path, download=lambda **kw: str(folder))


def test_stage_model_names_the_model_and_revision_when_the_download_fails(tmp_path):
    def fail(**kw):
        raise OSError("no network")

    with pytest.raises(RuntimeError, match=r"staging model org/m revision 'step8' failed \(OSError: no network\)"):
        staging.stage_model("org/m", ["step8"], cache_dir=tmp_path, download=fail)


def test_stage_suite_writes_blimp_configs_named_not_discovered(tmp_path):
    asked = []

    def load(name, cfg, *, split, revision):
        asked.append((name, cfg, split, revision))
        return [{"sentence_good": f"good {cfg} .", "sentence_bad": f"bad {cfg} .", "UID": cfg,
                 "linguistics_term": "t", "pairID": str(k)} for k in range(3)]

    record = staging.stage_suite("hf:nyu-mll/blimp", tmp_path / "blimp", revision="main", load=load)
    assert [a[1] for a in asked] == list(staging.BLIMP_PARADIGMS)
    assert {a[2] for a in asked} == {"train"} and {a[3] for a in asked} == {"main"}
    assert len(record["files"]) == 67
    for name, entry in record["files"].items():
        data = (tmp_path / "blimp" / name).read_bytes()
        assert entry == {"rows": 3, "sha256": hashlib.sha256(data).hexdigest()}
    pairs = load_suite("hf:nyu-mll/blimp", local_dir=tmp_path / "blimp")  # the evaluation jobs' read
    assert len(pairs) == 67 * 3 and {p["UID"] for p in pairs} == set(staging.BLIMP_PARADIGMS)


def test_stage_suite_refuses_local_suites_and_empty_configs(tmp_path):
    with pytest.raises(ValueError, match="stages hub suites"):
        staging.stage_suite("data/tse", tmp_path)
    with pytest.raises(ValueError, match="config 'a' split 'train' has no rows"):
        staging.stage_suite("hf:org/s", tmp_path, configs=["a"], load=lambda *a, **k: [])


@pytest.mark.shared
@pytest.mark.skipif(not SHARED_BLIMP.is_dir(), reason="needs ../shared/data/blimp")
def test_blimp_paradigms_are_the_benchmark_files():
    assert sorted(staging.BLIMP_PARADIGMS) == sorted(p.stem for p in SHARED_BLIMP.glob("*.jsonl"))


def test_paper_config_stages_models_suites_and_text_on_the_login_node(tmp_path):
    wf = paper_workflow(tmp_path)
    proc = snakemake(wf, "stage", "-n", "--configfile", "config/paper.yaml")
    assert planned_jobs(proc.stdout) == {"fetch_model": 5, "prepare_suite": 1, "prepare_lmeval": 1,
                                           "prepare_text": 3, "stage": 1}


def test_staged_hub_model_runs_offline_through_the_workflow(staged_cache, tmp_path):
    """stage, then dump and score a hub model (two revisions) with the hub offline: the jobs load from the
    staged cache (local_files_only), and the record names each revision's commit."""
    cache, commits = staged_cache
    wf = copy_workflow(tmp_path / "wf")
    words = "the cat sees a dog . the dogs see cats . she reads books every night because stories make her happy ."
    text = tmp_path / "text.txt"
    text.write_text("\n".join([words] * 60) + "\n")
    cfg = yaml.safe_load((REPO / "tests" / "config" / "tiny.yaml").read_text())
    cfg.update(
        data={"source": "local", "local": {s: str(text) for s in ("train", "valid", "test")}},
        models={"hub-llama": {"source": "hf", "path": HUB_ID, "revisions": ["step1", "main"]}},
        staging={"enabled": True, "cache_dir": str(cache)},
        figures={**cfg["figures"], "example_model": "hub-llama"},
        activations={**cfg["activations"], "max_tokens": 300, "window": 32, "stride": 31},
    )
    (wf / "staged.yaml").write_text(yaml.safe_dump(cfg))
    env_run = ["--configfile", "staged.yaml", "--cores", "2"]
    target = "results/scores/hub-llama/main.parquet"
    proc = subprocess.run([sys.executable, "-m", "snakemake", "stage", target, *env_run], cwd=wf,
                          env=offline_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout[-4000:], proc.stderr[-4000:])
    record = json.loads((wf / "results" / "staging" / "hub-llama.json").read_text())
    assert {r: v["commit"] for r, v in record["revisions"].items()} == commits
    assert (wf / target).is_file()
    manifest = json.loads((wf / "results" / "activations" / "hub-llama" / "main" / "manifest.json").read_text())
    assert manifest["architecture"] == "llama" and manifest["n_tokens"] == 300
    prov = json.loads((wf / "results" / "provenance" / "hub-llama" / "main" / "dump_activations.json").read_text())
    assert prov["model"]["commit"] == commits["main"]  # resolved in the staged cache, offline
