from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
import torch

from conftest import TINY_VOCAB
from negdiff import architectures
from negdiff.capture import capture_pre_activations
from negdiff import interventions as I
from negdiff import models, selection as S
from negdiff.wasserstein import wd_to_normal


def _scores(sizes: dict[int, int], seed: int = 0, ties: bool = False) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for layer, n in sizes.items():
        wd = rng.random(n)
        if ties:
            wd = np.round(wd * 4) / 4  # many ties
        frames.append(pl.DataFrame({"layer": np.full(n, layer, np.int32), "neuron": np.arange(n, dtype=np.int32),
                                    "wd": wd, "md": rng.random(n)}))
    # shuffled rows: selection must not depend on the input order
    df = pl.concat(frames)
    return df[rng.permutation(df.height)]


SIZES = {0: 50, 1: 7, 2: 200, 3: 3}


def _count(n, percent):
    return max(1, round(n * percent / 100))


def _no_dups(df):
    assert df.select(pl.struct("layer", "neuron").is_duplicated().any()).item() is False


# ------------------------------------------------------------------------------------------ WN


@pytest.mark.parametrize("percent", [0.5, 1, 5, 10, 25, 50, 100])
def test_wn_counts_and_true_top(percent):
    scores = _scores(SIZES, ties=True)
    sel = S.select_wn(scores, percent)
    assert sel.schema == pl.Schema(S.SET_SCHEMA)
    counts = S.counts_per_layer(sel)
    assert counts == {l: _count(n, percent) for l, n in SIZES.items()}
    assert all(c >= 1 for c in counts.values())
    _no_dups(sel)
    assert (sel["method"] == "wn").all() and (sel["percent"] == percent).all() and sel["seed"].is_null().all()
    # reference: per layer, sort by (-wd, neuron) in plain Python
    for layer, n in SIZES.items():
        rows = scores.filter(pl.col("layer") == layer)
        ranked = sorted(zip(rows["wd"].to_list(), rows["neuron"].to_list()), key=lambda t: (-t[0], t[1]))
        expected = sorted(nrn for _, nrn in ranked[: _count(n, percent)])
        assert sel.filter(pl.col("layer") == layer)["neuron"].to_list() == expected
    assert sel.sort(["layer", "neuron"]).equals(sel)


def test_counts_rounding():
    # 7 * 10 / 100 = 0.7 -> 1; 50 * 5 / 100 = 2.5 -> 2 (halves to even); 3 * 50 / 100 = 1.5 -> 2
    scores = _scores(SIZES)
    assert S.counts_per_layer(S.select_wn(scores, 10)) == {0: 5, 1: 1, 2: 20, 3: 1}
    assert S.counts_per_layer(S.select_wn(scores, 5)) == {0: 2, 1: 1, 2: 10, 3: 1}
    assert S.counts_per_layer(S.select_wn(scores, 50)) == {0: 25, 1: 4, 2: 100, 3: 2}
    assert S.counts_per_layer(S.select_wn(scores, 0.01)) == {0: 1, 1: 1, 2: 1, 3: 1}


@pytest.mark.parametrize("bad", [0, -1, 101, float("nan")])
def test_bad_percent(bad):
    with pytest.raises(ValueError, match="percent"):
        S.select_wn(_scores(SIZES), bad)
    if bad != 0:
        with pytest.raises(ValueError, match="percent"):
            S.select_lowest_wd(_scores(SIZES), bad)


def test_scores_checks():
    scores = _scores({0: 5})
    with pytest.raises(ValueError, match="wd"):
        S.select_wn(scores.drop("wd"), 10)
    with pytest.raises(ValueError, match="duplicate"):
        S.select_wn(pl.concat([scores, scores.head(1)]), 10)


# ------------------------------------------------------------------------------------------ random


def test_random_same_counts_deterministic_and_seed_dependent():
    scores = _scores(SIZES)
    counts = S.counts_per_layer(S.select_wn(scores, 10))
    r1 = S.select_random(scores, counts, seed=0)
    r2 = S.select_random(scores, counts, seed=0)
    r3 = S.select_random(scores, counts, seed=1)
    assert S.counts_per_layer(r1) == counts == S.counts_per_layer(r3)
    assert r1.equals(r2)
    assert not r1.select("layer", "neuron").equals(r3.select("layer", "neuron"))
    _no_dups(r1)
    _no_dups(r3)
    assert r1.schema == pl.Schema(S.SET_SCHEMA)
    assert (r1["method"] == "random").all() and (r1["seed"] == 0).all() and r1["percent"].is_null().all()
    # wd carried over from the scores table
    joined = r1.join(scores, on=["layer", "neuron"], suffix="_s")
    assert joined.height == r1.height and (joined["wd"] == joined["wd_s"]).all()


def test_random_per_layer_independent_of_other_layers_and_row_order():
    scores = _scores(SIZES)
    full = S.select_random(scores, {0: 5, 2: 20}, seed=3)
    only2 = S.select_random(scores.filter(pl.col("layer") == 2), {2: 20}, seed=3)
    assert full.filter(pl.col("layer") == 2).equals(only2)
    shuffled = scores.sample(fraction=1.0, shuffle=True, seed=9)
    assert S.select_random(shuffled, {0: 5, 2: 20}, seed=3).equals(full)
    # all neurons of a layer are reachable; 100% is the whole layer
    assert S.select_random(scores, {1: 7}, seed=0)["neuron"].to_list() == list(range(7))
    hits = set()
    for seed in range(200):
        hits.update(S.select_random(scores, {0: 10}, seed=seed)["neuron"].to_list())
    assert hits == set(range(50))


def test_random_errors():
    scores = _scores({0: 5})
    with pytest.raises(ValueError, match="cannot draw 6"):
        S.select_random(scores, {0: 6}, seed=0)
    with pytest.raises(ValueError, match="layer 4"):
        S.select_random(scores, {4: 1}, seed=0)
    with pytest.raises(ValueError, match="seed"):
        S.select_random(scores, {0: 1}, seed=-1)
    assert S.select_random(scores, {0: 0}, seed=0).height == 0


# ------------------------------------------------------------------------------------------ lowest WD


@pytest.mark.parametrize("percent", [1, 10, 50, 100])
def test_lowest_wd(percent):
    scores = _scores(SIZES, ties=True)
    sel = S.select_lowest_wd(scores, percent)
    assert S.counts_per_layer(sel) == {l: _count(n, percent) for l, n in SIZES.items()}
    _no_dups(sel)
    for layer, n in SIZES.items():
        rows = scores.filter(pl.col("layer") == layer)
        ranked = sorted(zip(rows["wd"].to_list(), rows["neuron"].to_list()))
        expected = sorted(nrn for _, nrn in ranked[: _count(n, percent)])
        assert sel.filter(pl.col("layer") == layer)["neuron"].to_list() == expected
    assert (sel["method"] == "lowest_wd").all()
    if percent == 100:
        assert sel.select("layer", "neuron").equals(S.select_wn(scores, 100).select("layer", "neuron"))


def test_zero_variance_neurons_ranked_last():
    scores = pl.DataFrame({"layer": [0] * 6, "neuron": list(range(6)),
                           "wd": [0.1, 0.5, 0.3, 0.9, 0.2, 0.7], "std": [0.0, 1.0, 1.0, 0.0, 1.0, 1.0]})
    assert S.select_lowest_wd(scores, 50)["neuron"].to_list() == [1, 2, 4]
    assert S.select_wn(scores, 50)["neuron"].to_list() == [1, 2, 5]
    assert S.select_lowest_wd(scores, 100)["neuron"].to_list() == list(range(6))


def test_lowest_wd_zero_is_empty():
    sel = S.select_lowest_wd(_scores(SIZES), 0)
    assert sel.height == 0 and sel.schema == pl.Schema(S.SET_SCHEMA)


# ------------------------------------------------------------------------------------------ ppl-matched search


def _synthetic_ppl(calls):
    def ppl_of(sel):
        calls.append(sel.height)
        m = sel["percent"][0] if sel.height else 0.0
        return 10.0 + 0.3 * m

    return ppl_of


def test_ppl_matched_converges_on_synthetic_monotone():
    scores = _scores({0: 1000, 1: 1000})
    calls: list[int] = []
    sel, rec = S.ppl_matched_search(scores, _synthetic_ppl(calls), target_ppl=19.0, tolerance=0.01, max_iter=30)
    assert rec["converged"] is True
    assert abs(rec["ppl"] - 19.0) <= 0.01 * 19.0
    assert abs(rec["m"] - 30.0) <= 0.01 * 19.0 / 0.3 + 1e-9
    assert rec["target_ppl"] == 19.0 and rec["tolerance"] == 0.01
    assert 1 <= rec["iterations"] <= 30
    assert rec["history"][0]["m"] == 100.0 and rec["history"][1]["m"] == 0.0
    assert len(rec["history"]) == rec["iterations"] + 2
    assert rec["history"][-1] == {"m": rec["m"], "ppl": rec["ppl"], "n_selected": sel.height}
    assert rec["evaluations"] == len(calls)
    assert S.counts_per_layer(sel) == {0: _count(1000, rec["m"]), 1: _count(1000, rec["m"])}
    assert (sel["method"] == "ppl_matched").all() and (sel["percent"] == rec["m"]).all()
    # the set is the lowest-WD set at m
    assert sel.select("layer", "neuron").equals(S.select_lowest_wd(scores, rec["m"]).select("layer", "neuron"))
    json.dumps(rec)  # serialisable record


def test_ppl_matched_endpoints_only_bracket():
    """With a tolerance so generous that both endpoints are in the band, bisection still picks a midpoint."""
    scores = _scores({0: 1000})

    def ppl_of(sel):
        return 10.0 + 0.01 * (sel["percent"][0] if sel.height else 0.0)

    sel, rec = S.ppl_matched_search(scores, ppl_of, target_ppl=10.5, tolerance=0.1, max_iter=5)
    assert rec["converged"] is True and rec["m"] == 50.0 and rec["iterations"] == 1
    assert [h["m"] for h in rec["history"]] == [100.0, 0.0, 50.0]
    # max_iter=0: no midpoint; the closest endpoint is returned and is within the band
    sel, rec = S.ppl_matched_search(scores, ppl_of, target_ppl=10.9, tolerance=0.1, max_iter=0)
    assert rec["converged"] is True and rec["m"] == 100.0 and rec["iterations"] == 0


def test_ppl_matched_target_above_reach_is_flagged():
    scores = _scores({0: 100})
    calls: list[int] = []
    sel, rec = S.ppl_matched_search(scores, _synthetic_ppl(calls), target_ppl=100.0, tolerance=0.05, max_iter=10)
    assert rec["converged"] is False and rec["m"] == 100.0 and rec["ppl"] == pytest.approx(40.0)
    assert sel.height == 100 and rec["iterations"] == 0 and len(rec["history"]) == 1
    assert "below" in rec["reason"]


def test_ppl_matched_target_below_lo_is_flagged():
    scores = _scores({0: 100})
    sel, rec = S.ppl_matched_search(scores, _synthetic_ppl([]), target_ppl=5.0, tolerance=0.05, max_iter=10)
    assert rec["converged"] is False and rec["m"] == 0.0 and sel.height == 0
    assert "above" in rec["reason"]


def test_ppl_matched_max_iter_reached_returns_closest():
    scores = _scores({0: 10_000})
    sel, rec = S.ppl_matched_search(scores, _synthetic_ppl([]), target_ppl=19.0, tolerance=1e-6, max_iter=3)
    assert rec["converged"] is False and rec["iterations"] == 3 and rec["reason"] == "max_iter reached"
    errs = [abs(h["ppl"] - 19.0) for h in rec["history"]]
    assert abs(rec["ppl"] - 19.0) == min(errs)
    assert len(rec["history"]) == 5


def test_ppl_matched_caches_identical_sets():
    # 4 neurons per layer: many m give the same set; ppl_of is called once per distinct set
    scores = _scores({0: 4})
    calls: list[int] = []

    def ppl_of(sel):
        calls.append(sel.height)
        return 10.0 + sel.height  # step function: 10, 11, ..., 14

    _, rec = S.ppl_matched_search(scores, ppl_of, target_ppl=12.5, tolerance=0.001, max_iter=20)
    assert rec["converged"] is False and rec["iterations"] == 20
    assert len(calls) == len(set(calls)) == rec["evaluations"] <= 5
    assert abs(rec["ppl"] - 12.5) == 0.5


def test_ppl_matched_argument_checks():
    scores = _scores({0: 10})
    with pytest.raises(ValueError, match="target_ppl"):
        S.ppl_matched_search(scores, _synthetic_ppl([]), target_ppl=float("nan"), tolerance=0.1, max_iter=3)
    with pytest.raises(ValueError, match="lo"):
        S.ppl_matched_search(scores, _synthetic_ppl([]), target_ppl=12.0, tolerance=0.1, max_iter=3, lo=50, hi=10)


def test_ppl_matched_on_tiny_llama(tiny_hf_model):
    model, _ = models.load_model(tiny_hf_model("llama"))
    g = torch.Generator().manual_seed(0)
    score_ids = torch.randint(4, TINY_VOCAB, (4, 32), generator=g)
    eval_ids = torch.randint(4, TINY_VOCAB, (4, 32), generator=g)
    n_layers, n_neurons = models.n_layers(model), models.n_neurons(model)
    with torch.no_grad(), capture_pre_activations(model) as cap:
        model(score_ids)
    frames = []
    for layer in range(n_layers):
        a = cap.pre_activation[layer].reshape(-1, n_neurons).double().numpy()
        frames.append(pl.DataFrame({"layer": np.full(n_neurons, layer, np.int32),
                                    "neuron": np.arange(n_neurons, dtype=np.int32),
                                    "wd": wd_to_normal(a)["wd"]}))
    scores = pl.concat(frames)

    def ppl_of(sel: pl.DataFrame) -> float:
        masks = I.masks_from_selection(sel, n_layers, n_neurons)
        with torch.no_grad(), I.intervene(model, masks, "neg_zero"):
            return math.exp(float(model(eval_ids, labels=eval_ids).loss))

    wn = S.select_wn(scores, 10)
    target = ppl_of(wn)
    assert math.isfinite(target)
    sel, rec = S.ppl_matched_search(scores, ppl_of, target, tolerance=0.25, max_iter=8)
    assert math.isfinite(rec["ppl"]) and rec["history"]
    assert all(math.isfinite(h["ppl"]) for h in rec["history"])
    assert 0.0 <= rec["m"] <= 100.0 and isinstance(rec["converged"], bool)
    assert sel.height == rec["n_selected"]
    # the recorded ppl is what the chosen set gives
    assert ppl_of(sel) == pytest.approx(rec["ppl"], rel=1e-6)
    json.dumps(rec)
    table = S.selection_table({"wn": wn, "ppl_matched": sel})
    assert table["set"].unique(maintain_order=True).to_list() == ["wn", "ppl_matched"][: 1 + (sel.height > 0)]


# ------------------------------------------------------------------------------------------ table


def test_selection_table():
    scores = _scores(SIZES)
    wn = S.select_wn(scores, 10)
    rnd = S.select_random(scores, S.counts_per_layer(wn), seed=4)
    bare = pl.DataFrame({"layer": [0, 1], "neuron": [3, 2]})
    table = S.selection_table({"wn_10": wn, "random_10_s4": rnd, "manual": bare})
    assert table.schema == pl.Schema(S.SELECTION_SCHEMA)
    assert table.height == wn.height + rnd.height + 2
    assert table["set"].unique(maintain_order=True).to_list() == ["wn_10", "random_10_s4", "manual"]
    r = table.filter(pl.col("set") == "random_10_s4")
    assert r["seed"].to_list() == [4] * rnd.height and r["percent"].is_null().all()
    w = table.filter(pl.col("set") == "wn_10")
    assert w["seed"].is_null().all() and (w["percent"] == 10.0).all()
    m = table.filter(pl.col("set") == "manual")
    assert m["method"].is_null().all() and m["wd"].is_null().all()
    # round trip to masks
    masks = I.masks_from_selection(w, n_layers=4, n_neurons=200)
    assert {l: int(v.sum()) for l, v in masks.items()} == S.counts_per_layer(wn)
    with pytest.raises(ValueError, match="duplicate"):
        S.selection_table({"dup": pl.DataFrame({"layer": [0, 0], "neuron": [1, 1]})})
    empty = S.selection_table({})
    assert empty.height == 0 and empty.schema == pl.Schema(S.SELECTION_SCHEMA)


def test_matched_control_tolerance_is_a_fraction_of_the_wn_increase(tiny_hf_model, tmp_path):
    """The band is tolerance x (WN ppl - baseline ppl), so a tiny WN effect is not matched by any set."""
    from negdiff.activation_reader import ActivationReader
    from negdiff.activations import dump_activations
    from negdiff.data import encode_text
    from negdiff.models import load_model
    from negdiff.scoring import score_activations
    from negdiff.selection import matched_control, select_wn

    path = tiny_hf_model("llama")
    model, tok = load_model(path)
    text = "\n".join(["the cat sees the dog", "a dog runs", "the dogs see a cat"] * 40) + "\n"
    (tmp_path / "t.txt").write_text(text)
    dump_activations(model, encode_text(tok, text), tmp_path / "a", window=16, stride=8, max_tokens=300,
                     tokens_per_shard=300, progress=False)
    scores = score_activations(ActivationReader(tmp_path / "a"))
    wn = select_wn(scores, 10.0)
    chosen, rec = matched_control(model, tok, scores, wn, text_path=tmp_path / "t.txt", tokens=200,
                                  window=16, stride=8, prepend_bos=True, tolerance=0.25, max_iter=6, hi=80.0)
    assert rec["band_ppl"] == pytest.approx(max(0.25 * abs(rec["target_ppl"] - rec["baseline_ppl"]), 1e-4 * rec["target_ppl"]))
    if rec["converged"]:
        assert abs(rec["ppl"] - rec["target_ppl"]) <= rec["band_ppl"] * (1 + 1e-9)
    assert chosen.height == rec["n_selected"] and len(rec["history"]) >= 1


MATCHED = dict(tokens=100, window=16, stride=8, prepend_bos=True, tolerance=0.1, max_iter=4, hi=60.0)


def test_matched_control_is_skipped_where_neg_zero_is_the_identity(tiny_hf_model, tmp_path):
    """ReLU (OPT): neg_zero changes nothing, so the WN perplexity is the baseline's and nothing is matched;
    the model is not even loaded, the set is empty and the record says why."""
    def no_load():
        raise AssertionError("the model must not be loaded")

    scores = _scores({0: 40, 1: 40})
    load = {"path": str(tiny_hf_model("opt")), "revision": None, "dtype": "float32", "device_map": None,
            "trust_remote_code": False}
    ctx = S.SetContext(scores, {"seed": 0, "percents": [10]}, architecture=models.load_config(**load),
                       load_model=no_load, matched={"text_path": tmp_path / "absent.txt", **MATCHED})
    sets = S.build_sets(["wn@10", "ppl_matched@10"], ctx)
    wn, chosen, rec = sets["wn@10"], sets["ppl_matched@10"], ctx.records["ppl_matched@10"]
    reason = "relu(a) = 0 for a < 0, so neg_zero changes nothing"
    assert rec == {"skipped": f"{reason}; no perplexity to match", "operation": "neg_zero", "nonlinearity": "relu"}
    assert chosen.height == 0 and chosen.schema == pl.Schema(S.SET_SCHEMA)
    assert S.selection_table({"wn@10": wn, "ppl_matched@10": chosen}).equals(S.selection_table({"wn@10": wn}))
    assert S.set_entry(chosen, rec) == {"n_neurons": 0, "counts_per_layer": {}, "skipped": rec["skipped"]}
    # handed the loaded model, matched_control itself evaluates nothing there either (the text is absent)
    model, tok = models.load_model(**load)
    direct, again = S.matched_control(model, tok, scores, wn, text_path=tmp_path / "absent.txt", **MATCHED)
    assert again == rec and direct.equals(chosen)
    assert S.identity_record("opt") == {
        "architecture": "opt", "nonlinearity": "relu",
        "identity_operations": {"neg_zero": reason,
                                "sign_flip": "relu(a) >= 0 for every a, so sign_flip changes nothing",
                                "pos_relu": "relu(a) = a for a > 0, so pos_relu changes nothing"},
    }


@pytest.mark.parametrize("arch", ["llama", "gpt_neox", "gpt2"])
def test_search_runs_where_neg_zero_changes_something(arch):
    assert S.ppl_matched_skip(arch) is None
    rec = S.identity_record(arch)
    assert rec["identity_operations"] == {} and rec["nonlinearity"] == architectures.ARCHITECTURES[arch].activation


def test_set_methods_build_the_planned_sets_in_table_order(monkeypatch):
    """build_sets builds every planned set by its method: model-free sets per percent (wn, then its random
    controls), then the model's (ppl_matched, the model loaded once, last); each equals the direct call."""
    from negdiff.conditions import selection_sets

    cfg = {"percents": [0.5, 1, 2], "main_percent": 1, "seed": 7, "random_seeds": 2, "ppl_matched": {"enabled": True}}
    scores = _scores(SIZES)
    loads = []

    def load():
        loads.append(1)
        return "model", "tokenizer"

    def fake_matched(ctx, percent, replicate=0):  # a stand-in search: no model needed
        assert ctx.model() == ctx.model() == ("model", "tokenizer")
        ctx.records[f"ppl_matched@{percent:g}"] = {"m": 3.0}
        return S.select_lowest_wd(ctx.scores, 3.0).with_columns(pl.lit("ppl_matched").alias("method"))

    monkeypatch.setitem(S.SET_METHODS, "ppl_matched", S.SetMethod(fake_matched, runs_model=True))
    ctx = S.SetContext(scores, cfg, architecture="llama", load_model=load)
    sets = S.build_sets(selection_sets(cfg), ctx)
    assert list(sets) == ["wn@0.5", "random@0.5", "random@0.5#1", "wn@1", "random@1", "random@1#1",
                          "wn@2", "random@2", "random@2#1", "ppl_matched@1"]
    assert loads == [1]
    for p in cfg["percents"]:
        wn = S.select_wn(scores, p)
        assert sets[f"wn@{p:g}"].equals(wn)
        for k, name in enumerate([f"random@{p:g}", f"random@{p:g}#1"]):
            assert sets[name].equals(S.select_random(scores, S.counts_per_layer(wn), seed=7 + k))
            assert S.set_entry(sets[name])["seed"] == 7 + k
    assert S.set_entry(sets["wn@1"]) == {"n_neurons": sets["wn@1"].height,
                                         "counts_per_layer": S.counts_per_layer(sets["wn@1"]), "seed": None}
    assert ctx.records == {"ppl_matched@1": {"m": 3.0}}
    with pytest.raises(KeyError, match="wn@5 must be built"):
        S.build_sets(["random@5"], S.SetContext(scores, cfg))
    with pytest.raises(ValueError, match="bad set name"):
        S.build_sets(["top_md@1"], S.SetContext(scores, cfg))
