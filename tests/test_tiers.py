"""Sample sizes per tier of condition (negdiff/tiers.py): the decisive conditions on the whole pair sample,
the others on a nested tier; claims across tiers on the pairs they share."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from negdiff import claims as C
from negdiff.claim_data import PairData
from negdiff.conditions import final_conditions
from negdiff.stats import Resampler
from negdiff.suites import sample_pairs
from negdiff.tiers import decisive, split_tiers, tier_suites
from test_claims import MAIN, MATCHED, N_BOOT, layer_drops, pair_tables

SELECTION = {"percents": [0.5, 1, 2], "main_percent": 1, "seed": 0, "random_seeds": 3, "random_seeds_main": 5,
             "ppl_matched": {"enabled": True}}
EVALUATION = {"operations": ["neg_zero", "full", "pos_zero"], "layer_group_size": 2, "layerwise_controls": True}


def test_decisive_conditions_are_the_main_claims_own():
    conds = final_conditions(SELECTION, EVALUATION, 6)
    main, rest = split_tiers(conds, SELECTION["main_percent"])
    assert [c.name for c in main] == (["baseline", "neg_zero|wn@1|all"]
                                      + ["neg_zero|random@1|all"] + [f"neg_zero|random@1#{k}|all" for k in range(1, 5)]
                                      + ["neg_zero|ppl_matched@1|all"])
    assert "neg_zero|wn@0.5|all" in {c.name for c in rest} and "full|wn@1|all" in {c.name for c in rest}
    assert all(c.scope != "all" or c.intervention != "neg_zero" or "@1" not in c.set for c in rest)
    assert len(main) + len(rest) == len(conds) and not any(decisive(c, 1) for c in rest)


def _pairs(groups=("a", "b", "c"), per=40):
    # file order runs through the cases, as TSE's files do: a nested tier must not be the first cases
    return [{"UID": g, "case": f"case{i // 10}", "sentence_good": f"{g} {i}", "sentence_bad": "x"}
            for g in groups for i in range(per)]


def test_nested_tier_is_a_uniform_subsample_of_the_main_one():
    pairs = _pairs()
    tiers = tier_suites({"blimp": pairs, "tse": pairs},
                        {"pairs_per_paradigm": {"blimp": 20, "tse": "all"}, "pairs_seed": 3,
                         "secondary_pairs_per_paradigm": {"blimp": 6, "tse": 8}})
    main, nested = tiers.main, tiers.nested
    assert main["blimp"] == sample_pairs(pairs, 20, seed=3)  # the main sample is what it was without tiers
    for name, size in (("blimp", 6), ("tse", 8)):
        assert all(p in main[name] for p in nested[name])
        counts = pl.DataFrame(nested[name])["UID"].value_counts()
        assert sorted(counts["count"].to_list()) == [size] * 3
        assert [main[name][k] for k in tiers.positions[name]] == nested[name]  # positions in the main sample
    cases = {p["case"] for p in nested["tse"]}
    assert len(cases) > 1, "the tier follows the draw, not the file order"
    # a larger tier keeps the smaller one's pairs (the same draw, further along)
    more = sample_pairs(pairs, 20, seed=3, first=12)
    assert all(p in more for p in nested["blimp"])
    one = tier_suites({"blimp": pairs}, {"pairs_per_paradigm": {"blimp": 20}, "pairs_seed": 3,
                                        "secondary_pairs_per_paradigm": {"blimp": None}})
    assert one.nested is None and one.positions is None  # no secondary size: one tier, as without tiers
    with pytest.raises(ValueError, match="nested tier"):
        sample_pairs(pairs, 20, first=0)


def _tiered(metrics, pairs, keep):
    """The tables with every non-decisive condition's rows cut to the pairs ``keep(pair)``."""
    c = pl.col("condition")
    tiered = pairs.with_columns(((c == "baseline") | (c.str.ends_with("|all") & c.str.contains("@1", literal=True))).alias("main"))
    return tiered.filter(pl.col("main") | keep(pl.col("pair"))).drop("main")


def run_tiered(drops, n, keep, **kw):
    metrics, pairs = pair_tables(drops, n, **kw)
    t = C.claims_table(metrics, _tiered(metrics, pairs, keep), main_percent=MAIN, records={"m1": MATCHED}, n_boot=N_BOOT)
    return {r["claim_id"]: r for r in t.iter_rows(named=True)}, pairs


def test_claims_across_tiers_hold_absent_and_inconclusive():
    keep = lambda p: p % 5 < 2  # noqa: E731 - 40% of each group (groups are pair % groups)
    got, _ = run_tiered(layer_drops([0.3, 0.05, 0.02], [0.3, 0.4, 0.5]), 3000, keep)
    assert [got[c]["verdict"] for c in ("C5a", "C5b", "C5c")] == ["holds"] * 3
    assert got["C5c"]["n"] == 1200 and got["C1"]["n"] == 3000  # C5 on the shared pairs; C1 (main tier) on all
    null, _ = run_tiered(layer_drops([0.02, 0.02, 0.02], [0.02, 0.02, 0.02]), 30000, keep, groups=20)
    assert null["C5a"]["verdict"] == "absent" and null["C5b"]["verdict"] == "absent", (null["C5a"], null["C5b"])
    small, _ = run_tiered(layer_drops([0.06, 0.05, 0.05], [0.06, 0.07, 0.08]), 150, keep)
    assert small["C5b"]["verdict"] == "inconclusive"


def test_a_claim_across_tiers_is_computed_on_the_shared_pairs():
    """C5c compares the all-groups condition (main tier) with single groups (nested tier): its estimate is
    the one every condition would give restricted to the nested tier's pairs."""
    keep = lambda p: p % 5 < 2  # noqa: E731
    got, pairs = run_tiered(layer_drops([0.3, 0.05, 0.02], [0.3, 0.4, 0.5]), 3000, keep)
    metrics, _ = pair_tables(layer_drops([0.3, 0.05, 0.02], [0.3, 0.4, 0.5]), 3000)
    only = C.claims_table(metrics, pairs.filter(keep(pl.col("pair"))), main_percent=MAIN, records={"m1": MATCHED},
                          n_boot=N_BOOT)
    ref = {r["claim_id"]: r for r in only.iter_rows(named=True)}
    for cid in ("C5a", "C5b", "C5c"):
        assert got[cid]["diff"] == pytest.approx(ref[cid]["diff"], abs=1e-9)
        assert got[cid]["margin_diff"] == pytest.approx(ref[cid]["margin_diff"], abs=1e-9)


def test_a_nested_condition_outside_common_is_refused():
    _, pairs = pair_tables(layer_drops([0.3, 0.05, 0.02], [0.3, 0.4, 0.5]), 100)
    pd = PairData.from_table(_tiered(None, pairs, lambda p: p < 30), "m1")
    single = "neg_zero|wn@1|single:0"
    assert pd.seen("blimp", "step800", single).sum() == 30 and pd.seen("blimp", "step800", "baseline") is None
    d = Resampler(pd.strata, pd.seeds, n_boot=10).identity()
    with pytest.raises(ValueError, match="nested tier"):
        pd.mean(d, "correct", "blimp", "step800", single)
    with pd.common([("blimp", "step800", single), ("blimp", "step800", "baseline")]):
        assert pd.n_pairs("blimp") == 30
        base = pd.mean(d, "correct", "blimp", "step800", "baseline")
    full = pairs.filter((pl.col("condition") == "baseline") & (pl.col("suite") == "blimp") & (pl.col("pair") < 30))
    assert float(np.asarray(base).reshape(-1)[0]) == pytest.approx(full["correct"].mean())


def _word_pairs(per=8, groups=("u1", "u2", "u3")):
    words = "the cat sat on a mat dog ran to park she reads books every night birds sang in tall trees".split()
    rng = np.random.default_rng(0)
    out = []
    for g in groups:
        for _ in range(per):
            good = list(rng.choice(words, 6, replace=False))
            bad = good[:2] + [good[3], good[2]] + good[4:]
            out.append({"UID": g, "linguistics_term": f"t{g}", "sentence_good": " ".join(good),
                        "sentence_bad": " ".join(bad)})
    return out


@pytest.fixture(scope="module")
def tiny_llama(tiny_hf_model):
    from negdiff import models

    return models.load_model(tiny_hf_model("llama"))


def test_evaluate_tiers_numbers_nested_pairs_as_in_the_main_sample(tiny_llama):
    """End to end: a nested condition's pair rows carry the main sample's pair numbers (the same pair,
    the same number), its scores are those of the one-tier run at those pairs, and its metric rows carry
    the baseline's value on its own pairs (paired_baseline)."""
    from negdiff import models
    from negdiff.conditions import BASELINE, condition
    from negdiff.conditions import PAIRED_BASELINE
    from negdiff.tiers import evaluate_tiers
    from test_sweep import _selection

    model, tok = tiny_llama
    L = models.n_layers(model)
    conds = [BASELINE, condition("neg_zero", "wn@1", "all", L, 1), condition("neg_zero", "wn@1", "single:0", L, 1),
             condition("neg_zero", "random@1", "single:1", L, 1)]
    sel = _selection(model)
    loaded = {"blimp": _word_pairs()}
    ev = {"pairs_per_paradigm": {"blimp": 6}, "pairs_seed": 4, "secondary_pairs_per_paradigm": {"blimp": 3}}
    tiers = tier_suites(loaded, ev)
    assert [len(v) for v in tiers.nested.values()] == [9] and [len(v) for v in tiers.main.values()] == [18]
    assert [tiers.main["blimp"][k] for k in tiers.positions["blimp"]] == tiers.nested["blimp"]
    assert list(tiers.positions["blimp"]) != list(range(9))  # a real renumbering, not the identity
    kw = dict(main_percent=1, prepend_bos=True, batch_size=4)
    got = evaluate_tiers(model, tok, tiers, conds, sel, **kw)
    one = evaluate_tiers(model, tok, tier_suites(loaded, {**ev, "secondary_pairs_per_paradigm": None}), conds, sel, **kw)
    key = ["condition", "pair"]
    g, o = got["pairs"].sort(key), one["pairs"].sort(key)
    for cond in ("neg_zero|wn@1|single:0", "neg_zero|random@1|single:1"):
        gc = g.filter(pl.col("condition") == cond)
        assert gc["pair"].to_list() == sorted(tiers.positions["blimp"].tolist())
        oc = o.filter((pl.col("condition") == cond) & pl.col("pair").is_in(gc["pair"].to_list()))
        assert gc["correct"].to_list() == oc["correct"].to_list()
        np.testing.assert_allclose(gc["margin"].to_numpy(), oc["margin"].to_numpy(), atol=1e-4)
        assert gc["group"].to_list() == oc["group"].to_list()
    # the decisive conditions are the one-tier run's, on every pair; the baseline's rows appear once
    for cond in ("baseline", "neg_zero|wn@1|all"):
        assert g.filter(pl.col("condition") == cond)["pair"].to_list() == list(range(18))
    # paired_baseline: the baseline's accuracy on the nested pairs (null on the main tier's rows)
    m = got["metrics"]
    assert m.filter(pl.col("condition") == "baseline").height == one["metrics"].filter(pl.col("condition") == "baseline").height
    base = o.filter((pl.col("condition") == "baseline") & pl.col("pair").is_in(tiers.positions["blimp"].tolist()))
    row = m.filter((pl.col("condition") == "neg_zero|wn@1|single:0") & (pl.col("level") == "overall"))
    assert row["n"][0] == 9
    assert row[PAIRED_BASELINE][0] == pytest.approx(base["correct"].cast(pl.Float64).mean())
    assert m.filter(pl.col("condition").is_in(["baseline", "neg_zero|wn@1|all"]))[PAIRED_BASELINE].null_count() == \
        m.filter(pl.col("condition").is_in(["baseline", "neg_zero|wn@1|all"])).height
    assert PAIRED_BASELINE not in one["metrics"].columns  # one tier: the table as before
    # PairData aligns them: the nested condition compared inside common() on the shared pairs
    pd = PairData.from_table(got["pairs"].with_columns(pl.lit("m").alias("model"), pl.lit("final").alias("checkpoint")), "m")
    assert pd.n_pairs("blimp") == 18 and int(pd.seen("blimp", "final", "neg_zero|wn@1|single:0").sum()) == 9


def test_figure_drops_of_a_nested_condition_use_its_paired_baseline():
    """vs_baseline / drop_points / ablation_table compare a nested-tier row with the baseline on its own
    pairs (paired_baseline), a main-tier row with the baseline row."""
    from negdiff import claim_tables as T
    from negdiff.conditions import PAIRED_BASELINE

    rows = [("baseline", "none", "none", "all", 0.80, None, 100),
            ("neg_zero|wn@1|all", "neg_zero", "wn@1", "all", 0.70, None, 100),
            ("neg_zero|wn@2|all", "neg_zero", "wn@2", "all", 0.60, 0.90, 20)]
    metrics = pl.DataFrame(
        [dict(model="m", checkpoint="final", step=1, condition=c, intervention=i, set=s, scope=sc, n_neurons=5,
              suite="blimp", level="overall", group="all", n=n, value=v, margin=0.0, **{PAIRED_BASELINE: pb})
         for c, i, s, sc, v, pb, n in rows])
    vb = {r["condition"]: r for r in T.vs_baseline(metrics, suite="blimp").iter_rows(named=True)}
    assert vb["neg_zero|wn@1|all"]["error_increase"] == pytest.approx(10.0)
    assert vb["neg_zero|wn@2|all"]["error_increase"] == pytest.approx(30.0)  # 0.90 - 0.60, not 0.80 - 0.60
    assert T.drop_points(metrics, "m", "final", "neg_zero|wn@2|all", "blimp") == pytest.approx(30.0)
    assert T.drop_points(metrics, "m", "final", "neg_zero|wn@1|all", "blimp") == pytest.approx(10.0)
    ab = {r["set"]: r for r in T.ablation_table(metrics, main_percent=1).iter_rows(named=True)}
    assert ab["wn@1"]["shown"] == pytest.approx(0.70)
    assert ab["wn@2"]["shown"] == pytest.approx(0.80 - 0.30)  # the whole sample's baseline minus its paired drop
    one = metrics.drop(PAIRED_BASELINE)
    assert T.drop_points(one, "m", "final", "neg_zero|wn@2|all", "blimp") == pytest.approx(20.0)
