"""Replicate merging and the paired bootstrap, against independent references (scipy, float64)."""

import numpy as np
import polars as pl
import pytest
from scipy import stats as sps

from negdiff.conditions import parse_set, random_replicates, selection_sets, set_family, set_name
from negdiff.stats import Resampler, family_condition, merge_replicates, paired_bootstrap


def test_set_names_with_replicates():
    assert set_name("random", 1, 2) == "random@1#2"
    assert set_name("random", 0.5, 0) == "random@0.5"
    assert parse_set("random@1#2") == ("random", 1.0)
    assert set_family("random@1#2") == "random@1"
    with pytest.raises(ValueError):
        set_name("wn", 1, 1)
    with pytest.raises(ValueError):
        parse_set("wn@1#1")
    sel = {"percents": [1, 2], "main_percent": 1, "random_seeds": 3, "ppl_matched": {"enabled": False}}
    assert random_replicates(sel, 1) == ["random@1", "random@1#1", "random@1#2"]
    more = {**sel, "random_seeds": 2, "random_seeds_main": 5}  # more seeds only where the main claims are decided
    assert random_replicates(more, 1) == ["random@1"] + [f"random@1#{k}" for k in range(1, 5)]
    assert random_replicates(more, 2) == ["random@2", "random@2#1"]
    assert selection_sets(more).count("random@1#4") == 1 and "random@2#2" not in selection_sets(more)
    assert selection_sets(sel) == ["wn@1", "wn@2", "random@1", "random@1#1", "random@1#2",
                                   "random@2", "random@2#1", "random@2#2"]
    assert family_condition("neg_zero|random@1#2|single:0") == "neg_zero|random@1|single:0"
    assert family_condition("baseline") == "baseline"


def test_merge_replicates_mean_and_sd():
    rows = [
        ("baseline", "none", 0.9), ("neg_zero|random@1|all", "random@1", 0.8),
        ("neg_zero|random@1#1|all", "random@1#1", 0.7), ("neg_zero|random@1#2|all", "random@1#2", 0.6),
        ("neg_zero|wn@1|all", "wn@1", 0.5),
    ]
    t = pl.DataFrame(rows, schema=["condition", "set", "value"], orient="row").with_columns(pl.lit("m").alias("model"))
    out = merge_replicates(t, ["value"])
    got = {r["condition"]: r for r in out.iter_rows(named=True)}
    assert set(got) == {"baseline", "neg_zero|random@1|all", "neg_zero|wn@1|all"}
    r = got["neg_zero|random@1|all"]
    assert r["set"] == "random@1" and r["replicates"] == 3
    assert r["value"] == pytest.approx(np.mean([0.8, 0.7, 0.6]))
    assert r["value_sd"] == pytest.approx(np.std([0.8, 0.7, 0.6]))
    assert got["baseline"]["value_sd"] == 0 and got["baseline"]["replicates"] == 1


def test_paired_bootstrap_estimate_and_interval_match_scipy():
    rng = np.random.default_rng(1)
    n = 400
    a = (rng.random(n) < 0.8).astype(float)
    # b is a correlated to a: pairing shrinks the interval of the difference
    b = np.where(rng.random(n) < 0.85, a, 1 - a)
    est, low, high = paired_bootstrap({"s": {"a": a, "b": b}}, lambda m: m["s"]["a"] - m["s"]["b"], n_boot=4000, seed=0)
    assert est == pytest.approx(a.mean() - b.mean(), abs=1e-12)
    ref = sps.bootstrap((a, b), lambda x, y, axis=-1: x.mean(axis=axis) - y.mean(axis=axis), paired=True,
                        vectorized=True, n_resamples=4000, method="percentile", confidence_level=0.95,
                        random_state=np.random.default_rng(7))
    assert low == pytest.approx(ref.confidence_interval.low, abs=0.01)
    assert high == pytest.approx(ref.confidence_interval.high, abs=0.01)
    # the unpaired interval (independent resamples of a and b) is wider than the paired one
    est2, low2, high2 = paired_bootstrap({"s1": {"a": a}, "s2": {"b": b}}, lambda m: m["s1"]["a"] - m["s2"]["b"],
                                         n_boot=4000, seed=0)
    assert est2 == pytest.approx(est) and (high2 - low2) > 1.3 * (high - low)


def test_paired_bootstrap_is_seeded_and_checks_shapes():
    a = np.array([1.0, 0, 1, 1, 0, 1])
    f = lambda m: m["s"]["a"]  # noqa: E731
    assert paired_bootstrap({"s": {"a": a}}, f, n_boot=300, seed=3) == paired_bootstrap({"s": {"a": a}}, f, n_boot=300, seed=3)
    # chunking does not change the draws' distribution enough to matter, and the interval brackets the mean
    est, low, high = paired_bootstrap({"s": {"a": a}}, f, n_boot=1000, seed=0, chunk=7)
    assert low <= est <= high
    with pytest.raises(ValueError, match="equal-length"):
        paired_bootstrap({"s": {"a": a, "b": a[:3]}}, f)
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap({"s": {"a": a}}, f, confidence=1.5)


def test_identical_conditions_give_a_zero_width_interval():
    a = np.array([1.0, 0, 1, 1, 0, 1, 1, 1])
    est, low, high = paired_bootstrap({"s": {"a": a, "b": a.copy()}}, lambda m: m["s"]["a"] - m["s"]["b"], n_boot=200)
    assert est == low == high == 0


def test_stratified_resamples_keep_every_stratum_size():
    strata = np.array(["a"] * 5 + ["b"] * 3 + ["c"] * 12)
    rs = Resampler({"s": strata}, n_boot=50, seed=1)
    seen = []
    rs.distribution(lambda d: seen.append(d.weights["s"]) or np.zeros(len(d.weights["s"])))
    w = np.concatenate(seen)
    assert w.shape == (50, 20)
    for label, size in (("a", 5), ("b", 3), ("c", 12)):
        assert (w[:, strata == label].sum(axis=1) == size).all()
    # a stratum's units are drawn only from that stratum, and not always all of them once
    assert (w[:, strata == "a"] != 1).any()


def test_stratified_interval_equals_scipy_with_one_stratum_and_is_narrower_with_strata():
    rng = np.random.default_rng(0)
    n = 600
    group = np.repeat([0, 1, 2], n // 3)
    # strata with very different accuracies: stratification removes the between-stratum variance
    x = (rng.random(n) < np.array([0.95, 0.5, 0.1])[group]).astype(float)
    one = Resampler({"s": np.zeros(n)}, n_boot=4000, seed=0).interval(lambda d: d.mean("s", x))
    ref = sps.bootstrap((x,), lambda a, axis=-1: a.mean(axis=axis), vectorized=True, n_resamples=4000,
                        method="percentile", random_state=np.random.default_rng(5))
    assert one.low == pytest.approx(ref.confidence_interval.low, abs=0.01)
    assert one.high == pytest.approx(ref.confidence_interval.high, abs=0.01)
    strat = Resampler({"s": group}, n_boot=4000, seed=0).interval(lambda d: d.mean("s", x))
    assert strat.estimate == pytest.approx(x.mean()) and strat.half_width < 0.85 * one.half_width
    # the stratified sd is the analytic one: sqrt(sum_g n_g p_g (1 - p_g)) / n
    p = np.array([x[group == g].mean() for g in range(3)])
    sd = np.sqrt(((n // 3) * p * (1 - p)).sum()) / n
    assert strat.half_width == pytest.approx(1.96 * sd, rel=0.1)


def test_seed_level_resampling_carries_the_seed_spread():
    """Per-seed values differ by a constant; pairs are identical: the interval is the seeds' alone."""
    n, k = 200, 5
    base = (np.random.default_rng(2).random(n) < 0.7).astype(float)
    offsets = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
    v = np.stack([np.clip(base + o, 0, 1.4) for o in offsets])  # k x n
    rs = Resampler({"s": np.zeros(n)}, {"random@1": k}, n_boot=4000, seed=0)
    iv = rs.interval(lambda d: d.seed_mean("s", "random@1", v) - d.mean("s", base))
    assert iv.estimate == pytest.approx((v.mean(axis=1) - base.mean()).mean())
    # the seed part alone: the bootstrap of a mean over k values
    seeds_only = Resampler({"s": np.zeros(n)}, {"random@1": k}, n_boot=4000, seed=0)
    per_seed = v.mean(axis=1) - base.mean()
    s_iv = seeds_only.interval(lambda d: np.take_along_axis(np.broadcast_to(per_seed, (len(d.seeds["random@1"]), k)),
                                                            d.seeds["random@1"], axis=1).mean(axis=1))
    assert iv.half_width >= 0.9 * s_iv.half_width > 0
    with pytest.raises(ValueError, match="seed rows"):
        rs.interval(lambda d: d.seed_mean("s", "random@1", v[:3]))
