"""negdiff.lmeval: lm-evaluation-harness tasks under the intervention conditions, offline.

Local task YAMLs (``dataset_path: json`` with ``data_files``) are loaded through lm-eval's
``TaskManager(include_path=...)`` and run on tiny random models; lm-eval's per-document log-likelihoods
and decisions are checked against the project's own scoring (:mod:`negdiff.logprobs`), the
intervention hooks are checked to reach lm-eval (which a response cache would hide), and lm-eval's
BLiMP template is checked against the project's BLiMP pair decisions on real BLiMP pairs.
Without lm_eval installed (``pip install -e ".[lmeval]"``) the lm-eval tests skip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from conftest import build_tiny_model, build_tiny_tokenizer
from lmeval_tasks import BLIMP_YAML, MC_DOCS, write_mc_task
from negdiff import architectures, logprobs, models
from negdiff.claim_data import PairData
from negdiff.conditions import BASELINE, condition, final_conditions
from negdiff.lmeval import (CACHE_OPTIONS, LMEVAL_SUITE, dissociation_conditions, doc_frame, doc_outcomes,
                            evaluate_lmeval, is_task_list, metric_frame)
from negdiff.sweep import METRICS_SCHEMA, PAIRS_SCHEMA, evaluate_conditions, prepare_eval_data, with_run_keys

BLIMP_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "blimp"
BLIMP_PARADIGMS = ("anaphor_gender_agreement", "determiner_noun_agreement_1", "regular_plural_subject_verb_agreement_1")

@pytest.fixture(scope="module")
def lm_eval():
    return pytest.importorskip("lm_eval")


@pytest.fixture(scope="module")
def mc_task(tmp_path_factory):
    """A folder with one local multiple-choice task, ``local_mc``."""
    return write_mc_task(tmp_path_factory.mktemp("lmeval-tasks"))


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model("llama"), build_tiny_tokenizer()


def _ours_mc(model, tokenizer, docs):
    """log P(choice | context) per choice, by the project's scoring: log P(context + choice) minus
    log P(context), both :func:`negdiff.logprobs.sequence_logprobs` from the context's first token (lm-eval
    puts no BOS before a non-empty context with this tokenizer)."""
    out = []
    for doc in docs:
        ctx = tokenizer(doc["question"], add_special_tokens=False)["input_ids"]
        whole = [ctx + tokenizer(doc["question"] + " " + c, add_special_tokens=False)["input_ids"][len(ctx):]
                 for c in doc["choices"]]
        lp = logprobs.sequence_logprobs(model, [ctx] + whole, pad_id=logprobs.pad_id(tokenizer))
        out.append(lp[1:] - lp[0])
    return out


def test_dissociation_conditions_pick_baseline_wn_matched_and_random_seeds():
    selection = {"percents": [0.5, 1], "main_percent": 1, "random_seeds": 3, "ppl_matched": {"enabled": True}}
    evaluation = {"layer_group_size": 1, "operations": ["neg_zero", "full"], "layerwise_controls": True}
    conds = final_conditions(selection, evaluation, n_layers=2)
    picked = [c.name for c in dissociation_conditions(conds, 1)]
    assert picked == ["baseline", "neg_zero|wn@1|all", "neg_zero|random@1|all", "neg_zero|random@1#1|all",
                      "neg_zero|random@1#2|all", "neg_zero|ppl_matched@1|all"]
    # neg_zero the identity (ReLU): only the baseline is left
    assert [c.name for c in dissociation_conditions([c for c in conds if c.intervention != "neg_zero"], 1)] == ["baseline"]
    assert is_task_list(["arc_easy"]) and not is_task_list("builtin")


def test_doc_outcomes_multiple_choice_and_loglikelihood():
    mc = {"target": 1, "filtered_resps": [(-3.0, False), (-1.0, False), (-2.5, False)]}
    assert doc_outcomes(mc, "multiple_choice") == (True, pytest.approx(1.5))
    tie = {"target": 1, "filtered_resps": [(-1.0, False), (-1.0, False)]}
    assert doc_outcomes(tie, "multiple_choice") == (False, 0.0)  # numpy argmax takes the first: lm-eval's acc
    assert doc_outcomes({"filtered_resps": [(-4.0, True)]}, "loglikelihood") == (True, -4.0)
    assert doc_outcomes({"filtered_resps": [(-4.0, True)], "acc": 0.0}, "loglikelihood") == (False, -4.0)
    # the target as a digit string, and as the text of a choice
    assert doc_outcomes(dict(mc, target="1"), "multiple_choice") == (True, pytest.approx(1.5))
    texts = dict(mc, target="b", arguments=[("q", " a"), ("q", " b"), ("q", " c")])
    assert doc_outcomes(texts, "multiple_choice") == (True, pytest.approx(1.5))
    # winogrande: the choices are contexts, the target their shared continuation; the gold follows from acc
    wino = {"target": "rest", "arguments": [("ctx a", " rest"), ("ctx b", " rest")],
            "filtered_resps": [(-3.0, False), (-2.0, False)]}
    assert doc_outcomes(dict(wino, acc=0.0), "multiple_choice") == (False, pytest.approx(-1.0))
    assert doc_outcomes(dict(wino, acc=1.0), "multiple_choice") == (True, pytest.approx(1.0))
    with pytest.raises(ValueError, match="names no single choice"):
        doc_outcomes(dict(wino, target="other"), "multiple_choice")
    with pytest.raises(ValueError, match="generate_until"):
        doc_outcomes({"filtered_resps": ["x"]}, "generate_until")


def test_doc_rows_are_pairs_rows_the_claims_read():
    """doc_frame rows concatenate with the sweep's pairs table and load as a suite of PairData, the
    random seeds as one [k, n] family."""
    result = {"configs": {"a": {"output_type": "multiple_choice"}, "b": {"output_type": "loglikelihood"}},
              "samples": {"a": [{"doc_id": 1, "target": 0, "filtered_resps": [(-2.0, 0), (-1.0, 0)]},
                                {"doc_id": 0, "target": 0, "filtered_resps": [(-1.0, 0), (-2.0, 0)]}],
                          "b": [{"doc_id": 0, "filtered_resps": [(-3.0, True)]}]}}
    names = ["baseline", "neg_zero|wn@1|all", "neg_zero|random@1|all", "neg_zero|random@1#1|all"]
    frames = [doc_frame(n, result, ["a", "b"]) for n in names]
    assert frames[0].schema == pl.Schema(PAIRS_SCHEMA)
    assert frames[0]["pair"].to_list() == [0, 1, 2] and frames[0]["group"].to_list() == ["a", "a", "b"]
    assert frames[0]["correct"].to_list() == [True, False, True]
    table = with_run_keys(pl.concat(frames), "m", "final")
    data = PairData.from_table(table, "m")
    assert data.values[("correct", LMEVAL_SUITE, "final", "neg_zero|random@1|all")].shape == (2, 3)
    assert data.seeds == {"neg_zero|random@1|all": 2}
    metrics = metric_frame(condition("neg_zero", "wn@1", "all", 2, 1), 7, frames[1])
    assert metrics.schema == pl.Schema(METRICS_SCHEMA)
    assert metrics.select("level", "group", "n").rows() == [("overall", "all", 3), ("paradigm", "a", 2), ("paradigm", "b", 1)]
    assert metrics["value"][0] == pytest.approx(2 / 3) and set(metrics["n_neurons"]) == {7}


def test_multiple_choice_matches_project_scoring(lm_eval, tiny, mc_task):
    """(a) A local multiple-choice task through include_path: lm-eval's per-choice log-likelihoods equal
    the project's summed continuation log-probs, and its decisions (and acc) ours."""
    from negdiff.lmeval import make_lm, run_tasks, task_manager

    model, tokenizer = tiny
    result = run_tasks(make_lm(model, tokenizer, batch_size=3), ["local_mc"], manager=task_manager(mc_task))
    samples = sorted(result["samples"]["local_mc"], key=lambda s: s["doc_id"])
    assert len(samples) == len(MC_DOCS)
    for sample, ours in zip(samples, _ours_mc(model, tokenizer, MC_DOCS)):
        theirs = np.array([r[0] for r in sample["filtered_resps"]])
        np.testing.assert_allclose(theirs, ours, atol=1e-4, rtol=0)
        correct, margin = doc_outcomes(sample, "multiple_choice")
        gold = sample["target"]
        assert correct == (int(np.argmax(ours)) == gold) == bool(sample["acc"])
        assert margin == pytest.approx(ours[gold] - np.delete(ours, gold).max(), abs=1e-4)


def _selection(model) -> pl.DataFrame:
    """Sets on every layer: ``wn@1`` half the neurons, ``random@1`` a quarter (toy stand-ins)."""
    n = models.n_neurons(model)
    rows = [{"set": "wn@1", "layer": layer, "neuron": k} for layer in range(models.n_layers(model)) for k in range(0, n, 2)]
    rows += [{"set": "random@1", "layer": layer, "neuron": k} for layer in range(models.n_layers(model)) for k in range(1, n, 4)]
    return pl.DataFrame(rows, schema={"set": pl.String, "layer": pl.Int64, "neuron": pl.Int64})


def test_interventions_reach_lmeval_and_no_cache_is_passed(lm_eval, tiny, mc_task, monkeypatch):
    """(b) The cache trap: each condition's hooks change lm-eval's per-document log-likelihoods, our
    call passes no cache option, and with lm-eval's response cache on the ablated run would get the
    baseline's answers."""
    from negdiff.interventions import intervene
    from negdiff.lmeval import make_lm, task_manager
    from negdiff.interventions import condition_masks

    model, tokenizer = tiny
    calls = []
    real = lm_eval.simple_evaluate

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(lm_eval, "simple_evaluate", spy)
    conds = [BASELINE] + [condition("neg_zero", s, "all", models.n_layers(model), 1) for s in ("wn@1", "random@1")]
    out = evaluate_lmeval(model, tokenizer, conds, _selection(model), ["local_mc"], batch_size=4, include_path=mc_task)
    assert len(calls) == 3 and all(c["log_samples"] for c in calls)
    assert not any(set(CACHE_OPTIONS) & set(c) for c in calls)
    margins = {c: g["margin"].to_numpy() for (c,), g in out["pairs"].group_by(["condition"], maintain_order=True)}
    assert list(margins) == [c.name for c in conds]
    for name in ("neg_zero|wn@1|all", "neg_zero|random@1|all"):
        assert np.abs(margins[name] - margins["baseline"]).max() > 1e-3
    assert out["metrics"].filter(pl.col("level") == "overall")["n_neurons"].to_list()[0] == 0

    # what a cache would do: the ablated run answered from the baseline's entries
    monkeypatch.setattr(lm_eval, "simple_evaluate", real)
    lm, manager = make_lm(model, tokenizer, batch_size=4), task_manager(mc_task)
    cache = str(mc_task / "responses")

    def lls(**cache_kw):
        res = real(model=lm, tasks=["local_mc"], task_manager=manager, log_samples=True, bootstrap_iters=0, **cache_kw)
        return [r[0] for s in sorted(res["samples"]["local_mc"], key=lambda s: s["doc_id"]) for r in s["filtered_resps"]]

    base = lls(use_cache=cache)
    masks = condition_masks(model, conds[1], _selection(model))
    with intervene(model, masks, "neg_zero"):
        cached, fresh = lls(use_cache=cache), lls()
    assert cached == base  # the trap
    assert np.abs(np.array(fresh) - np.array(base)).max() > 1e-3


@pytest.fixture(scope="module")
def blimp_local(tmp_path_factory):
    """~20 real BLiMP pairs of each of 3 paradigms in a tmp folder, with a task YAML per paradigm."""
    if not all((BLIMP_DIR / f"{p}.jsonl").is_file() for p in BLIMP_PARADIGMS):
        pytest.skip(f"no BLiMP data at {BLIMP_DIR}")
    d = tmp_path_factory.mktemp("blimp-local")
    pairs = {}
    for p in BLIMP_PARADIGMS:
        lines = (BLIMP_DIR / f"{p}.jsonl").read_text().splitlines()[:20]
        (d / f"{p}.jsonl").write_text("\n".join(lines) + "\n")
        (d / f"local_blimp_{p}.yaml").write_text(BLIMP_YAML.format(task=f"local_blimp_{p}", data=d / f"{p}.jsonl"))
        pairs[p] = [json.loads(x) for x in lines]
    return d, pairs


def _blimp_model(folder, pairs):
    """A byte-level BPE tokenizer of the project's kind trained on the pairs, and a tiny random GPT-NeoX."""
    import torch
    from transformers import AutoModelForCausalLM

    from negdiff.tokenizer import bos_token_id, train_tokenizer

    text = folder / "text.txt"
    text.write_text("\n".join(s for ps in pairs.values() for p in ps for s in (p["sentence_good"], p["sentence_bad"])))
    tokenizer = train_tokenizer([str(text)], folder / "tok", vocab_size=400)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(architectures.tiny_config(
        "gpt_neox", vocab_size=len(tokenizer), hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
        context=128, bos_token_id=bos_token_id(tokenizer), eos_token_id=bos_token_id(tokenizer))).eval()
    return model, tokenizer


@pytest.mark.shared
@pytest.mark.parametrize("delimiter", ["", " "])
def test_blimp_decisions_equal_lmeval_blimp_template(lm_eval, blimp_local, delimiter):
    """(c) lm-eval's BLiMP template (empty context: each sentence after the prefix token) against the
    project's sweep with prepend_bos (the same BOS first) on real BLiMP pairs, a byte-level BPE tokenizer
    of the project's kind and a tiny random model. lm-eval puts its ``target_delimiter`` (default
    ``" "``, as in its own ``blimp_*`` tasks) before every choice, so it scores ``" " + sentence``: with
    ``target_delimiter: ""`` it equals the project's scores; with the default it equals the project's
    scoring of the space-prefixed sentences (a different tokenisation of the first word)."""
    from negdiff.lmeval import make_lm, run_tasks, task_manager

    folder, pairs = blimp_local
    model, tokenizer = _blimp_model(folder, pairs)
    tasks = [f"local_blimp_{p}" for p in BLIMP_PARADIGMS]
    for p, task in zip(BLIMP_PARADIGMS, tasks):
        (folder / f"{task}.yaml").write_text(BLIMP_YAML.format(task=task, data=folder / f"{p}.jsonl")
                                             + f'target_delimiter: "{delimiter}"\n')
    result = run_tasks(make_lm(model, tokenizer, batch_size=8), tasks, manager=task_manager(folder))
    first = sorted(result["samples"][tasks[0]], key=lambda s: s["doc_id"])[0]
    p0 = pairs[BLIMP_PARADIGMS[0]][0]
    assert [tuple(a) for a in first["arguments"]] == [("", delimiter + p0["sentence_good"]), ("", delimiter + p0["sentence_bad"])]
    theirs = doc_frame("baseline", result, tasks)
    flat = [dict(p, sentence_good=delimiter + p["sentence_good"], sentence_bad=delimiter + p["sentence_bad"])
            for ps in pairs.values() for p in ps]
    data = prepare_eval_data(tokenizer, suites={"blimp": flat}, ppl_text=None, surprisal_text=None, surprisal_pos=None,
                             ppl_tokens=0, surprisal_tokens=0, window=None, stride=None, prepend_bos=True)
    ours = evaluate_conditions(model, data, [BASELINE], None, progress=False)["pairs"]
    assert theirs.height == ours.height == 60
    np.testing.assert_allclose(theirs["margin"].to_numpy(), ours["margin"].to_numpy(), atol=1e-4, rtol=0)
    assert theirs["correct"].to_list() == ours["correct"].to_list()
    assert ours["group"].to_list() == [p for p in BLIMP_PARADIGMS for _ in range(20)]


def test_config_tables_run_the_task_list_under_the_dissociation_conditions(lm_eval, tiny, mc_task):
    """The evaluation job's entry point: a task-list nonsyntactic suite with the evaluation.lmeval
    settings (include_path, limit) under baseline, wn, ppl_matched and each random seed only."""
    from negdiff.lmeval import config_tables

    model, tokenizer = tiny
    n_layers = models.n_layers(model)
    selection_cfg = {"percents": [1], "main_percent": 1, "random_seeds": 2, "ppl_matched": {"enabled": True}}
    conds = final_conditions(selection_cfg, {"layer_group_size": 1, "operations": ["neg_zero", "full"],
                                             "layerwise_controls": False}, n_layers)
    sel = _selection(model)
    sel = pl.concat([sel, sel.filter(pl.col("set") == "random@1").with_columns(pl.lit("random@1#1").alias("set"))])
    evaluation = {"suites": {"blimp": "builtin", "tse": "builtin", "nonsyntactic": ["local_mc"]},
                  "lmeval": {"include_path": str(mc_task), "batch_size": 4, "limit": 5, "num_fewshot": None,
                             "add_bos_token": None}}
    out = config_tables(model, tokenizer, conds, sel, evaluation, 1, empty_sets=["ppl_matched@1"])
    names = ["baseline", "neg_zero|wn@1|all", "neg_zero|random@1|all", "neg_zero|random@1#1|all",
             "neg_zero|ppl_matched@1|all"]
    assert out["pairs"]["condition"].unique(maintain_order=True).to_list() == names
    assert out["pairs"].group_by("condition").len()["len"].to_list() == [5] * 5
    overall = out["metrics"].filter(pl.col("level") == "overall")
    assert overall["suite"].to_list() == [LMEVAL_SUITE] * 5
    assert dict(zip(overall["condition"], overall["n_neurons"]))["neg_zero|ppl_matched@1|all"] == 0  # an empty set
    base = out["pairs"].filter(pl.col("condition") == "baseline")["margin"]
    matched = out["pairs"].filter(pl.col("condition") == "neg_zero|ppl_matched@1|all")["margin"]
    assert base.to_list() == matched.to_list()
    assert config_tables(model, tokenizer, conds, sel, {"suites": {"nonsyntactic": "builtin"}}, 1) is None
    only_full = [c for c in conds if c.intervention != "neg_zero"]  # as on ReLU, where neg_zero is the identity
    assert config_tables(model, tokenizer, only_full, sel, evaluation, 1) is None


def test_check_tasks_names_the_config_key_and_prefetch_counts_documents(lm_eval, mc_task):
    from negdiff.lmeval import check_tasks, prefetch

    check_tasks(["local_mc", "arc_easy"], mc_task)
    assert prefetch(["local_mc"], mc_task) == {"local_mc": len(MC_DOCS)}
    with pytest.raises(ValueError, match=r"evaluation.suites.nonsyntactic: unknown lm-eval task\(s\) \['arc_eesy'\]"):
        check_tasks(["arc_eesy"], mc_task)
    with pytest.raises(FileNotFoundError, match="evaluation.lmeval.include_path"):
        check_tasks(["arc_easy"], mc_task / "absent")


class _Named(dict):
    """A dict that also reads as attributes, like the snakemake object's input / output / params."""

    __getattr__ = dict.__getitem__


def test_evaluate_pairs_script_appends_lmeval_rows(lm_eval, tiny_hf_model, mc_task, tmp_path, monkeypatch):
    """workflow_scripts/evaluate_pairs.py with nonsyntactic as a task list: the minimal-pair suites under
    every condition, the lm-eval task under the dissociation conditions, in one pairs table the claims
    read (PairData) and one metrics table the dissociation table reads."""
    import runpy

    from negdiff.claim_tables import dissociation_table

    model_dir = tiny_hf_model("llama")
    loaded, _ = models.load_model(model_dir)
    n = models.n_neurons(loaded)
    sets = {"wn@1": range(0, n, 3), "random@1": range(1, n, 3), "ppl_matched@1": range(2, n, 5)}
    pl.DataFrame([{"set": s, "layer": layer, "neuron": k} for s, ks in sets.items() for layer in (0, 1) for k in ks],
                 schema={"set": pl.String, "layer": pl.Int64, "neuron": pl.Int64}).write_parquet(tmp_path / "sel.parquet")
    (tmp_path / "sel.json").write_text(json.dumps({"sets": {s: {"n_neurons": 2 * len(ks)} for s, ks in sets.items()}}))
    pairs_file = tmp_path / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps({"sentence_good": g, "sentence_bad": b, "UID": u, "template": u}) + "\n"
                                  for g, b, u in [("the cat sat .", "cat the sat .", "u1"), ("the dog ran .", "dog ran the .", "u2")]))
    evaluation = {"operations": ["neg_zero"], "layer_group_size": 1, "layerwise_controls": False,
                  "suites": {"blimp": str(pairs_file), "tse": str(pairs_file), "nonsyntactic": ["local_mc"]},
                  "pairs_per_paradigm": {"blimp": "all", "tse": "all", "nonsyntactic": "all"}, "pairs_seed": 0,
                  "prepend_bos": True, "batch_size": 8,
                  "lmeval": {"include_path": str(mc_task), "batch_size": 4, "limit": None, "num_fewshot": None,
                             "add_bos_token": None}}
    fake = _Named(
        rule="evaluate_pairs", threads=1, log=[str(tmp_path / "job.log")], resources=None,
        wildcards=_Named(model="m", checkpoint="final"),
        input=_Named(selection=str(tmp_path / "sel.parquet"), record=str(tmp_path / "sel.json")),
        output=_Named(metrics=str(tmp_path / "metrics.parquet"), pairs=str(tmp_path / "pairs.parquet"),
                      provenance=str(tmp_path / "provenance.json")),
        params=_Named(evaluation=evaluation, cohort=True, device="cpu", prefix={},
                      selection={"percents": [1], "main_percent": 1, "random_seeds": 1, "ppl_matched": {"enabled": True}},
                      load={"path": str(model_dir), "revision": None, "dtype": "float32", "device_map": None,
                            "trust_remote_code": False}))
    import torch

    threads = torch.get_num_threads()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "POLARS_MAX_THREADS"):
        monkeypatch.setenv(var, os.environ.get(var, str(threads)))  # the job only sets what is unset
    try:
        runpy.run_path(str(Path(__file__).resolve().parents[1] / "workflow_scripts" / "evaluate_pairs.py"),
                       init_globals={"snakemake": fake})
    except Exception:
        print((tmp_path / "job.log").read_text())
        raise
    finally:
        torch.set_num_threads(threads)  # the job caps torch at its threads
    pairs = pl.read_parquet(tmp_path / "pairs.parquet")
    per_suite = {s: sorted(set(g["condition"])) for (s,), g in pairs.group_by(["suite"])}
    assert per_suite[LMEVAL_SUITE] == sorted(["baseline", "neg_zero|wn@1|all", "neg_zero|random@1|all",
                                              "neg_zero|ppl_matched@1|all"])
    assert "neg_zero|wn@1|single:0" in per_suite["blimp"] and len(per_suite["blimp"]) > len(per_suite[LMEVAL_SUITE])
    assert pairs.filter(pl.col("suite") == LMEVAL_SUITE).group_by("condition").len()["len"].to_list() == [len(MC_DOCS)] * 4
    data = PairData.from_table(pairs, "m")
    assert data.has(LMEVAL_SUITE, "final", "neg_zero|ppl_matched@1|all") and data.n_pairs(LMEVAL_SUITE) == len(MC_DOCS)
    table = dissociation_table(pl.read_parquet(tmp_path / "metrics.parquet"), main_percent=1)
    assert set(table["method"]) >= {"wn", "ppl_matched"} and table["nonsyn_drop"].null_count() == 0
    assert table["n_nonsyn"].to_list() == [len(MC_DOCS)] * table.height


WINO_DOCS = [
    {"sentence": "the cat _ on a mat .", "option1": "sat", "option2": "ran", "answer": "1"},
    {"sentence": "the dog _ to the park .", "option1": "sat", "option2": "ran", "answer": "2"},
    {"sentence": "she _ books every night .", "option1": "reads", "option2": "sang", "answer": "1"},
    {"sentence": "birds _ in tall trees .", "option1": "reads", "option2": "sang", "answer": "2"},
]

# lm-eval's tasks/winogrande/preprocess_winogrande.py: the choices are contexts, the continuation shared
WINO_UTILS = '''def doc_to_text(doc):
    return {"1": 0, "2": 1}[doc["answer"]]


def doc_to_target(doc):
    return doc["sentence"][doc["sentence"].index("_") + 1:].strip()


def doc_to_choice(doc):
    idx = doc["sentence"].index("_")
    return [doc["sentence"][:idx] + opt for opt in (doc["option1"], doc["option2"])]
'''


def test_partial_evaluation_task_like_winogrande(lm_eval, tiny, tmp_path):
    """A task whose choices are contexts and whose target is their shared continuation (winogrande):
    the gold comes from lm-eval's acc, the margin is log P(continuation | gold context) minus the other's."""
    from negdiff.lmeval import make_lm, run_tasks, task_manager

    model, tokenizer = tiny
    (tmp_path / "wino.jsonl").write_text("".join(json.dumps(d) + "\n" for d in WINO_DOCS))
    (tmp_path / "wino_utils.py").write_text(WINO_UTILS)
    (tmp_path / "local_wino.yaml").write_text(
        f"task: local_wino\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {tmp_path / 'wino.jsonl'}\n"
        "test_split: test\noutput_type: multiple_choice\ndoc_to_text: !function wino_utils.doc_to_text\n"
        "doc_to_target: !function wino_utils.doc_to_target\ndoc_to_choice: !function wino_utils.doc_to_choice\n"
        "metric_list:\n  - metric: acc\n")
    result = run_tasks(make_lm(model, tokenizer, batch_size=4), ["local_wino"], manager=task_manager(tmp_path))
    assert all(isinstance(s["target"], str) and len({a[1] for a in s["arguments"]}) == 1
               for s in result["samples"]["local_wino"])  # the case being tested
    docs = doc_frame("baseline", result, ["local_wino"])
    for doc, row in zip(WINO_DOCS, docs.iter_rows(named=True)):
        idx = doc["sentence"].index("_")
        cont = doc["sentence"][idx + 1:].strip()
        ctxs = [doc["sentence"][:idx] + o for o in (doc["option1"], doc["option2"])]
        ours = _ours_mc(model, tokenizer, [{"question": c, "choices": [cont]} for c in ctxs])
        lls = np.array([o[0] for o in ours])
        gold = int(doc["answer"]) - 1
        assert row["correct"] == (int(np.argmax(lls)) == gold)
        assert row["margin"] == pytest.approx(lls[gold] - lls[1 - gold], abs=1e-4)
