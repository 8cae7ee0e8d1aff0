"""``summary.csv``: one row per (claim, model), each with a three-way verdict and its reason.

Every claim of :data:`negdiff.claim_registry.CLAIMS` (registered by :mod:`negdiff.claims_ablation`
and :mod:`negdiff.claims_neurons`) is run for every model; its :class:`~negdiff.claim_registry.Finding`
becomes a row:

- ``value`` / ``control``: the two quantities compared (for C3 the two dissociation gaps, for C5b the
  last and first cumulative drops); ``diff``: the effect in the paper's direction with its 95%
  interval ``ci_low`` / ``ci_high`` and ``n`` (pairs, tagged tokens or neurons resampled);
- ``smallest_effect`` (config ``claims.smallest_effect``, by measure) and ``unit``;
- ``verdict`` ∈ {holds, absent, inconclusive, n/a} and ``reason`` (:func:`negdiff.stats.verdict`);
  ``n/a`` when the claim does not apply (one checkpoint, an identity operation, a control that did
  not match, a missing input);
- for accuracy claims, the companion on log-prob margins: ``margin_diff``, ``margin_ci_low``,
  ``margin_ci_high`` and ``margin_verdict`` (against ``smallest_effect.margin_nats``).

No matplotlib here: the forest plot of these rows is :func:`negdiff.claim_plots.plot_claims`.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

import negdiff.claims_ablation  # noqa: F401  (registers C1-C6, C9)
import negdiff.claims_neurons  # noqa: F401  (registers C7, C8)
from negdiff.claim_data import PairData
from negdiff.claim_registry import CLAIMS, DEFAULT_SMALLEST, UNITS, Context, Finding
from negdiff.io import atomic_path
from negdiff.stats import merge_replicates, verdict

CLAIM_SCHEMA = {
    "claim_id": pl.String, "claim": pl.String, "model": pl.String, "metric": pl.String, "unit": pl.String,
    "value": pl.Float64, "control": pl.Float64, "control_sd": pl.Float64, "diff": pl.Float64,
    "ci_low": pl.Float64, "ci_high": pl.Float64, "n": pl.Int64, "smallest_effect": pl.Float64,
    "verdict": pl.String, "reason": pl.String,
    "margin_diff": pl.Float64, "margin_ci_low": pl.Float64, "margin_ci_high": pl.Float64,
    "margin_verdict": pl.String, "note": pl.String,
}


def claim_order(cid: str) -> tuple[int, str]:
    """C1 < C2 < ... < C5a < C5b < ... < C9 (numeric, then part letter)."""
    digits = "".join(ch for ch in cid[1:] if ch.isdigit())
    return int(digits or 0), cid


def finding_row(cid: str, model: str, f: Finding, smallest: dict) -> dict:
    """The summary row of one finding (verdicts from its intervals)."""
    sesoi = float(smallest[f.measure])
    unit = UNITS[f.measure]
    if f.na is not None:
        v, reason = "n/a", f.na
    else:
        v, reason = verdict(f.interval, sesoi, unit=unit)
    iv, m = (f.interval, f.margin) if f.na is None else (None, None)
    mv = None
    if m is not None:
        mv, _ = verdict(m, float(smallest["margin_nats"]), unit="nats")
    return dict(
        claim_id=cid, claim=CLAIMS[cid].text, model=model, metric=f.metric, unit=unit,
        value=f.value, control=f.control, control_sd=f.control_sd,
        diff=None if iv is None else iv.estimate, ci_low=None if iv is None else iv.low,
        ci_high=None if iv is None else iv.high, n=f.n if iv is not None else None, smallest_effect=sesoi,
        verdict=v, reason=reason, margin_diff=None if m is None else m.estimate,
        margin_ci_low=None if m is None else m.low, margin_ci_high=None if m is None else m.high,
        margin_verdict=mv, note=f.note,
    )


def claims_table(
    metrics: pl.DataFrame,
    pairs: pl.DataFrame,
    *,
    main_percent: float,
    surprisal: pl.DataFrame | None = None,
    cohort_wd: pl.DataFrame | None = None,
    differentiation: dict[str, pl.DataFrame] | None = None,
    records: dict[str, dict] | None = None,
    smallest_effect: dict | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    chance: float = 0.5,
    surprisal_block_tokens: int = 128,
    models: list[str] | None = None,
) -> pl.DataFrame:
    """One row per (claim, model), sorted by claim then model (see the module docstring).

    ``metrics`` / ``pairs`` / ``surprisal`` / ``cohort_wd`` are the run's tidy tables (random-control
    replicates unmerged); ``differentiation[model]`` the per-neuron table of
    :mod:`negdiff.differentiation` at the cohort checkpoint; ``records[model]`` the selection record.
    ``n_boot`` resamples with ``seed`` (the same draws for every claim of a model)."""
    smallest = {**DEFAULT_SMALLEST, **(smallest_effect or {})}
    missing = sorted(set(DEFAULT_SMALLEST) - set(smallest))
    if missing:
        raise ValueError(f"claims.smallest_effect lacks {missing}")
    merged = merge_replicates(metrics, ["value", "margin"]) if "replicates" not in metrics.columns else metrics
    names = models or list(dict.fromkeys(metrics["model"].to_list() + list((records or {}))))
    rows = []
    for model in names:
        ctx = Context(model=model, main_percent=main_percent, metrics=merged, pairs=PairData.from_table(pairs, model),
                      surprisal=surprisal, cohort_wd=cohort_wd, differentiation=(differentiation or {}).get(model),
                      record=(records or {}).get(model), smallest=smallest, n_boot=n_boot, seed=seed,
                      chance=chance, block_tokens=surprisal_block_tokens)
        for cid in sorted(CLAIMS, key=claim_order):
            rows.append(finding_row(cid, model, CLAIMS[cid].test(ctx), smallest))
    table = pl.DataFrame(rows, schema=CLAIM_SCHEMA)
    order = {cid: i for i, cid in enumerate(sorted(CLAIMS, key=claim_order))}
    return table.with_columns(pl.col("claim_id").replace_strict(order, return_dtype=pl.Int64).alias("_o")).sort(
        ["_o", "model"]).drop("_o")


def write_summary_csv(path: str | Path, table: pl.DataFrame) -> None:
    """Write ``table`` as CSV atomically."""
    with atomic_path(path) as tmp:
        table.write_csv(tmp)
