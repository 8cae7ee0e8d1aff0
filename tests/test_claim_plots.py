"""Tests for the claim figures and their tables (negdiff.claim_plots, negdiff.claim_tables): synthetic tables with planted effects."""

from __future__ import annotations

import math

import numpy as np

import polars as pl
import pytest

from negdiff import claim_plots as C

MAIN = 1.0
PERCENTS = (0.5, 1.0, 2.0, 5.0)
N_GROUPS = 3
SINGLE = (0.2, 0.3, 0.5)  # share of the wn effect from each layer group alone
TERMS = {"anaphor": 0.3, "island": 0.2, "agreement": 0.1}  # wn drop (fraction) per BLiMP term; mean 0.2
TEMPLATES = {"simple": 0.2, "obj_rel": 0.1}  # wn drop per TSE template; mean 0.15
BASE = {"blimp": 0.8, "tse": 0.9, "nonsyntactic": 0.7}
N_PAIRS = 50
# control drops (fraction) per suite, at every group
CONTROL = {
    "random": {"blimp": 0.01, "tse": 0.02, "nonsyntactic": 0.01},
    "ppl_matched": {"blimp": 0.02, "tse": 0.03, "nonsyntactic": 0.10},
}
WN_NONSYN = 0.05
CHECKPOINTS = (("step0", 0), ("step100", 100), ("step800", 800))
GROWTH = {0: 0.0, 100: 0.25, 800: 1.0}

SCHEMA = {
    "model": pl.String, "checkpoint": pl.String, "step": pl.Int64, "condition": pl.String,
    "intervention": pl.String, "set": pl.String, "scope": pl.String, "n_neurons": pl.Int64,
    "suite": pl.String, "level": pl.String, "group": pl.String, "n": pl.Int64,
    "value": pl.Float64, "margin": pl.Float64,
}


def _groups(suite):
    if suite == "blimp":
        return "linguistics_term", TERMS
    if suite == "tse":
        return "template", TEMPLATES
    return None, {"all": 1.0}


def _drop(method, pct, scope, suite, group_eff, growth):
    """Planted accuracy drop (fraction) for one group."""
    if method == "wn":
        if suite == "nonsyntactic":
            d = WN_NONSYN
        else:
            d = group_eff
        d *= 2 * pct / (pct + 1) * growth
        kind, g = (scope.split(":") + [None])[:2]
        if kind == "single":
            d *= SINGLE[int(g)]
        elif kind == "cumulative":
            d *= sum(SINGLE[: int(g) + 1])
        return d
    return CONTROL[method][suite] * (1.0 if scope == "all" else 0.5) * growth


def make_metrics(*, reverse=False, ppl_matched=True, model="m1", growth=GROWTH):
    """Synthetic metrics; ``reverse`` gives the random set the WN effect and vice versa."""
    rows = []

    def add(ck, step, cond, inter, set_, scope, nn, suite, level, group, n, value):
        rows.append(dict(model=model, checkpoint=ck, step=step, condition=cond, intervention=inter, set=set_,
                         scope=scope, n_neurons=nn, suite=suite, level=level, group=group, n=n, value=value, margin=0.0))

    def emit(ck, step, inter, set_, scope):
        cond = "baseline" if set_ == "none" else f"{inter}|{set_}|{scope}"
        method, pct = (None, None) if set_ == "none" else set_.split("@")
        pct = None if pct is None else float(pct)
        eff_method = {"wn": "random", "random": "wn"}.get(method, method) if reverse else method
        nn = 0 if set_ == "none" else int(round(4 * (pct or 1)))
        gr = growth[step]
        for suite in ("blimp", "tse", "nonsyntactic"):
            level, groups = _groups(suite)
            vals = []
            for g, eff in groups.items():
                d = 0.0 if method is None else _drop(eff_method, pct, scope, suite, eff, gr)
                if inter != "neg_zero" and method is not None:
                    d = 0.4  # other operations: big, but must never be picked up
                v = BASE[suite] - d
                vals.append(v)
                if level:
                    add(ck, step, cond, inter, set_, scope, nn, suite, level, g, N_PAIRS, v)
                    if suite == "blimp":  # a paradigm row that must not leak into term-level results
                        add(ck, step, cond, inter, set_, scope, nn, suite, "paradigm", f"{g}_uid", N_PAIRS, 0.0)
            add(ck, step, cond, inter, set_, scope, nn, suite, "overall", "all", N_PAIRS * len(vals), sum(vals) / len(vals))
        ppl = 20.0
        if method == "wn":
            ppl += 2 * pct
        elif method == "random":
            ppl += 0.5 * pct
        elif method == "ppl_matched":
            ppl = 22.0
        add(ck, step, cond, inter, set_, scope, nn, "ppl", "overall", "all", 10000, ppl)

    for ck, step in CHECKPOINTS:
        emit(ck, step, "none", "none", "all")
        if ck != "step800":
            emit(ck, step, "neg_zero", "wn@1", "all")
            emit(ck, step, "neg_zero", "random@1", "all")
            continue
        for p in PERCENTS:
            emit(ck, step, "neg_zero", f"wn@{p:g}", "all")
            emit(ck, step, "neg_zero", f"random@{p:g}", "all")
        if ppl_matched:
            emit(ck, step, "neg_zero", "ppl_matched@1", "all")
        emit(ck, step, "pos_zero", "wn@1", "all")
        for g in range(N_GROUPS):
            emit(ck, step, "neg_zero", "wn@1", f"single:{g}")
            emit(ck, step, "neg_zero", "random@1", f"single:{g}")
        for g in range(N_GROUPS - 1):
            emit(ck, step, "neg_zero", "wn@1", f"cumulative:{g}")
    return pl.DataFrame(rows, schema=SCHEMA)


# surprisal: (token, pos, baseline, wn, random, ppl_matched)
TOKENS = [
    (0, "DET", 2.0, 3.0, 2.1, 2.0),
    (1, "DET", 1.0, 3.0, 1.0, 1.5),
    (2, "ADP", 2.5, 3.5, 2.5, 2.5),
    (3, "NOUN", 5.0, 5.2, 5.1, 6.0),
    (4, "NOUN", 6.0, 6.0, 6.0, 6.5),
    (5, "VERB", 4.0, 4.3, 4.0, 4.5),
    (6, None, 3.0, 9.0, 3.0, 3.0),
]


def make_surprisal(*, model="m1", reverse=False):
    rows = []
    for tok, pos, b, wn, rnd, pm in TOKENS:
        if reverse:  # wn hurts content words, not function words
            wn = b + (0.1 if pos in C.FUNCTION_POS else 2.0)
        for cond, s in (("baseline", b), ("neg_zero|wn@1|all", wn), ("neg_zero|random@1|all", rnd),
                        ("neg_zero|ppl_matched@1|all", pm), ("pos_zero|wn@1|all", 99.0)):
            rows.append(dict(model=model, checkpoint="step800", condition=cond, token=tok, pos=pos, surprisal=s))
    # rows in another order than the baseline, so the join (not row order) must pair tokens
    return pl.DataFrame(rows, schema={"model": pl.String, "checkpoint": pl.String, "condition": pl.String,
                                      "token": pl.Int64, "pos": pl.String, "surprisal": pl.Float32}).reverse()


def make_cohort(*, model="m1", wd_by_step=None):
    wd_by_step = wd_by_step or {0: 0.5, 100: 1.0, 800: 2.0}
    rows = []
    for ck, step in CHECKPOINTS:
        for layer in range(2):
            for k, neuron in enumerate((3, 7)):
                w = wd_by_step[step] + (0.1 if k else -0.1)
                rows.append(dict(model=model, checkpoint=ck, step=step, layer=layer, neuron=neuron, wd=w,
                                 wd_neg=0.8 * w, wd_pos=0.2 * w, frac_negative=0.6))
    return pl.DataFrame(rows)


def make_scores(*, neg_share=0.8, n=100, layers=2):
    rows = []
    for layer in range(layers):
        for neuron in range(n):
            wd = 5.0 if neuron == 7 else 0.1 + 0.001 * neuron
            share = neg_share if neuron == 7 else 0.3
            rows.append(dict(layer=layer, neuron=neuron, wd=wd, wd_neg=share * wd, wd_pos=(1 - share) * wd, md=0.0,
                             mean=0.0, std=1.0, frac_negative=0.5))
    return pl.DataFrame(rows)


def _is_pdf(path):
    return path.read_bytes()[:4] == b"%PDF"


def _claims(table):
    return {r["claim_id"]: r for r in table.iter_rows(named=True)}


# --------------------------------------------------------------------------- figures


def test_plot_ablation(tmp_path):
    m = make_metrics()
    out = tmp_path / "ablation.pdf"
    t = C.plot_ablation(out, m, main_percent=MAIN, data_label="synthetic", architectures={"m1": "llama"},
                        ppl_matched_m={"m1": 1.3})
    assert _is_pdf(out)
    # final checkpoint only, neg_zero over all layers only: 4 wn + 4 random + 1 ppl_matched per suite
    assert t.height == 3 * 9
    assert set(t["checkpoint"]) == {"step800"}
    wn = t.filter((pl.col("suite") == "blimp") & (pl.col("method") == "wn")).sort("percent")
    assert wn["percent"].to_list() == list(PERCENTS)
    for p, v in zip(PERCENTS, wn["value"].to_list()):
        assert v == pytest.approx(0.8 - 0.2 * 2 * p / (p + 1))
    assert wn["baseline"].to_list() == pytest.approx([0.8] * 4)
    pm = t.filter((pl.col("method") == "ppl_matched") & (pl.col("suite") == "ppl"))
    assert pm["percent"].to_list() == [1.3] and pm["value"].to_list() == [22.0]
    # without the selection record the point sits at the main percent
    t2 = C.plot_ablation(tmp_path / "a2.pdf", m, main_percent=MAIN, data_label="synthetic", architectures={})
    assert t2.filter(pl.col("method") == "ppl_matched")["percent"].unique().to_list() == [MAIN]


def test_plot_phenomena(tmp_path):
    out = tmp_path / "phenomena.pdf"
    t = C.plot_phenomena(out, make_metrics(), main_percent=MAIN, data_label="synthetic")
    assert _is_pdf(out)
    assert set(t["level"]) == {"linguistics_term", "template"}  # no paradigm rows
    wn = t.filter((pl.col("suite") == "blimp") & (pl.col("method") == "wn"))
    got = dict(zip(wn["group"].to_list(), wn["error_increase"].to_list()))
    assert got == pytest.approx({k: 100 * v for k, v in TERMS.items()})  # points
    rnd = t.filter((pl.col("suite") == "tse") & (pl.col("method") == "random"))
    assert rnd["error_increase"].to_list() == pytest.approx([2.0, 2.0])
    assert set(t["method"]) == {"wn", "random", "ppl_matched"}


def test_pos_excess_by_hand(tmp_path):
    out = tmp_path / "pos.pdf"
    t = C.plot_pos_surprisal(out, make_surprisal(), main_percent=MAIN, data_label="synthetic")
    assert _is_pdf(out)
    wn = {r["pos"]: r for r in t.filter(pl.col("method") == "wn").iter_rows(named=True)}
    assert set(wn) == {"DET", "ADP", "NOUN", "VERB"}  # untagged token dropped
    assert wn["DET"]["excess"] == pytest.approx(((3.0 - 2.0) + (3.0 - 1.0)) / 2)
    assert wn["DET"]["n_tokens"] == 2 and wn["DET"]["function_word"]
    assert wn["NOUN"]["excess"] == pytest.approx(((5.2 - 5.0) + 0.0) / 2, abs=1e-6)
    assert not wn["NOUN"]["function_word"]
    pm = {r["pos"]: r["excess"] for r in t.filter(pl.col("method") == "ppl_matched").iter_rows(named=True)}
    assert pm["NOUN"] == pytest.approx((1.0 + 0.5) / 2)
    assert "pos_zero|wn@1|all" not in set(t["condition"])


def test_plot_layerwise(tmp_path):
    out = tmp_path / "layerwise.pdf"
    t = C.plot_layerwise(out, make_metrics(), main_percent=MAIN, data_label="synthetic")
    assert _is_pdf(out)
    ov = t.filter(pl.col("level") == "overall")
    single = ov.filter(pl.col("kind") == "single").sort("layer_group")["error_increase"].to_list()
    assert single == pytest.approx([100 * 0.2 * s for s in SINGLE])
    cum = ov.filter(pl.col("kind") == "cumulative").sort("layer_group")
    assert cum["layer_group"].to_list() == [0, 1, 2]  # the last group is the all-scope condition
    assert cum["error_increase"].to_list() == pytest.approx([20 * 0.2, 20 * 0.5, 20 * 1.0])
    rnd = ov.filter(pl.col("kind") == "random_single")["error_increase"].to_list()
    assert rnd == pytest.approx([0.5] * 3)
    term = t.filter((pl.col("level") == "linguistics_term") & (pl.col("kind") == "single")
                    & (pl.col("term") == "anaphor") & (pl.col("layer_group") == 2))
    assert term["error_increase"].to_list() == pytest.approx([100 * 0.3 * 0.5])
    assert set(t["kind"]) == {"single", "cumulative", "random_single"}


def test_plot_training_dynamics(tmp_path):
    out = tmp_path / "training.pdf"
    t = C.plot_training_dynamics(out, make_metrics(), make_cohort(), main_percent=MAIN, data_label="synthetic")
    assert _is_pdf(out)
    assert t["step"].to_list() == [0, 100, 800]
    assert t["cohort_wd"].to_list() == pytest.approx([0.5, 1.0, 2.0])
    assert t["n_neurons"].to_list() == [4, 4, 4]
    assert t["wn_drop"].to_list() == pytest.approx([0.0, 5.0, 20.0])
    assert t["random_drop"].to_list() == pytest.approx([0.0, 0.25, 1.0])
    assert t["tse_baseline"].to_list() == pytest.approx([0.9] * 3)


def test_plot_dissociation(tmp_path):
    out = tmp_path / "dissociation.pdf"
    t = C.plot_dissociation(out, make_metrics(), main_percent=MAIN, data_label="synthetic")
    assert _is_pdf(out)
    r = {row["method"]: row for row in t.iter_rows(named=True)}
    assert r["wn"]["blimp_drop"] == pytest.approx(20.0) and r["wn"]["nonsyn_drop"] == pytest.approx(5.0)
    assert r["ppl_matched"]["blimp_drop"] == pytest.approx(2.0) and r["ppl_matched"]["nonsyn_drop"] == pytest.approx(10.0)
    assert r["random"]["blimp_drop"] == pytest.approx(1.0)
    assert r["wn"]["ppl"] == pytest.approx(22.0)


def test_plots_survive_empty_inputs(tmp_path):
    empty = make_metrics().clear()
    for name, fn in (("a", lambda o: C.plot_ablation(o, empty, main_percent=1, data_label="x", architectures={})),
                     ("p", lambda o: C.plot_phenomena(o, empty, main_percent=1, data_label="x")),
                     ("l", lambda o: C.plot_layerwise(o, empty, main_percent=1, data_label="x")),
                     ("d", lambda o: C.plot_dissociation(o, empty, main_percent=1, data_label="x"))):
        out = tmp_path / f"{name}.pdf"
        assert fn(out).height == 0
        assert _is_pdf(out)


# --------------------------------------------------------------------------- claims



def _pair_tables(acc: dict[str, float], n: int, seed: int = 0):
    """Per-pair table and matching overall metrics for blimp/tse/nonsyntactic at one checkpoint.

    ``acc`` maps a set name ("none" for the baseline) to its accuracy; pairs are correct in the first
    round(acc * n) positions of a shuffled order shared by all conditions (so conditions are nested)."""
    rng = np.random.default_rng(seed)
    pair_rows, metric_rows = [], []
    for suite in ("blimp", "tse", "nonsyntactic"):
        order = rng.permutation(n)
        for set_, a in acc.items():
            cond = "baseline" if set_ == "none" else f"neg_zero|{set_}|all"
            correct = np.zeros(n, dtype=bool)
            correct[order[: int(round(a * n))]] = True
            for k in range(n):
                pair_rows.append(dict(model="m1", checkpoint="step800", step=800, condition=cond, suite=suite, pair=k,
                                      group="g", correct=bool(correct[k]), margin=1.0 if correct[k] else -1.0))
            metric_rows.append(dict(model="m1", checkpoint="step800", step=800, condition=cond,
                                    intervention="none" if set_ == "none" else "neg_zero", set=set_, scope="all",
                                    n_neurons=0 if set_ == "none" else 4, suite=suite, level="overall", group="all",
                                    n=n, value=float(correct.mean()), margin=0.0))
    return pl.DataFrame(metric_rows), pl.DataFrame(pair_rows)


def test_plot_ablation_shows_random_seeds_as_mean_and_sd(tmp_path):
    from negdiff.stats import merge_replicates

    acc = {"none": 0.9, f"wn@{MAIN:g}": 0.6, f"random@{MAIN:g}": 0.88, f"random@{MAIN:g}#1": 0.9,
           f"random@{MAIN:g}#2": 0.86}
    metrics, _ = _pair_tables(acc, 100)
    t = C.plot_ablation(tmp_path / "a.pdf", merge_replicates(metrics, ["value", "margin"]), main_percent=MAIN,
                        data_label="synthetic")
    rnd = t.filter((pl.col("method") == "random") & (pl.col("suite") == "blimp")).row(0, named=True)
    assert rnd["replicates"] == 3 and rnd["value"] == pytest.approx(0.88)
    assert rnd["value_sd"] == pytest.approx(np.std([0.88, 0.9, 0.86]))
    assert (tmp_path / "a.pdf").read_bytes().startswith(b"%PDF")
