"""The claim registry: what a claim is, the context it is tested in, and the checks claims share.

A claim is a :class:`Claim` in :data:`CLAIMS` (id, wording, test function), registered with
:func:`claim`. Its function takes a :class:`Context` (one model's tables and the settings) and returns
a :class:`Finding`: the effect in the paper's direction (positive = as the paper says), the values it
compares, an interval from the two-level bootstrap of :mod:`negdiff.stats`, and for accuracy claims
the same statistic on log-prob margins (good − bad, nats). :mod:`negdiff.claims` turns findings into
``summary.csv``; the claims themselves live in :mod:`negdiff.claims_ablation` (what zeroing does) and
:mod:`negdiff.claims_neurons` (what the neurons are).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable

import numpy as np
import polars as pl

from negdiff.claim_data import PairData
from negdiff.claim_tables import final_checkpoints, main_conditions
from negdiff.stats import Interval, Resampler

# smallest effects of interest (config ``claims.smallest_effect``), by measure
DEFAULT_SMALLEST = {"accuracy_points": 1.0, "margin_nats": 0.01, "surprisal_nats": 0.01, "wd": 0.02, "share": 0.05}
UNITS = {"accuracy_points": "points", "margin_nats": "nats", "surprisal_nats": "nats", "wd": "WD", "share": "share"}


@dataclass
class Context:
    """One model's inputs to the claims, and the settings they are tested with."""

    model: str
    main_percent: float
    metrics: pl.DataFrame  # seed-merged metrics (merge_replicates)
    pairs: PairData
    surprisal: pl.DataFrame | None = None
    cohort_wd: pl.DataFrame | None = None
    differentiation: pl.DataFrame | None = None
    record: dict | None = None
    smallest: dict = field(default_factory=lambda: dict(DEFAULT_SMALLEST))
    n_boot: int = 2000
    seed: int = 0
    chance: float = 0.5
    block_tokens: int = 128
    _resampler: Resampler | None = None

    @cached_property
    def final(self) -> str | None:
        return final_checkpoints(self.metrics.filter(pl.col("model") == self.model)).get(self.model)

    @property
    def conds(self) -> dict[str, str]:
        return main_conditions(self.main_percent)

    @cached_property
    def checkpoints(self) -> list[tuple[str, int]]:
        """(checkpoint, step) of this model, by step."""
        t = self.metrics.filter(pl.col("model") == self.model).select("checkpoint", "step").unique()
        return sorted(((c, -1 if s is None else int(s)) for c, s in t.iter_rows()), key=lambda x: (x[1], x[0]))

    def resampler(self) -> Resampler:
        """The pair resampler (paradigm-stratified, seed-level), shared by every pair claim of the model."""
        if self._resampler is None:
            self._resampler = Resampler(self.pairs.strata, self.pairs.seeds, n_boot=self.n_boot, seed=self.seed)
        return self._resampler


@dataclass
class Finding:
    """One claim's result for one model; ``na`` (a reason) when the claim does not apply."""

    metric: str
    measure: str  # key of Context.smallest
    value: float | None = None
    control: float | None = None
    control_sd: float | None = None
    interval: Interval | None = None
    n: int | None = None
    margin: Interval | None = None
    note: str = ""
    na: str | None = None


@dataclass(frozen=True)
class Claim:
    id: str
    text: str
    test: Callable[[Context], Finding]


CLAIMS: dict[str, Claim] = {}


def claim(cid: str, text: str):
    """Register a claim function under ``cid`` (the decorated function is returned unchanged)."""
    def deco(fn: Callable[[Context], Finding]):
        if cid in CLAIMS:
            raise ValueError(f"claim {cid} registered twice")
        CLAIMS[cid] = Claim(cid, text, fn)
        return fn
    return deco


# --------------------------------------------------------------------------- shared checks


def neg_zero_reason(ctx: Context) -> str | None:
    """Why neg_zero claims do not apply to this model (the operation is the identity), or None."""
    reason = ((ctx.record or {}).get("identity_operations") or {}).get("neg_zero")
    return f"neg_zero is the identity on this model: {reason}" if reason else None


def matched_reason(ctx: Context) -> str | None:
    """Why the perplexity-matched control cannot be used, or None when it matched its target."""
    if ctx.record is None:
        return "no selection record"
    pm = ctx.record.get("ppl_matched")
    if not pm:
        return "no perplexity-matched control (selection.ppl_matched.enabled is false)"
    if pm.get("skipped"):
        return f"no perplexity-matched control: {pm['skipped']}"
    if not pm.get("converged"):
        band = pm.get("band_ppl", pm.get("tolerance", float("nan")) * pm.get("target_ppl", float("nan")))
        base = f", baseline {pm['baseline_ppl']:.6g}" if "baseline_ppl" in pm else ""
        return (f"control not matched: perplexity {pm.get('ppl', float('nan')):.6g} vs target "
                f"{pm.get('target_ppl', float('nan')):.6g} ± {band:.3g}{base} ({pm.get('reason', '')})")
    return None


def matched_note(ctx: Context) -> str:
    pm = (ctx.record or {}).get("ppl_matched") or {}
    if "m" not in pm:
        return ""
    state = "matched" if pm.get("converged") else "NOT matched"
    return (f"ppl-matched set m = {pm['m']:g}% ({pm.get('n_selected')} neurons), {state}: perplexity "
            f"{pm['ppl']:.6g} vs target {pm['target_ppl']:.6g}")


def _missing(ctx: Context, items: list[tuple[str, str, str]]) -> str | None:
    lost = [f"{s} {ck} {c}" for s, ck, c in items if not ctx.pairs.has(s, ck, c)]
    return f"no per-pair rows for {', '.join(lost)}" if lost else None


def drop(ctx: Context, d, what: str, suite: str, ck: str, cond: str) -> np.ndarray:
    """[B] drop of ``cond`` vs baseline: accuracy points (what="correct") or margin nats."""
    scale = 100.0 if what == "correct" else 1.0
    return scale * (ctx.pairs.mean(d, what, suite, ck, "baseline") - ctx.pairs.mean(d, what, suite, ck, cond))


def pair_finding(ctx: Context, metric: str, stat: Callable, items: list[tuple[str, str, str]],
                 note: str = "", parts: Callable | None = None) -> Finding:
    """A finding of an accuracy claim: ``stat(d, what)`` is the effect, ``parts(d, what)`` -> (value,
    control) beside it; both on accuracy (interval) and margins (companion interval)."""
    miss = _missing(ctx, items + [(s, ck, "baseline") for s, ck, _ in items])
    if miss:
        return Finding(metric, "accuracy_points", na=miss)
    rs = ctx.resampler()
    # every term over the pairs all the claim's conditions were scored on (nested tiers stay paired)
    with ctx.pairs.common(items + [(s, ck, "baseline") for s, ck, _ in items]):
        iv = rs.interval(lambda d: stat(d, "correct"))
        margin = rs.interval(lambda d: stat(d, "margin"))
        value = control = None
        if parts is not None:
            value, control = (float(np.asarray(x).reshape(-1)[0]) for x in parts(rs.identity(), "correct"))
        n = sum(ctx.pairs.n_pairs(s) for s in dict.fromkeys(s for s, _, _ in items))
    return Finding(metric, "accuracy_points", value, control, interval=iv, n=n, margin=margin, note=note)


def seeds_note(ctx: Context, suite: str) -> tuple[str, float | None]:
    """Note and sd over seeds (points) of the random control's ``suite`` drop at the final checkpoint."""
    rnd = ctx.conds["random"]
    k = ctx.pairs.seeds.get(rnd, 0)
    sd = None
    if k and ctx.final and ctx.pairs.has(suite, ctx.final, rnd) and ctx.pairs.has(suite, ctx.final, "baseline"):
        base = ctx.pairs.values[("correct", suite, ctx.final, "baseline")][0].mean()
        sd = float(np.std(100 * (base - ctx.pairs.values[("correct", suite, ctx.final, rnd)].mean(axis=1))))
    return f"random control: {k} seeds, resampled with the pairs", sd


def fitted_change(series: list[np.ndarray]) -> np.ndarray:
    """Least-squares slope of ``series`` over positions 0..K-1, times K-1: the fitted change from the
    first to the last position ([B] arrays; K >= 2)."""
    y = np.stack([np.asarray(s, dtype=np.float64) for s in series])
    x = np.arange(len(series), dtype=np.float64)
    x -= x.mean()
    return (x @ (y - y.mean(axis=0))) / (x @ x) * (len(series) - 1)


