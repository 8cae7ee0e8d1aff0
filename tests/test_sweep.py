"""The condition sweep (negdiff.sweep) and the cohort WD (negdiff.cohorts) against direct calls of
negdiff.logprobs and negdiff.wasserstein on tiny random models."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch

from pair_reference import minimal_pair_accuracy
from negdiff import architectures
from negdiff.capture import capture_pre_activations
from negdiff import logprobs, models
from negdiff.pos import word_pos_for_offsets
from negdiff.data import encode_text, iter_windows
from negdiff.cohorts import COHORT_WD_SCHEMA, LAYER_COHORT, cohort_token_stream, cohort_wd, layer_cohort, selection_cohorts
from negdiff.conditions import Condition
from negdiff.sweep import METRICS_SCHEMA, SURPRISAL_SCHEMA, evaluate_conditions, prepare_eval_data
from negdiff.interventions import intervene, masks_from_selection
from negdiff.wasserstein import wd_to_normal

WINDOW, STRIDE = 16, 8

BLIMP = [
    {"sentence_good": "the cat sat on a mat .", "sentence_bad": "the cat sat a on mat .", "UID": "u1", "linguistics_term": "t1"},
    {"sentence_good": "the dog ran to the park .", "sentence_bad": "the dog ran the to park .", "UID": "u1", "linguistics_term": "t1"},
    {"sentence_good": "she reads books every night .", "sentence_bad": "she books reads every night .", "UID": "u2", "linguistics_term": "t1"},
    {"sentence_good": "birds sang in tall trees .", "sentence_bad": "birds in sang tall trees .", "UID": "u3", "linguistics_term": "t2"},
    {"sentence_good": "stories make her happy !", "sentence_bad": "stories her make happy !", "UID": "u3", "linguistics_term": "t2"},
    # shares its good sentence with the first pair
    {"sentence_good": "the cat sat on a mat .", "sentence_bad": "cat the sat on a mat .", "UID": "u2", "linguistics_term": "t2"},
]
TSE = [
    {"sentence_good": "the cat sat .", "sentence_bad": "the cat sang .", "template": "simple", "case": "sing"},
    {"sentence_good": "the dog ran .", "sentence_bad": "the dog sat .", "template": "simple", "case": "sing"},
    {"sentence_good": "birds sang in trees .", "sentence_bad": "birds sat in trees .", "template": "prep", "case": "plur"},
]
NONSYN = [
    {"sentence_good": "the dog ran to the park .", "sentence_bad": "the park ran to the dog .", "UID": "n1", "linguistics_term": "world"},
    {"sentence_good": "she reads books .", "sentence_bad": "books reads she .", "UID": "n1", "linguistics_term": "world"},
]
SUITES = {"blimp": BLIMP, "tse": TSE, "nonsyntactic": NONSYN}

_LINES = [
    "the cat sat on a mat and the dog ran to the park",
    "while birds sang in tall trees she reads books every night",
    "because stories make her happy . the dog sat on the mat",
    "a cat ran to the trees and birds sang !",
]
TEXT = "\n".join(_LINES * 4) + "\n"
POS = "\n".join(" ".join(f"T{len(w) % 4}" for w in line.split()) for line in _LINES * 4) + "\n"


@pytest.fixture(scope="module", params=["llama", "gpt_neox", "opt"])
def loaded(request, tiny_hf_model):
    model, tok = models.load_model(tiny_hf_model(request.param))
    return model, tok


@pytest.fixture(scope="module")
def llama(tiny_hf_model):
    return models.load_model(tiny_hf_model("llama"))


def _data(tok, **kw):
    args = dict(suites=SUITES, ppl_text=TEXT, surprisal_text=TEXT, surprisal_pos=POS, ppl_tokens=100,
                surprisal_tokens=90, window=WINDOW, stride=STRIDE, prepend_bos=True)
    args.update(kw)
    return prepare_eval_data(tok, **args)


def _selection(model) -> pl.DataFrame:
    L, N = models.n_layers(model), models.n_neurons(model)
    rows = []
    for name, seed in (("wn@1", 0), ("random@1", 1)):
        rng = np.random.default_rng(seed)
        for layer in range(L):
            for n in rng.choice(N, 8, replace=False):
                rows.append({"set": name, "layer": layer, "neuron": int(n)})
    # a set with neurons in layer 0 only
    rows += [{"set": "layer0", "layer": 0, "neuron": n} for n in (1, 5, 9)]
    return pl.DataFrame(rows).with_columns(pl.col("layer").cast(pl.Int32), pl.col("neuron").cast(pl.Int32))


BASE = Condition("baseline", "none", "none", "all", ())


def _group_means(df: pl.DataFrame, field: str) -> dict[str, tuple[int, float, float]]:
    g = (
        df.with_columns((pl.col("logp_good") - pl.col("logp_bad")).alias("d"))
        .group_by(field)
        .agg(pl.len().alias("n"), pl.col("correct").mean().alias("acc"), pl.col("d").mean().alias("m"))
    )
    return {r[field]: (r["n"], r["acc"], r["m"]) for r in g.iter_rows(named=True)}


def _check_against_direct(model, tok, metrics: pl.DataFrame, condition: str):
    m = metrics.filter(pl.col("condition") == condition)
    ids = encode_text(tok, TEXT, max_tokens=100).ids
    ppl = logprobs.perplexity(model, ids, window=WINDOW, stride=STRIDE, bos_token_id=tok.bos_token_id)
    row = m.filter(pl.col("suite") == "ppl").row(0, named=True)
    assert row["n"] == 100 and row["level"] == "overall" and row["group"] == "all"
    assert row["value"] == pytest.approx(ppl, rel=1e-9)
    assert row["margin"] == pytest.approx(math.log(ppl), rel=1e-9)
    for suite, pairs, reduce, levels in (
        ("blimp", BLIMP, "sum", {"paradigm": "UID", "linguistics_term": "linguistics_term"}),
        ("tse", TSE, "mean", {"template": "template", "case": "case"}),
        ("nonsyntactic", NONSYN, "sum", {"paradigm": "UID", "linguistics_term": "linguistics_term"}),
    ):
        df = minimal_pair_accuracy(model, tok, pairs, reduce=reduce)
        s = m.filter(pl.col("suite") == suite)
        ov = s.filter(pl.col("level") == "overall").row(0, named=True)
        assert ov["n"] == len(pairs)
        assert ov["value"] == pytest.approx(df["correct"].mean(), abs=1e-12)
        assert ov["margin"] == pytest.approx((df["logp_good"] - df["logp_bad"]).mean(), abs=1e-5)
        for level, field in levels.items():
            ref = _group_means(df, field)
            got = s.filter(pl.col("level") == level)
            assert sorted(got["group"].to_list()) == sorted(ref)
            for r in got.iter_rows(named=True):
                n, acc, mar = ref[r["group"]]
                assert r["n"] == n and r["value"] == pytest.approx(acc, abs=1e-12)
                assert r["margin"] == pytest.approx(mar, abs=1e-5)


def test_baseline_equals_direct_calls(loaded):
    model, tok = loaded
    data = _data(tok)
    out = evaluate_conditions(model, data, [BASE], None, batch_size=4, progress=False)
    _check_against_direct(model, tok, out["metrics"], "baseline")
    # a sentence shared by two pairs is encoded once
    n_unique = len({p[k] for ps in SUITES.values() for p in ps for k in ("sentence_good", "sentence_bad")})
    assert data.n_sentences == n_unique


def test_intervention_equals_manual_intervene(loaded):
    model, tok = loaded
    sel = _selection(model)
    L = models.n_layers(model)
    conds = [
        BASE,
        Condition("neg_zero|wn@1|all", "neg_zero", "wn@1", "all", tuple(range(L))),
        Condition("full|random@1|single:1", "full", "random@1", "single:1", (1,)),
    ]
    data = _data(tok)
    out = evaluate_conditions(model, data, conds, sel, batch_size=5, progress=False)
    base = out["metrics"].filter(pl.col("condition") == "baseline")
    for cond in conds[1:]:
        masks = masks_from_selection(sel.filter(pl.col("set") == cond.set), L, models.n_neurons(model),
                                     layers=cond.layers)
        n = out["metrics"].filter(pl.col("condition") == cond.name)["n_neurons"].unique().to_list()
        assert n == [sum(int(m.sum()) for m in masks.values())] and n[0] > 0
        with intervene(model, masks, cond.intervention):
            _check_against_direct(model, tok, out["metrics"], cond.name)
        # and the intervention did change something (neg_zero is the identity on ReLU's output)
        if not (cond.intervention == "neg_zero" and architectures.arch_spec(model).activation == "relu"):
            got = out["metrics"].filter(pl.col("condition") == cond.name)
            assert not np.allclose(got["margin"].to_numpy(), base["margin"].to_numpy(), atol=1e-9)


def test_prefix_replay_is_exact(loaded):
    model, tok = loaded
    sel = _selection(model)
    conds = [
        BASE,
        Condition("neg_zero|wn@1|single:1", "neg_zero", "wn@1", "single:1", (1,)),
        Condition("pos_zero|random@1|single:1", "pos_zero", "random@1", "single:1", (1,)),
    ]
    data = _data(tok)
    a = evaluate_conditions(model, data, conds, sel, batch_size=3, progress=False)
    b = evaluate_conditions(model, data, conds, sel, batch_size=3, progress=False, prefix_cache_bytes=0)
    assert a["metrics"].equals(b["metrics"]) and a["surprisal"].equals(b["surprisal"])
    # the blocks are restored afterwards
    assert all("forward" not in blk.__dict__ for blk in models.block_modules(model))


def test_hand_computed_sentence_logprob(llama):
    model, tok = llama
    good, bad = "the dog ran to the park .", "the cat sat on a mat ."

    def by_hand(sentence):
        ids = [tok.bos_token_id] + tok(sentence, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0].double()
        total = 0.0
        for t in range(1, len(ids)):
            total += float(torch.log_softmax(logits[t - 1], dim=-1)[ids[t]])
        return total, len(ids) - 1

    (lg, ng), (lb, nb) = by_hand(good), by_hand(bad)
    pairs = [{"sentence_good": good, "sentence_bad": bad, "UID": "x", "linguistics_term": "y"}]
    tse = [{"sentence_good": good, "sentence_bad": bad, "template": "x", "case": "y"}]
    data = _data(tok, suites={"blimp": pairs, "tse": tse}, ppl_text=None, surprisal_text=None, surprisal_pos=None)
    m = evaluate_conditions(model, data, [BASE], None, progress=False)["metrics"]
    blimp = m.filter((pl.col("suite") == "blimp") & (pl.col("level") == "overall")).row(0, named=True)
    tsem = m.filter((pl.col("suite") == "tse") & (pl.col("level") == "overall")).row(0, named=True)
    assert blimp["margin"] == pytest.approx(lg - lb, abs=1e-5)
    assert blimp["value"] == float(lg > lb)
    assert tsem["margin"] == pytest.approx(lg / ng - lb / nb, abs=1e-5)
    enc = logprobs.encode_sentences(tok, [good, bad])
    np.testing.assert_allclose(logprobs.sequence_logprobs(model, enc), [lg, lb], rtol=0, atol=1e-5)
    assert set(m["suite"].to_list()) == {"blimp", "tse"}


class _CountingTokenizer:
    def __init__(self, tok):
        self._tok = tok
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self._tok(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._tok, name)


def test_tokenises_once(llama, monkeypatch):
    model, tok = llama
    counting = _CountingTokenizer(tok)
    data = _data(counting)
    # one call for all sentences of all suites, one for the (shared) ppl/surprisal text
    assert counting.calls == 2
    sel = _selection(model)
    conds = [BASE] + [Condition(f"{op}|wn@1|all", op, "wn@1", "all", (0, 1)) for op in ("neg_zero", "full", "sign_flip")]
    encode_calls = []
    monkeypatch.setattr(logprobs, "encode_sentences", lambda *a, **k: encode_calls.append(1))
    evaluate_conditions(model, data, conds, sel, progress=False)
    assert counting.calls == 2 and not encode_calls


def test_surprisal_consistent_with_perplexity(llama):
    model, tok = llama
    data = _data(tok, ppl_text=TEXT, ppl_tokens=90)
    out = evaluate_conditions(model, data, [BASE], None, progress=False)
    s, m = out["surprisal"], out["metrics"]
    assert s.schema == pl.Schema(SURPRISAL_SCHEMA)
    assert s["token"].to_list() == list(range(90))  # with BOS every token is scored, once
    stream = encode_text(tok, TEXT, max_tokens=90)
    ppl = logprobs.perplexity(model, stream.ids, window=WINDOW, stride=STRIDE, bos_token_id=tok.bos_token_id)
    assert float(s["surprisal"].cast(pl.Float64).mean()) == pytest.approx(math.log(ppl), rel=1e-6)
    assert m.filter(pl.col("suite") == "ppl")["value"].item() == pytest.approx(ppl, rel=1e-12)
    # POS aligned with the tokens
    ref = word_pos_for_offsets(TEXT, POS, stream.offsets)
    assert s["pos"].to_list() == ref and any(p is not None for p in ref)
    # per-token surprisal equals the direct per-token log-probs
    pos_, lp = logprobs.stream_token_logprobs(model, stream.ids, window=WINDOW, stride=STRIDE,
                                           bos_token_id=tok.bos_token_id)
    np.testing.assert_allclose(s["surprisal"].to_numpy(), -lp, rtol=1e-6)

    # a pluggable tagger; no tagger and no gold tags -> null POS
    tagged = _data(tok, pos_tagger=lambda text, off: [text[a:b].upper() for a, b in off.tolist()])
    s2 = evaluate_conditions(model, tagged, [BASE], None, progress=False)["surprisal"]
    assert s2["pos"][:3].to_list() == [TEXT[a:b].upper() for a, b in stream.offsets[:3].tolist()]
    s3 = evaluate_conditions(model, _data(tok, surprisal_pos=None), [BASE], None, progress=False)["surprisal"]
    assert s3["pos"].null_count() == s3.height > 0


def test_surprisal_without_bos_skips_first_token(llama):
    model, tok = llama
    data = _data(tok, prepend_bos=False)
    s = evaluate_conditions(model, data, [BASE], None, progress=False)["surprisal"]
    assert s["token"].to_list() == list(range(1, 90))
    stream = encode_text(tok, TEXT, max_tokens=90)
    ppl = logprobs.perplexity(model, stream.ids, window=WINDOW, stride=STRIDE)
    assert float(s["surprisal"].cast(pl.Float64).mean()) == pytest.approx(math.log(ppl), rel=1e-6)


def test_schema_determinism_and_empty_scopes(llama):
    model, tok = llama
    sel = _selection(model)
    conds = [
        BASE,
        Condition("neg_zero|wn@1|none", "neg_zero", "wn@1", "cumulative:-1", ()),  # empty layer scope
        Condition("full|layer0|single:1", "full", "layer0", "single:1", (1,)),  # no neurons in scope
        Condition("neg_zero|wn@1|single:0", "neg_zero", "wn@1", "single:0", (0,)),
    ]
    data = _data(tok)
    a = evaluate_conditions(model, data, conds, sel, progress=False)
    b = evaluate_conditions(model, data, conds, sel, progress=False)
    assert a["metrics"].equals(b["metrics"]) and a["surprisal"].equals(b["surprisal"])
    m = a["metrics"]
    assert m.schema == pl.Schema(METRICS_SCHEMA)
    assert m.columns == list(METRICS_SCHEMA)
    assert m["condition"].unique(maintain_order=True).to_list() == [c.name for c in conds]
    assert m.filter(pl.col("condition") == "baseline")["suite"].unique(maintain_order=True).to_list() == [
        "ppl", "blimp", "tse", "nonsyntactic"]
    levels = m.filter(pl.col("condition") == "baseline").group_by("suite").agg(pl.col("level").unique())
    levels = {r["suite"]: set(r["level"]) for r in levels.iter_rows(named=True)}
    assert levels == {"ppl": {"overall"}, "blimp": {"overall", "paradigm", "linguistics_term"},
                      "tse": {"overall", "template", "case"},
                      "nonsyntactic": {"overall", "paradigm", "linguistics_term"}}
    assert m.filter(pl.col("level") == "overall")["group"].unique().to_list() == ["all"]
    base = m.filter(pl.col("condition") == "baseline")
    for name in ("neg_zero|wn@1|none", "full|layer0|single:1"):
        c = m.filter(pl.col("condition") == name)
        assert c["n_neurons"].unique().to_list() == [0]
        assert c.select("value", "margin", "n").equals(base.select("value", "margin", "n"))
        sc = a["surprisal"].filter(pl.col("condition") == name)["surprisal"]
        assert sc.equals(a["surprisal"].filter(pl.col("condition") == "baseline")["surprisal"])
    assert m.filter(pl.col("condition") == "neg_zero|wn@1|single:0")["n_neurons"].unique().to_list() == [8]
    assert base["n_neurons"].unique().to_list() == [0]


def test_condition_errors(llama):
    model, tok = llama
    sel = _selection(model)
    data = _data(tok, suites={"blimp": BLIMP}, ppl_text=None, surprisal_text=None)
    with pytest.raises(ValueError, match="not in the selection"):
        evaluate_conditions(model, data, [Condition("x", "full", "nope@1", "all", (0,))], sel, progress=False)
    with pytest.raises(ValueError, match="duplicate"):
        evaluate_conditions(model, data, [BASE, BASE], sel, progress=False)
    with pytest.raises(ValueError, match="needs a neuron set"):
        evaluate_conditions(model, data, [Condition("x", "full", "none", "all", (0,))], sel, progress=False)
    with pytest.raises(ValueError, match="no selection"):
        evaluate_conditions(model, data, [Condition("x", "full", "wn@1", "all", (0,))], None, progress=False)
    with pytest.raises(ValueError, match="unknown intervention"):
        evaluate_conditions(model, data, [Condition("x", "zap", "wn@1", "all", (0,))], sel, progress=False)
    with pytest.raises(ValueError, match="unknown suite"):
        _data(tok, suites={"blimpp": BLIMP})
    # no streams: no ppl rows, empty surprisal with the right schema
    out = evaluate_conditions(model, data, [BASE], sel, progress=False)
    assert out["metrics"]["suite"].unique().to_list() == ["blimp"]
    assert out["surprisal"].height == 0 and out["surprisal"].schema == pl.Schema(SURPRISAL_SCHEMA)


@pytest.mark.parametrize("bos", [True, False])
def test_cohort_wd_matches_direct_capture(loaded, bos):
    model, tok = loaded
    ids = encode_text(tok, TEXT).ids
    bos_id = tok.bos_token_id if bos else None
    cohort = pl.DataFrame({"layer": [1, 0, 0, 1], "neuron": [3, 7, 2, 60]})
    n_ctx = WINDOW - (1 if bos else 0)  # stream tokens per window of WINDOW model positions
    got = cohort_wd(model, ids, {"wn@1": cohort}, window=WINDOW, stride=STRIDE, max_tokens=70,
                    bos_token_id=bos_id, batch_size=3)
    assert got.columns == ["cohort", "layer", "neuron", "wd", "wd_neg", "wd_pos", "frac_negative"]
    assert got.schema == pl.Schema(COHORT_WD_SCHEMA)
    assert got["cohort"].unique().to_list() == ["wn@1"]
    assert got.select("layer", "neuron").rows() == [(0, 2), (0, 7), (1, 3), (1, 60)]
    # direct: every window alone, full forward, keep each token once
    acts = {0: [], 1: []}
    with capture_pre_activations(model, [0, 1]) as cap, torch.no_grad():
        for w in iter_windows(70, n_ctx, STRIDE):
            seq = list(ids[w.start : w.end])
            shift = 0
            if bos:
                seq, shift = [bos_id] + seq, 1
            model(input_ids=torch.tensor([seq]))
            for layer in (0, 1):
                acts[layer].append(cap.pre_activation[layer][0, w.keep_from - w.start + shift : w.end - w.start + shift].numpy())
    a0, a1 = np.concatenate(acts[0]), np.concatenate(acts[1])
    assert a0.shape[0] == 70
    ref0, ref1 = wd_to_normal(a0[:, [2, 7]]), wd_to_normal(a1[:, [3, 60]])
    for col in ("wd", "wd_neg", "wd_pos", "frac_negative"):
        np.testing.assert_allclose(got[col].to_numpy(), np.concatenate([ref0[col], ref1[col]]), rtol=1e-5, atol=1e-6)


def test_cohort_wd_several_cohorts_equal_single_runs(loaded):
    """One pass over several named cohorts (overlapping, empty, the layer cohort) gives, per cohort,
    exactly the single-cohort result, in the given cohort order, each sorted by layer, neuron."""
    model, tok = loaded
    ids = encode_text(tok, TEXT).ids
    kw = dict(window=WINDOW, stride=STRIDE, max_tokens=80, bos_token_id=tok.bos_token_id, batch_size=4)
    sel = _selection(model)
    cohorts = selection_cohorts(sel, ["wn@1", "random@1", "layer0"])
    cohorts["shares"] = pl.concat([cohorts["wn@1"].head(3), cohorts["random@1"].tail(2)]).select("layer", "neuron")
    cohorts["none"] = sel.clear()
    cohorts[LAYER_COHORT] = layer_cohort(models.n_layers(model), models.n_neurons(model), seed=0)
    got = cohort_wd(model, ids, cohorts, **kw)
    assert got.schema == pl.Schema(COHORT_WD_SCHEMA)
    assert got["cohort"].unique(maintain_order=True).to_list() == ["wn@1", "random@1", "layer0", "shares", "layer"]
    for name, coh in cohorts.items():
        one = cohort_wd(model, ids, {name: coh}, **kw)
        part = got.filter(pl.col("cohort") == name)
        assert part.height == coh.height == one.height
        assert part.equals(one), name
        assert part.select("layer", "neuron").rows() == sorted(part.select("layer", "neuron").rows())
    assert got.filter(pl.col("cohort") == LAYER_COHORT).height == models.n_layers(model) * models.n_neurons(model)
    assert cohort_wd(model, ids, {}, **kw).schema == pl.Schema(COHORT_WD_SCHEMA)


def test_cohort_wd_errors(llama):
    model, tok = llama
    ids = encode_text(tok, TEXT).ids
    kw = dict(window=WINDOW, stride=STRIDE, max_tokens=None, bos_token_id=tok.bos_token_id)
    with pytest.raises(ValueError, match="'a' lacks column"):
        cohort_wd(model, ids, {"a": pl.DataFrame({"layer": [0]})}, **kw)
    with pytest.raises(ValueError, match="'b' has duplicate"):
        cohort_wd(model, ids, {"a": pl.DataFrame({"layer": [0], "neuron": [1]}),
                               "b": pl.DataFrame({"layer": [0, 0], "neuron": [1, 1]})}, **kw)
    with pytest.raises(IndexError, match="'c' has"):
        cohort_wd(model, ids, {"c": pl.DataFrame({"layer": [0], "neuron": [models.n_neurons(model)]})}, **kw)
    with pytest.raises(ValueError, match="empty token stream"):
        cohort_wd(model, ids[:0], {"a": pl.DataFrame({"layer": [0], "neuron": [1]})}, **kw)
    sel = _selection(model)
    with pytest.raises(ValueError, match=r"\['random@1#1'\] not in the selection"):
        selection_cohorts(sel, ["wn@1", "random@1#1"])
    # a set the selection record lists as empty gives an empty cohort
    assert selection_cohorts(sel, ["wn@1", "random@1#1"], empty_sets=["random@1#1"])["random@1#1"].height == 0


def test_layer_cohort_all_or_seeded_sample():
    small = layer_cohort(3, 512, seed=0)
    assert small.height == 3 * 512
    assert small.filter(pl.col("layer") == 2)["neuron"].to_list() == list(range(512))
    big = layer_cohort(2, 2000, seed=5)
    for layer in (0, 1):
        neu = big.filter(pl.col("layer") == layer)["neuron"].to_list()
        assert len(neu) == 512 == len(set(neu)) and neu == sorted(neu) and 0 <= min(neu) and max(neu) < 2000
    assert big.equals(layer_cohort(2, 2000, seed=5))  # seeded
    assert not big.equals(layer_cohort(2, 2000, seed=6))
    assert big.filter(pl.col("layer") == 0)["neuron"].to_list() != big.filter(pl.col("layer") == 1)["neuron"].to_list()
    assert layer_cohort(2, 10, seed=0, size=4).height == 8
    with pytest.raises(ValueError, match="size"):
        layer_cohort(2, 10, seed=0, size=0)


def test_cohort_token_stream_is_held_out(llama):
    """Another split: its first cohort_wd_tokens tokens. The activation split itself: the tokens after
    the first activations.max_tokens (the dumped ones). Too few left: an error naming the config keys."""
    _, tok = llama
    full = encode_text(tok, TEXT).ids
    assert len(full) > 150
    ev = {"ppl_split": "valid", "cohort_wd_tokens": 50}
    ids, skip = cohort_token_stream(tok, TEXT, evaluation=ev, activations={"split": "train", "max_tokens": 100})
    assert skip == 0 and np.array_equal(ids, full[:50])
    ids, skip = cohort_token_stream(tok, TEXT, evaluation=ev, activations={"split": "valid", "max_tokens": 100})
    assert skip == 100 and np.array_equal(ids, full[100:150])
    with pytest.raises(ValueError, match=r"activations\.max_tokens=.*evaluation\.cohort_wd_tokens"):
        cohort_token_stream(tok, TEXT, evaluation=ev, activations={"split": "valid", "max_tokens": len(full) - 49})
    with pytest.raises(ValueError, match=r"evaluation\.cohort_wd_tokens=.*evaluation\.ppl_split='valid'"):
        cohort_token_stream(tok, TEXT, evaluation={**ev, "cohort_wd_tokens": len(full) + 1},
                            activations={"split": "train", "max_tokens": 100})
