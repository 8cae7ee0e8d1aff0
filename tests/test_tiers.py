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
    main, nested = tier_suites({"blimp": pairs, "tse": pairs},
                               {"pairs_per_paradigm": {"blimp": 20, "tse": "all"}, "pairs_seed": 3,
                                "secondary_pairs_per_paradigm": {"blimp": 6, "tse": 8}})
    assert main["blimp"] == sample_pairs(pairs, 20, seed=3)  # the main sample is what it was without tiers
    for name, size in (("blimp", 6), ("tse", 8)):
        assert all(p in main[name] for p in nested[name])
        counts = pl.DataFrame(nested[name])["UID"].value_counts()
        assert sorted(counts["count"].to_list()) == [size] * 3
    cases = {p["case"] for p in nested["tse"]}
    assert len(cases) > 1, "the tier follows the draw, not the file order"
    # a larger tier keeps the smaller one's pairs (the same draw, further along)
    more = sample_pairs(pairs, 20, seed=3, first=12)
    assert all(p in more for p in nested["blimp"])
    one = tier_suites({"blimp": pairs}, {"pairs_per_paradigm": {"blimp": 20}, "pairs_seed": 3,
                                        "secondary_pairs_per_paradigm": {"blimp": None}})
    assert one[1] is None  # no secondary size: one tier, as without tiers
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
