"""Claims about what the WNs are (C7, C8), tested against neurons of the same layers.

- **C7** (the cohort's non-Gaussianity grows over training): the WD change of the final checkpoint's
  WN cohort from the first to the last checkpoint, minus the change of random cohorts of the same
  size per layer (their seeds pooled), both measured on held-out text, disjoint from the tokens that
  selected the cohort (:func:`negdiff.cohorts.cohort_wd`). Neurons are resampled (each cohort
  independently; one stratum, since a layer may hold a single WN); the change of the layer sample
  (the layer mean) is reported beside it.
- **C8** (negative differentiation): the share of the separation of each neuron's most differentiated
  token pairs that lies below zero (:mod:`negdiff.differentiation`), mean over the WNs (top
  main-percent per layer by WD) minus the mean over the other neurons of the same layers. The same
  share over random pairs, the sign patterns of the top pairs and the share of their tokens that are
  function words are reported beside it.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from negdiff.claim_data import cohort_change
from negdiff.claim_registry import Context, Finding, claim
from negdiff.conditions import set_name
from negdiff.stats import Resampler


@claim("C7", "the WN cohort's WD grows over training more than a random cohort's (held-out tokens)")
def c7(ctx: Context) -> Finding:
    metric = "WD change first → last checkpoint: wn cohort − random cohort (same count per layer)"
    cks = [ck for ck, _ in ctx.checkpoints]
    t = ctx.cohort_wd
    if t is None or t.height == 0 or "cohort" not in t.columns:
        return Finding(metric, "wd", na="no cohort WD table with controls")
    have = set(t.filter(pl.col("model") == ctx.model)["checkpoint"].to_list())
    cks = [ck for ck in cks if ck in have]
    if len(cks) < 2:
        return Finding(metric, "wd", na="one checkpoint: no training dynamics")
    wn, rnd = set_name("wn", ctx.main_percent), set_name("random", ctx.main_percent)
    ch = cohort_change(t, ctx.model, cks[0], cks[-1])
    if wn not in ch or rnd not in ch:
        return Finding(metric, "wd", na=f"cohort WD lacks {wn} or {rnd} at {cks[0]} and {cks[-1]}")
    samples = {k: np.zeros(ch[k].height) for k in (wn, rnd, "layer") if k in ch}
    rs = Resampler(samples, n_boot=ctx.n_boot, seed=ctx.seed)
    delta = {k: ch[k]["change"].to_numpy() for k in samples}
    iv = rs.interval(lambda d: d.mean(wn, delta[wn]) - d.mean(rnd, delta[rnd]))
    note = f"{cks[0]} → {cks[-1]}; {len(delta[wn])} wn and {len(delta[rnd])} random neurons"
    if "layer" in delta:
        lay = rs.interval(lambda d: d.mean(wn, delta[wn]) - d.mean("layer", delta["layer"]))
        note += (f"; layer sample ({len(delta['layer'])} neurons) change {delta['layer'].mean():.3g}, "
                 f"wn − layer {lay.estimate:.3g} [{lay.low:.3g}, {lay.high:.3g}]")
    return Finding(metric, "wd", float(delta[wn].mean()), float(delta[rnd].mean()), interval=iv,
                   n=len(delta[wn]) + len(delta[rnd]), note=note)


def _wn_mask(table: pl.DataFrame, percent: float) -> pl.Series:
    """Boolean mask of the WNs: the top ``percent`` of each layer by WD, chosen exactly as the WN
    selection chooses them (:func:`negdiff.scoring.top_neurons`)."""
    from negdiff.scoring import top_neurons

    top = top_neurons(table.select("layer", "neuron", "wd"), percent).select("layer", "neuron", pl.lit(True).alias("wn"))
    return table.select("layer", "neuron").join(top, on=["layer", "neuron"], how="left")["wn"].fill_null(False)


@claim("C8", "negative differentiation: WNs' most differentiated token pairs are separated below zero more than other neurons'")
def c8(ctx: Context) -> Finding:
    metric = "negative share of the top pairs' separation: wn − other neurons of the same layers"
    t = ctx.differentiation
    if t is None or t.height == 0:
        return Finding(metric, "share", na="no differentiation table")
    t = t.with_columns(_wn_mask(t, ctx.main_percent)).filter(pl.col("top_share_neg").is_not_null())
    wn, other = t.filter(pl.col("wn")), t.filter(~pl.col("wn"))
    if wn.height == 0 or other.height == 0:
        return Finding(metric, "share", na="no WN or no other neuron with top pairs")
    rs = Resampler({"wn": np.zeros(wn.height), "other": np.zeros(other.height)}, n_boot=ctx.n_boot, seed=ctx.seed)
    sw, so = wn["top_share_neg"].to_numpy(), other["top_share_neg"].to_numpy()
    iv = rs.interval(lambda d: d.mean("wn", sw) - d.mean("other", so))
    pat = {k: int(wn[k].sum()) for k in ("top_both_neg", "top_mixed", "top_both_pos")}
    func = wn["top_function_share"].drop_nulls()
    note = (f"{wn.height} WNs, {other.height} other neurons; random-pair share wn {wn['random_share_neg'].mean():.3g}, "
            f"other {other['random_share_neg'].mean():.3g}; wn top pairs both negative {pat['top_both_neg']}, "
            f"mixed {pat['top_mixed']}, both positive {pat['top_both_pos']}; function-word share of wn top-pair tokens "
            + (f"{func.mean():.3g}" if func.len() else "n/a (no POS)"))
    return Finding(metric, "share", float(sw.mean()), float(so.mean()), interval=iv, n=wn.height + other.height, note=note)
