"""Perplexity, sentence log-probabilities and minimal pairs against direct per-item references."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from negdiff.logprobs import perplexity, sentence_logprobs
from pair_reference import minimal_pair_accuracy
from negdiff.tokenizer import train_tokenizer
from negdiff.training import build_model, make_config

SENTENCES = [
    "the dog barks .",
    "the dogs near the cat bark .",
    "a pilot who the authors like smiles .",
    "dogs .",
    "the teachers that the pilot near the birds admires laugh loudly .",
    "the cat sleeps .",
    "the cats sleep .",
    "zebra !",
]


@pytest.fixture(scope="module")
def tok(tmp_path_factory):
    from transformers import AutoTokenizer

    d = tmp_path_factory.mktemp("evtok")
    rnd = random.Random(0)
    words = "the a dog dogs cat cats pilot pilots near who that like likes bark barks sleep sleeps .".split()
    lines = [" ".join(rnd.choice(words) for _ in range(rnd.randint(3, 9))) for _ in range(500)]
    (d / "train.txt").write_text("\n".join(lines + SENTENCES) + "\n")
    train_tokenizer([str(d / "train.txt")], d / "tok", vocab_size=300)
    return AutoTokenizer.from_pretrained(d / "tok")


def _model(tok, arch="llama", seed=0):
    cfg = make_config(
        arch, vocab_size=len(tok), hidden_size=32, num_layers=2, num_heads=2,
        intermediate_size=64, context=64, tokenizer=tok,
    )
    m = build_model(cfg, seed=seed)
    # a random init is close to uniform; sharpen it so the comparisons are not trivially equal
    with torch.no_grad():
        m.get_input_embeddings().weight.mul_(20.0)
    return m.eval()


def _reference_logprob(model, ids: list[int]) -> list[float]:
    """Per-token log-probs of ids[1:], one unpadded sequence, no attention mask."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0].double()
    lp = torch.log_softmax(logits, -1)
    return [float(lp[t - 1, ids[t]]) for t in range(1, len(ids))]


@pytest.mark.parametrize("arch", ["llama", "gpt_neox", "opt"])
def test_sentence_logprobs_match_unbatched_reference(tok, arch):
    model = _model(tok, arch)
    bos = tok.bos_token_id
    ref_sum = np.array([sum(_reference_logprob(model, [bos] + tok(s)["input_ids"])) for s in SENTENCES])
    ref_mean = np.array([np.mean(_reference_logprob(model, [bos] + tok(s)["input_ids"])) for s in SENTENCES])
    assert np.ptp(ref_sum) > 1.0  # the model is not uniform
    for bs in (1, 3, 64):
        got = sentence_logprobs(model, tok, SENTENCES, batch_size=bs)
        assert got.dtype == np.float64 and got.shape == (len(SENTENCES),)
        np.testing.assert_allclose(got, ref_sum, rtol=0, atol=1e-4)
        got_mean = sentence_logprobs(model, tok, SENTENCES, batch_size=bs, reduce="mean")
        np.testing.assert_allclose(got_mean, ref_mean, rtol=0, atol=1e-4)
    # order does not matter
    perm = np.random.default_rng(0).permutation(len(SENTENCES))
    got = sentence_logprobs(model, tok, [SENTENCES[i] for i in perm], batch_size=3)
    np.testing.assert_allclose(got, ref_sum[perm], rtol=0, atol=1e-4)


def test_padding_does_not_change_results(tok):
    model = _model(tok, "opt")  # OPT derives positions from the attention mask
    short = "the cat sleeps ."
    alone = sentence_logprobs(model, tok, [short], batch_size=1)[0]
    long_batch = sentence_logprobs(model, tok, [short, SENTENCES[4] + " " + SENTENCES[1]], batch_size=2)
    assert abs(long_batch[0] - alone) < 1e-4


def test_mean_vs_sum_and_bos(tok):
    model = _model(tok)
    n_tok = np.array([len(tok(s)["input_ids"]) for s in SENTENCES])
    s = sentence_logprobs(model, tok, SENTENCES)
    m = sentence_logprobs(model, tok, SENTENCES, reduce="mean")
    np.testing.assert_allclose(m, s / n_tok, rtol=1e-10, atol=1e-10)
    # without BOS the first token is not scored
    multi = [x for x in SENTENCES if len(tok(x)["input_ids"]) > 1]
    nob = sentence_logprobs(model, tok, multi, prepend_bos=False)
    ref = [sum(_reference_logprob(model, tok(x)["input_ids"])) for x in multi]
    np.testing.assert_allclose(nob, ref, rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="reduce"):
        sentence_logprobs(model, tok, SENTENCES, reduce="max")
    assert sentence_logprobs(model, tok, []).shape == (0,)


def test_bos_falls_back_to_eos(tok):
    model = _model(tok)

    class NoBos:
        bos_token_id = None
        eos_token_id = tok.eos_token_id
        pad_token_id = None

        def __call__(self, *a, **k):
            return tok(*a, **k)

    np.testing.assert_allclose(
        sentence_logprobs(model, NoBos(), SENTENCES), sentence_logprobs(model, tok, SENTENCES), atol=1e-8
    )


def _reference_perplexity(model, ids, window, stride, bos=None):
    """Direct loop: token p is predicted from the tokens of its window before it."""
    n = len(ids)
    nll, count = 0.0, 0
    ctx = window - 1 if bos is not None else window
    covered, start = 0, 0
    while covered < n:
        end = min(start + ctx, n)
        seq = ([bos] if bos is not None else []) + list(ids[start:end])
        lp = _reference_logprob(model, seq)  # lp[j] = log P(seq[j+1] | seq[:j+1])
        shift = 1 if bos is not None else 0
        for p in range(covered, end):
            j = p - start + shift  # position of token p in seq
            if j >= 1:
                nll -= lp[j - 1]
                count += 1
        covered = end
        start += stride
    return math.exp(nll / count)


@pytest.mark.parametrize("arch", ["llama", "opt"])
@pytest.mark.parametrize("window,stride,bos", [(16, None, None), (16, 8, None), (16, 5, True), (9, None, True)])
def test_perplexity_matches_loop(tok, arch, window, stride, bos):
    model = _model(tok, arch)
    ids = np.asarray(tok(" ".join(SENTENCES * 3))["input_ids"], dtype=np.int64)
    bos_id = tok.bos_token_id if bos else None
    eff_stride = stride if stride is not None else (window - 1 if bos else window)
    ref = _reference_perplexity(model, ids, window, eff_stride, bos_id)
    for bs in (1, 4):
        got = perplexity(model, ids, window=window, stride=stride, batch_size=bs, bos_token_id=bos_id)
        assert got == pytest.approx(ref, rel=1e-5)
    # max_tokens truncates the stream
    got = perplexity(model, ids, window=window, stride=stride, max_tokens=20, bos_token_id=bos_id)
    assert got == pytest.approx(_reference_perplexity(model, ids[:20], window, eff_stride, bos_id), rel=1e-5)


def test_minimal_pair_accuracy_frame(tok):
    model = _model(tok)
    pairs = [
        {"sentence_good": "the dog barks .", "sentence_bad": "the dog bark .", "UID": "agr", "linguistics_term": "s-v"},
        {"sentence_good": "the dogs bark .", "sentence_bad": "the dogs barks .", "UID": "agr", "linguistics_term": "s-v"},
        {"sentence_good": "the cat sleeps .", "sentence_bad": "the cat sleep .", "UID": "agr2", "linguistics_term": "s-v"},
    ]
    df = minimal_pair_accuracy(model, tok, pairs, batch_size=2)
    assert df.height == 3
    for col in ("logp_good", "logp_bad", "correct", "UID", "linguistics_term"):
        assert col in df.columns
    assert "template" not in df.columns
    good = sentence_logprobs(model, tok, [p["sentence_good"] for p in pairs])
    bad = sentence_logprobs(model, tok, [p["sentence_bad"] for p in pairs])
    np.testing.assert_allclose(df["logp_good"].to_numpy(), good, atol=1e-8)
    np.testing.assert_allclose(df["logp_bad"].to_numpy(), bad, atol=1e-8)
    assert df["correct"].to_list() == list(good > bad)
    assert df["UID"].to_list() == ["agr", "agr", "agr2"]

    tse = [dict(p, template="simple_agrmt", case="sing") for p in pairs]
    df2 = minimal_pair_accuracy(model, tok, tse, reduce="mean")
    assert df2["template"].to_list() == ["simple_agrmt"] * 3 and df2["case"].to_list() == ["sing"] * 3
    with pytest.raises(KeyError, match="sentence_bad"):
        minimal_pair_accuracy(model, tok, [{"sentence_good": "the dog barks ."}])


def test_pretokenised_variants_match(tok):
    from negdiff.logprobs import LogprobPlan, encode_sentences, sequence_logprobs, stream_token_logprobs

    model = _model(tok, "opt")
    enc = encode_sentences(tok, SENTENCES)
    assert [list(e) for e in enc] == [[tok.bos_token_id] + tok(s)["input_ids"] for s in SENTENCES]
    for reduce in ("sum", "mean"):
        np.testing.assert_allclose(
            sequence_logprobs(model, enc, batch_size=3, reduce=reduce),
            sentence_logprobs(model, tok, SENTENCES, batch_size=3, reduce=reduce), rtol=0, atol=1e-10,
        )
    # token budget and first scored positions
    plan = LogprobPlan(enc, [2] * len(enc), batch_size=64, max_batch_tokens=20)
    assert all(b.input_ids.numel() <= 20 or b.input_ids.shape[0] == 1 for b in plan.batches)
    got = plan.run(model)
    for e, g in zip(enc, got):
        ref = _reference_logprob(model, list(e))[1:]
        np.testing.assert_allclose(g, ref, rtol=0, atol=1e-4)
    with pytest.raises(ValueError, match="no scorable"):
        encode_sentences(tok, [""], prepend_bos=False)
    ids = np.asarray(tok(" ".join(SENTENCES * 3))["input_ids"], dtype=np.int64)
    pos, lp = stream_token_logprobs(model, ids, window=16, stride=5, bos_token_id=tok.bos_token_id)
    assert pos.tolist() == list(range(len(ids)))
    assert math.exp(-lp.mean()) == pytest.approx(
        perplexity(model, ids, window=16, stride=5, bos_token_id=tok.bos_token_id), rel=1e-12)
    pos, _ = stream_token_logprobs(model, ids, window=16, stride=8)
    assert pos.tolist() == list(range(1, len(ids)))
