"""The claims of summary.csv: every claim can hold, can be absent and can be inconclusive.

Each claim is tested on synthetic tables with a planted effect (it holds), a planted null over many
items (absent) and a small effect over few items (inconclusive); the rules that make a claim n/a
(an identity operation, an unmatched control, one checkpoint) are tested on their own.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from negdiff import claims as C
from negdiff.claim_plots import plot_claims

MAIN = 1.0
WN, RND, PM = "neg_zero|wn@1|all", "neg_zero|random@1|all", "neg_zero|ppl_matched@1|all"
MATCHED = {"ppl_matched": {"m": 20.0, "ppl": 10.0, "target_ppl": 10.2, "tolerance": 0.1, "converged": True,
                           "reason": "within tolerance", "n_selected": 40}}
N_BOOT = 400


def pair_tables(drops: dict[tuple[str, str, str], float], n: int, *, seed: int = 0, groups: int = 5,
                base_acc: float = 0.85, steps: dict[str, int] | None = None, seeds: int = 3):
    """Per-pair and overall tables: baseline correct with ``base_acc``; each condition makes a
    correct pair wrong with probability ``drops[(suite, checkpoint, condition)]``, independently per
    pair (and per seed of a random control, whose name is expanded to ``seeds`` replicates).
    Margins are +1 / -1 by correctness plus Gaussian noise (sd 0.5)."""
    rng = np.random.default_rng(seed)
    steps = steps or {"step800": 800}
    prow, mrow = [], []
    base = {}
    for suite, ck, _ in drops:
        if (suite, ck) not in base:
            base[(suite, ck)] = rng.random(n) < base_acc
    for (suite, ck), b in base.items():
        conds = {"baseline": 0.0} | {c: p for (s, k, c), p in drops.items() if (s, k) == (suite, ck)}
        for cond, p in conds.items():
            names = [cond]
            if "random@" in cond:
                names = [cond.replace("random@1", "random@1" + (f"#{k}" if k else "")) for k in range(seeds)]
            for name in names:
                correct = b & ~(rng.random(n) < p)
                margin = np.where(correct, 1.0, -1.0) + rng.normal(0, 0.5, n)
                prow.append(pl.DataFrame({
                    "model": "m1", "checkpoint": ck, "step": steps[ck], "condition": name, "suite": suite,
                    "pair": np.arange(n), "group": [f"g{i % groups}" for i in range(n)], "correct": correct,
                    "margin": margin}))
                set_ = "none" if name == "baseline" else name.split("|")[1]
                mrow.append(dict(model="m1", checkpoint=ck, step=steps[ck], condition=name,
                                 intervention="none" if name == "baseline" else "neg_zero", set=set_,
                                 scope="all" if name == "baseline" else name.split("|")[2], n_neurons=4,
                                 suite=suite, level="overall", group="all", n=n, value=float(correct.mean()),
                                 margin=float(margin.mean())))
    return pl.DataFrame(mrow), pl.concat(prow)


def run(drops, n, *, records=None, **kw):
    metrics, pairs = pair_tables(drops, n, **{k: kw.pop(k) for k in ("seed", "steps", "base_acc", "groups") if k in kw})
    t = C.claims_table(metrics, pairs, main_percent=MAIN, records={"m1": MATCHED} if records is None else records,
                       n_boot=N_BOOT, **kw)
    return {r["claim_id"]: r for r in t.iter_rows(named=True)}


def main_drops(ck="step800", wn=0.0, rnd=0.0, pm=0.0, wn_ns=0.0, pm_ns=0.0):
    d = {}
    for suite in ("blimp", "tse"):
        d.update({(suite, ck, WN): wn, (suite, ck, RND): rnd, (suite, ck, PM): pm})
    d.update({("nonsyntactic", ck, WN): wn_ns, ("nonsyntactic", ck, PM): pm_ns})
    return d


# --------------------------------------------------------------------------- verdict rule


def test_three_way_verdict_rule():
    from negdiff.stats import Interval, verdict

    assert verdict(Interval(2.0, 0.5, 3.5, 100), 1.0)[0] == "holds"
    assert verdict(Interval(0.1, -0.3, 0.6, 100), 1.0)[0] == "absent"
    assert verdict(Interval(-2.0, -3.0, -1.0, 100), 1.0)[0] == "absent"  # the opposite direction
    v, reason = verdict(Interval(0.5, -1.0, 2.0, 100), 1.0, unit="points")
    assert v == "inconclusive" and "half-width 1.5 points" in reason
    # holds takes precedence over absent: a small, real effect reads as such
    assert verdict(Interval(0.3, 0.1, 0.5, 100), 1.0)[0] == "holds"
    assert verdict(None, 1.0)[0] == "n/a"
    with pytest.raises(ValueError):
        verdict(Interval(0, 0, 0, 1), 0.0)


# --------------------------------------------------------------------------- pair claims


def test_pair_claims_hold_with_a_planted_effect():
    got = run(main_drops(wn=0.4, rnd=0.01, pm=0.02, wn_ns=0.02, pm_ns=0.2), 2000)
    for cid in ("C1", "C2", "C3", "C9"):
        r = got[cid]
        assert r["verdict"] == "holds", (cid, r)
        assert r["ci_low"] > 0 and r["ci_low"] <= r["diff"] <= r["ci_high"], r
        assert r["margin_verdict"] == "holds" and r["margin_ci_low"] > 0, r
    c1 = got["C1"]
    assert c1["diff"] == pytest.approx(c1["value"] - c1["control"])
    assert c1["control_sd"] > 0 and "3 seeds" in c1["note"] and c1["n"] == 2000
    # C3 is the interaction of the two gaps; both simple effects are in the note
    c3 = got["C3"]
    assert c3["diff"] == pytest.approx(c3["value"] - c3["control"]) and "ppl_matched nonsyntactic drop" in c3["note"]
    assert "matched: perplexity 10 vs target 10.2" in got["C2"]["note"]


def test_pair_claims_absent_under_a_planted_null_with_many_pairs():
    got = run(main_drops(wn=0.03, rnd=0.03, pm=0.03, wn_ns=0.03, pm_ns=0.03), 12000, groups=20)
    for cid in ("C1", "C2", "C9"):
        r = got[cid]
        assert r["verdict"] == "absent", (cid, r)
        assert r["ci_high"] < 1.0 and "smallest effect of interest" in r["reason"]


def test_pair_claims_inconclusive_with_a_small_effect_and_few_pairs():
    got = run(main_drops(wn=0.08, rnd=0.05, pm=0.05, wn_ns=0.05, pm_ns=0.05), 60)
    for cid in ("C1", "C2", "C9"):
        r = got[cid]
        assert r["verdict"] == "inconclusive", (cid, r)
        assert r["ci_low"] <= 0 < 1.0 <= r["ci_high"] and "half-width" in r["reason"]


def test_interaction_not_simple_effects_decides_c3():
    # WNs hurt syntax more than non-syntax, but the matched set does so just as much: no dissociation
    got = run(main_drops(wn=0.1, pm=0.1, wn_ns=0.01, pm_ns=0.01), 16000, groups=10)
    c3 = got["C3"]
    assert c3["value"] > 5 and c3["control"] > 5 and c3["verdict"] == "absent", c3


def test_unmatched_control_and_identity_operation_make_claims_na():
    drops = main_drops(wn=0.4, rnd=0.01, pm=0.02, pm_ns=0.2)
    bad = {"ppl_matched": dict(MATCHED["ppl_matched"], converged=False, ppl=14.0, reason="ppl at hi is below the target")}
    got = run(drops, 400, records={"m1": bad})
    for cid in ("C2", "C3", "C4"):
        assert got[cid]["verdict"] == "n/a" and got[cid]["reason"].startswith("control not matched"), got[cid]
        assert got[cid]["ci_low"] is None
    assert got["C1"]["verdict"] == "holds"
    relu = {"identity_operations": {"neg_zero": "relu(a) = 0 for a < 0, so neg_zero changes nothing"},
            "ppl_matched": {"skipped": "neg_zero is the identity"}}
    got = run(drops, 400, records={"m1": relu})
    for cid in ("C1", "C2", "C3", "C4", "C5a", "C5b", "C5c", "C6", "C9"):
        assert got[cid]["verdict"] == "n/a" and "relu(a) = 0" in got[cid]["reason"], got[cid]
    assert got["C1"]["diff"] is None


def test_seed_level_bootstrap_widens_the_interval():
    """Pairs identical across conditions except through the random seeds: only the seeds vary."""
    n = 400
    metrics, pairs = pair_tables(main_drops(wn=0.1, rnd=0.1), n, seed=3)
    t = C.claims_table(metrics, pairs, main_percent=MAIN, records={"m1": MATCHED}, n_boot=N_BOOT)
    r = t.filter(pl.col("claim_id") == "C1").row(0, named=True)
    # same pairs with the random control's seeds collapsed to one (every seed = seed 0)
    one = pairs.filter(~pl.col("condition").str.contains("random@1#"))
    extra = [one.filter(pl.col("condition") == RND).with_columns(pl.lit(f"neg_zero|random@1#{k}|all").alias("condition"))
             for k in (1, 2)]
    same = C.claims_table(metrics, pl.concat([one, *extra]), main_percent=MAIN, records={"m1": MATCHED}, n_boot=N_BOOT)
    s = same.filter(pl.col("claim_id") == "C1").row(0, named=True)
    assert (r["ci_high"] - r["ci_low"]) > (s["ci_high"] - s["ci_low"]) * 0.9  # seeds add chance, never remove it


# --------------------------------------------------------------------------- layer groups and training


def layer_drops(single, cum, n_groups=3, ck="step800"):
    d = main_drops(ck=ck, wn=cum[-1])
    for g in range(n_groups):
        d[("blimp", ck, f"neg_zero|wn@1|single:{g}")] = single[g]
    for g in range(n_groups - 1):
        d[("blimp", ck, f"neg_zero|wn@1|cumulative:{g}")] = cum[g]
    return d


def test_layer_claims_three_parts():
    got = run(layer_drops([0.3, 0.05, 0.02], [0.3, 0.4, 0.5]), 3000)
    assert [got[c]["verdict"] for c in ("C5a", "C5b", "C5c")] == ["holds"] * 3
    # fitted rise of the cumulative drop from group 0 to group 2 ~ 100 * (0.5 - 0.3) * base accuracy
    assert got["C5b"]["diff"] == pytest.approx(100 * 0.2 * 0.85, abs=3)
    null = run(layer_drops([0.02, 0.02, 0.02], [0.02, 0.02, 0.02]), 12000, groups=20)
    assert null["C5b"]["verdict"] == "absent" and null["C5a"]["verdict"] == "absent", (null["C5a"], null["C5b"])
    small = run(layer_drops([0.06, 0.05, 0.05], [0.06, 0.07, 0.08]), 60)
    assert small["C5b"]["verdict"] == "inconclusive"
    one = run(main_drops(wn=0.3), 200)
    assert one["C5a"]["verdict"] == "n/a" and "layer groups" in one["C5a"]["reason"]
    assert one["C6"]["verdict"] == "n/a" and one["C6"]["reason"] == "one checkpoint: no training dynamics"


def training_drops(gaps, base_ok=True):
    d = {}
    for ck, g in gaps.items():
        d[("blimp", ck, WN)] = g
        d[("blimp", ck, RND)] = 0.0
    return d


STEPS = {"step0": 0, "step100": 100, "step400": 400, "step800": 800}


def test_training_claim_over_checkpoints_above_chance():
    gaps = {"step100": 0.05, "step400": 0.2, "step800": 0.4}
    got = run(training_drops(gaps), 3000, steps=STEPS)
    c6 = got["C6"]
    assert c6["verdict"] == "holds" and "step100" in c6["note"], c6
    flat = run(training_drops({"step100": 0.1, "step400": 0.1, "step800": 0.1}), 12000, steps=STEPS, groups=20)
    assert flat["C6"]["verdict"] == "absent", flat["C6"]
    small = run(training_drops({"step100": 0.05, "step800": 0.08}), 60, steps=STEPS)
    assert small["C6"]["verdict"] == "inconclusive", small["C6"]
    # a checkpoint at chance is left out, and with one left the claim is n/a
    metrics, pairs = pair_tables(training_drops({"step0": 0.0, "step800": 0.3}), 2000, steps=STEPS)
    chance = pairs.with_columns(
        pl.when(pl.col("checkpoint") == "step0").then(pl.col("pair") % 2 == 0).otherwise(pl.col("correct")).alias("correct"))
    t = C.claims_table(metrics, chance, main_percent=MAIN, records={"m1": MATCHED}, n_boot=N_BOOT)
    c6 = t.filter(pl.col("claim_id") == "C6").row(0, named=True)
    assert c6["verdict"] == "n/a" and "above chance" in c6["reason"], c6


# --------------------------------------------------------------------------- surprisal, cohort, differentiation


def surprisal_table(effect: float, n_tokens: int, seed: int = 0, noise: float = 0.3):
    """WN excess surprisal is larger on function POS by ``effect`` nats than under the matched set."""
    rng = np.random.default_rng(seed)
    tags = np.array(["DET", "NOUN", "ADP", "VERB", "PUNCT", "ADJ", "X"])
    pos = tags[rng.integers(0, len(tags), n_tokens)]
    func = np.isin(pos, ["DET", "ADP", "PUNCT"])
    base = rng.gamma(2.0, 2.0, n_tokens)
    rows = [pl.DataFrame({"condition": "baseline", "token": np.arange(n_tokens), "pos": pos, "surprisal": base})]
    for cond, extra in ((WN, effect), (PM, 0.0)):
        s = base + 0.2 + extra * func + rng.normal(0, noise, n_tokens)
        rows.append(pl.DataFrame({"condition": cond, "token": np.arange(n_tokens), "pos": pos, "surprisal": s}))
    return pl.concat(rows).with_columns(pl.lit("m1").alias("model"), pl.lit("step800").alias("checkpoint"),
                                        pl.lit(800).alias("step"), pl.col("surprisal").cast(pl.Float32))


def run_with(**tables):
    metrics, pairs = pair_tables(main_drops(wn=0.1), 100)
    t = C.claims_table(metrics, pairs, main_percent=MAIN, records={"m1": MATCHED}, n_boot=N_BOOT, **tables)
    return {r["claim_id"]: r for r in t.iter_rows(named=True)}


def test_pos_difference_in_differences():
    s = surprisal_table(0.5, 20000)
    got = run_with(surprisal=s, surprisal_block_tokens=64)["C4"]
    assert got["verdict"] == "holds" and got["diff"] == pytest.approx(0.5, abs=0.05), got
    # an independent reference for the estimate: token-pooled means by hand
    j = s.filter(pl.col("condition") != "baseline").join(
        s.filter(pl.col("condition") == "baseline").select("token", pl.col("surprisal").alias("b")), on="token")
    ex = j.with_columns((pl.col("surprisal").cast(pl.Float64) - pl.col("b").cast(pl.Float64)).alias("e"))

    def contrast(cond):
        e = ex.filter(pl.col("condition") == cond)
        f = e.filter(pl.col("pos").is_in(["DET", "ADP", "AUX", "PART", "PUNCT", "PRON", "SCONJ", "CCONJ"]))["e"].mean()
        c = e.filter(pl.col("pos").is_in(["NOUN", "VERB", "ADJ", "ADV", "PROPN"]))["e"].mean()
        return f - c

    assert got["diff"] == pytest.approx(contrast(WN) - contrast(PM), abs=1e-9)
    assert run_with(surprisal=surprisal_table(0.0, 40000, noise=0.05), surprisal_block_tokens=64)["C4"]["verdict"] == "absent"
    assert run_with(surprisal=surprisal_table(0.05, 300, seed=1, noise=1.0), surprisal_block_tokens=32)["C4"]["verdict"] == "inconclusive"


def cohort_table(wn_growth: float, n_per_layer: int, layers: int = 4, noise: float = 0.05, seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = []
    for cohort, growth, k in (("wn@1", wn_growth, n_per_layer), ("random@1", 0.0, n_per_layer),
                              ("random@1#1", 0.0, n_per_layer), ("layer", 0.0, 4 * n_per_layer)):
        layer = np.repeat(np.arange(layers), k)
        neuron = np.tile(np.arange(k), layers)
        w0 = rng.gamma(2.0, 0.02, len(layer))
        for ck, step, g in (("step0", 0, 0.0), ("step800", 800, 1.0)):
            wd = w0 + 0.05 * g + growth * g + (rng.normal(0, noise, len(layer)) if g else 0.0)
            rows.append(pl.DataFrame({"model": "m1", "checkpoint": ck, "step": step, "cohort": cohort, "layer": layer,
                                      "neuron": neuron, "wd": wd, "wd_neg": wd / 2, "wd_pos": wd / 2,
                                      "frac_negative": 0.5}))
    return pl.concat(rows)


def test_cohort_growth_against_a_random_cohort():
    metrics, pairs = pair_tables({**main_drops(wn=0.1), **training_drops({"step0": 0.0})}, 100,
                                 steps={"step0": 0, "step800": 800})

    def c7(table):
        t = C.claims_table(metrics, pairs, main_percent=MAIN, records={"m1": MATCHED}, n_boot=N_BOOT, cohort_wd=table)
        return t.filter(pl.col("claim_id") == "C7").row(0, named=True)

    got = c7(cohort_table(0.3, 20))
    assert got["verdict"] == "holds" and got["diff"] == pytest.approx(0.3, abs=0.03) and "layer sample" in got["note"]
    # everything grows by the same 0.05: the growth is not the cohort's own
    assert c7(cohort_table(0.0, 400)) ["verdict"] == "absent"
    assert c7(cohort_table(0.02, 3, noise=0.05))["verdict"] == "inconclusive"
    assert c7(cohort_table(0.3, 20).filter(pl.col("checkpoint") == "step800"))["verdict"] == "n/a"


def differentiation_table(effect: float, layers: int, per_layer: int, noise: float = 0.15, seed: int = 0):
    rng = np.random.default_rng(seed)
    layer = np.repeat(np.arange(layers), per_layer).astype(np.int32)
    neuron = np.tile(np.arange(per_layer), layers).astype(np.int32)
    wd = rng.random(len(layer))
    top = np.zeros(len(layer), bool)
    for l in range(layers):  # the top 1% (at least one) per layer by wd
        idx = np.flatnonzero(layer == l)
        k = max(1, round(per_layer / 100))
        top[idx[np.argsort(-wd[idx])[:k]]] = True
    share = np.clip(0.5 + effect * top + rng.normal(0, noise, len(layer)), 0, 1)
    n = np.full(len(layer), 32, np.int32)
    return pl.DataFrame({"layer": layer, "neuron": neuron, "wd": wd, "top_share_neg": share, "random_share_neg": 0.5,
                         "n_top": n, "top_both_neg": n // 2, "top_mixed": n // 4, "top_both_pos": n - n // 2 - n // 4,
                         "top_function_share": 0.3})


def test_negative_differentiation_wn_vs_other_neurons():
    def c8(t):
        return run_with(differentiation={"m1": t})["C8"]

    got = c8(differentiation_table(0.4, 6, 300))
    assert got["verdict"] == "holds" and got["diff"] == pytest.approx(0.4, abs=0.08), got
    assert "both negative" in got["note"] and "function-word share" in got["note"]
    assert c8(differentiation_table(0.0, 20, 1000, noise=0.05))["verdict"] == "absent"
    assert c8(differentiation_table(0.05, 2, 100))["verdict"] == "inconclusive"


# --------------------------------------------------------------------------- table, plot, structure


def test_every_row_has_a_verdict_and_an_interval_when_decided(tmp_path):
    got = C.claims_table(*pair_tables(main_drops(wn=0.3, pm_ns=0.2), 300), main_percent=MAIN,
                         records={"m1": MATCHED}, n_boot=N_BOOT)
    assert set(got["claim_id"]) == set(C.CLAIMS) and dict(got.schema) == C.CLAIM_SCHEMA
    assert got["verdict"].is_in(["holds", "absent", "inconclusive", "n/a"]).all()
    assert got["reason"].is_not_null().all()
    decided = got.filter(pl.col("verdict").is_in(["holds", "absent"]))
    assert decided.height and decided["ci_low"].is_not_null().all() and decided["ci_high"].is_not_null().all()
    out = tmp_path / "summary.csv"
    C.write_summary_csv(out, got)
    back = pl.read_csv(out)
    rows = plot_claims(tmp_path / "claims.pdf", back, data_label="synthetic", margin_smallest=0.01)
    assert (tmp_path / "claims.pdf").read_bytes().startswith(b"%PDF")
    assert rows.height == got.height + got["margin_verdict"].is_not_null().sum()


def test_summary_does_not_import_matplotlib():
    code = "import sys, negdiff.claims; assert 'matplotlib' not in sys.modules, 'matplotlib imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_claim_modules_have_no_function_over_80_lines():
    root = Path(C.__file__).parent
    for name in ("claims", "claim_registry", "claims_ablation", "claims_neurons", "claim_data", "claim_tables",
                 "claim_plots", "stats"):
        tree = ast.parse((root / f"{name}.py").read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                assert length <= 80, f"{name}.{node.name}: {length} lines"


def test_schema_defaults_are_the_registry_defaults():
    import yaml

    schema = yaml.safe_load((Path(C.__file__).parents[1] / "schemas" / "config.schema.yaml").read_text())
    props = schema["properties"]["claims"]["properties"]["smallest_effect"]["properties"]
    assert {k: v["default"] for k, v in props.items()} == C.DEFAULT_SMALLEST
