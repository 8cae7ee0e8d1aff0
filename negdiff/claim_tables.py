"""Pure tables behind the claim figures and the summary (no plotting; polars only).

Inputs are the tidy tables written by the evaluation jobs.

Conventions
-----------
- Accuracies in ``metrics.value`` are fractions in [0, 1]; *drops* / *error increases* are reported in
  accuracy **points**: ``100 * (baseline accuracy - ablated accuracy)`` (positive = harm).
- "final checkpoint" of a model = its checkpoint with the largest ``step`` in ``metrics``.
- Conditions are named as in :mod:`negdiff.conditions`: ``"baseline"`` or
  ``"{intervention}|{set}|{scope}"`` (e.g. ``"neg_zero|wn@1|single:2"``).
- Excess surprisal = ablated - baseline surprisal of the same token (joined on model, checkpoint,
  token), in nats, averaged per Universal POS tag of the token.
"""

from __future__ import annotations

import math

import polars as pl

from negdiff.conditions import PAIRED_BASELINE, condition_name, parse_scope, parse_set, set_name
from negdiff.pos import FUNCTION_POS

METHODS = ("wn", "random", "ppl_matched")


def main_conditions(main_percent: float) -> dict[str, str]:
    """method -> the neg_zero condition on its main-percent set over all layers."""
    return {m: condition_name("neg_zero", set_name(m, main_percent), "all") for m in METHODS}


def final_checkpoints(metrics: pl.DataFrame) -> dict[str, str]:
    """model -> checkpoint with the largest step (ties: last checkpoint name)."""
    if metrics.height == 0:
        return {}
    last = (
        metrics.select("model", "checkpoint", "step").unique()
        .sort(["model", "step", "checkpoint"], nulls_last=False)
        .group_by("model", maintain_order=True).last()
    )
    return dict(zip(last["model"].to_list(), last["checkpoint"].to_list()))


def models_in(*frames: pl.DataFrame | None) -> list[str]:
    seen: dict[str, None] = {}
    for f in frames:
        if f is not None and "model" in f.columns:
            for m in f["model"].unique(maintain_order=True).to_list():
                seen.setdefault(m, None)
    return list(seen)


def vs_baseline(metrics: pl.DataFrame, *, suite: str, level: str = "overall") -> pl.DataFrame:
    """Every non-baseline row of ``suite``/``level`` with its checkpoint's baseline value beside it.

    Adds ``baseline`` (the baseline value of the same model, checkpoint and group, on the same pairs: a
    nested-tier row's own ``paired_baseline``, :mod:`negdiff.tiers`), ``main_baseline`` (the baseline
    row's value, on the whole sample), ``method`` and ``percent`` (parsed from ``set``) and
    ``error_increase`` = 100 * (baseline - value): accuracy points lost (for ``ppl`` this is a
    negative number times 100; use ``value`` and ``baseline``).
    """
    m = metrics.filter((pl.col("suite") == suite) & (pl.col("level") == level))
    base = m.filter(pl.col("condition") == "baseline").select(
        "model", "checkpoint", "group", pl.col("value").alias("main_baseline"), pl.col("n").alias("n_baseline")
    )
    abl = m.filter(pl.col("condition") != "baseline").join(base, on=["model", "checkpoint", "group"], how="left")
    paired = pl.col(PAIRED_BASELINE) if PAIRED_BASELINE in abl.columns else pl.lit(None, dtype=pl.Float64)
    abl = abl.with_columns(pl.coalesce(paired, pl.col("main_baseline")).alias("baseline"))
    if PAIRED_BASELINE in abl.columns:
        abl = abl.drop(PAIRED_BASELINE)
    parsed = [parse_set(s) for s in abl["set"].to_list()]
    return abl.with_columns(
        pl.Series("method", [p[0] for p in parsed], dtype=pl.String),
        pl.Series("percent", [p[1] for p in parsed], dtype=pl.Float64),
        ((pl.col("baseline") - pl.col("value")) * 100.0).alias("error_increase"),
    )


def scalar(frame: pl.DataFrame, col: str):
    """The single value of ``col`` in ``frame``, or None when there is no row (or a null)."""
    if frame.height == 0:
        return None
    v = frame[col][0]
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def overall_value(metrics: pl.DataFrame, model: str, checkpoint: str, condition: str, suite: str, *,
                  column: str = "value"):
    """(``column``, n) of ``condition``'s overall row on ``suite``, each None without a row."""
    f = metrics.filter(
        (pl.col("model") == model) & (pl.col("checkpoint") == checkpoint) & (pl.col("condition") == condition)
        & (pl.col("suite") == suite) & (pl.col("level") == "overall")
    )
    return scalar(f, column), scalar(f, "n")


def drop_points(metrics, model, checkpoint, condition, suite):
    """Accuracy points lost by ``condition`` vs baseline on ``suite`` overall (on the condition's own
    pairs: its ``paired_baseline`` where it has one), or None."""
    b, _ = overall_value(metrics, model, checkpoint, "baseline", suite)
    if PAIRED_BASELINE in metrics.columns:
        paired, _ = overall_value(metrics, model, checkpoint, condition, suite, column=PAIRED_BASELINE)
        b = b if paired is None else paired
    a, _ = overall_value(metrics, model, checkpoint, condition, suite)
    if b is None or a is None:
        return None
    return 100.0 * (b - a)


def phenomena_table(metrics: pl.DataFrame, *, main_percent: float) -> pl.DataFrame:
    """Error increase per BLiMP linguistics_term and per TSE template, main-percent sets, final checkpoint."""
    finals = final_checkpoints(metrics)
    conds = main_conditions(main_percent)
    parts = []
    for suite, level in (("blimp", "linguistics_term"), ("tse", "template")):
        t = vs_baseline(metrics, suite=suite, level=level).filter(pl.col("condition").is_in(list(conds.values())))
        parts.append(t)
    t = pl.concat(parts, how="vertical_relaxed")
    keep = [finals.get(m) == ck for m, ck in zip(t["model"].to_list(), t["checkpoint"].to_list())]
    t = t.filter(pl.Series(keep, dtype=pl.Boolean))
    return t.select(
        "model", "checkpoint", "suite", "level", "group", "method", "set", "baseline", "value", "error_increase", "n"
    ).sort(["model", "suite", "group", "method"])


def pos_excess_surprisal(surprisal: pl.DataFrame, *, main_percent: float) -> pl.DataFrame:
    """Mean excess surprisal (ablated − baseline, nats) per POS for the main-percent neg_zero sets.

    Tokens are joined on ``model, checkpoint, token``; the POS is the baseline row's. Tokens without a
    POS tag are dropped. Returns ``model, condition, method, pos, n_tokens, excess, function_word``.
    """
    conds = main_conditions(main_percent)
    method_of = {v: k for k, v in conds.items()}
    base = surprisal.filter(pl.col("condition") == "baseline").select(
        "model", "checkpoint", "token", "pos", pl.col("surprisal").cast(pl.Float64).alias("base")
    )
    abl = surprisal.filter(pl.col("condition").is_in(list(conds.values()))).select(
        "model", "checkpoint", "condition", "token", pl.col("surprisal").cast(pl.Float64).alias("abl")
    )
    j = abl.join(base, on=["model", "checkpoint", "token"], how="inner").filter(pl.col("pos").is_not_null())
    out = (
        j.group_by("model", "condition", "pos")
        .agg(pl.len().cast(pl.Int64).alias("n_tokens"), (pl.col("abl") - pl.col("base")).mean().alias("excess"))
        .with_columns(
            pl.col("condition").replace_strict(method_of, return_dtype=pl.String).alias("method"),
            pl.col("pos").is_in(list(FUNCTION_POS)).alias("function_word"),
        )
        .select("model", "condition", "method", "pos", "n_tokens", "excess", "function_word")
        .sort(["model", "method", "pos"])
    )
    return out


def layerwise_table(metrics: pl.DataFrame, *, main_percent: float) -> pl.DataFrame:
    """BLiMP error increase per layer group: single-group and cumulative wn, single-group random.

    ``kind`` is ``single`` / ``cumulative`` / ``random_single``; ``layer_group`` the group index; the
    cumulative value of the last group is the ``all``-scope condition. ``term`` is the
    linguistics_term, or ``"all"`` for the overall level. Columns: ``model, checkpoint, kind,
    layer_group, level, term, baseline, value, error_increase, n``.
    """
    finals = final_checkpoints(metrics)
    wn, rnd = set_name("wn", main_percent), set_name("random", main_percent)
    parts = []
    for level in ("overall", "linguistics_term"):
        t = vs_baseline(metrics, suite="blimp", level=level).filter(
            (pl.col("intervention") == "neg_zero") & pl.col("set").is_in([wn, rnd])
        )
        parts.append(t)
    t = pl.concat(parts, how="vertical_relaxed")
    keep = [finals.get(m) == ck for m, ck in zip(t["model"].to_list(), t["checkpoint"].to_list())]
    t = t.filter(pl.Series(keep, dtype=pl.Boolean))

    n_groups: dict[str, int] = {}
    for model, scope in t.select("model", "scope").unique().iter_rows():
        kind, g = parse_scope(scope)
        if g is not None:
            n_groups[model] = max(n_groups.get(model, 0), g + 1)

    kinds, groups = [], []
    for model, set_, scope in t.select("model", "set", "scope").iter_rows():
        kind, g = parse_scope(scope)
        if kind == "all":
            if set_ == wn and model in n_groups:
                kinds.append("cumulative")
                groups.append(n_groups[model] - 1)
            else:
                kinds.append(None)
                groups.append(None)
        elif set_ == rnd:
            kinds.append("random_single" if kind == "single" else None)
            groups.append(g)
        else:
            kinds.append(kind)
            groups.append(g)
    t = t.with_columns(pl.Series("kind", kinds, dtype=pl.String), pl.Series("layer_group", groups, dtype=pl.Int64))
    return (
        t.filter(pl.col("kind").is_not_null())
        .select("model", "checkpoint", "kind", "layer_group", "level", pl.col("group").alias("term"),
                "baseline", "value", "error_increase", "n")
        .sort(["model", "kind", "level", "term", "layer_group"])
    )


def training_table(metrics: pl.DataFrame, cohort_wd: pl.DataFrame | None, *, main_percent: float) -> pl.DataFrame:
    """Per (model, checkpoint): cohort mean WD, BLiMP drops (wn, random) and TSE/BLiMP baseline accuracy."""
    conds = main_conditions(main_percent)
    if cohort_wd is None:
        cohort_wd = pl.DataFrame(schema={"model": pl.String, "checkpoint": pl.String, "step": pl.Int64, "wd": pl.Float64})
    if "cohort" in cohort_wd.columns:  # the WN cohort only; its controls are rows of other cohorts
        cohort_wd = cohort_wd.filter(pl.col("cohort") == set_name("wn", main_percent))
    cw = cohort_wd.with_columns(pl.col("step").cast(pl.Int64)).group_by("model", "checkpoint", "step").agg(
        pl.col("wd").mean().alias("cohort_wd"), pl.len().cast(pl.Int64).alias("n_neurons")
    )
    ov = metrics.filter((pl.col("level") == "overall") & (pl.col("group") == "all"))

    def val(suite, condition, name):
        return ov.filter((pl.col("suite") == suite) & (pl.col("condition") == condition)).select(
            "model", "checkpoint", "step", pl.col("value").alias(name)
        )

    keys = ["model", "checkpoint", "step"]
    t = val("blimp", "baseline", "blimp_baseline")
    for frame in (val("blimp", conds["wn"], "_wn"), val("blimp", conds["random"], "_rnd"), val("tse", "baseline", "tse_baseline")):
        t = t.join(frame, on=keys, how="full", coalesce=True)
    n_blimp = ov.filter((pl.col("suite") == "blimp") & (pl.col("condition") == "baseline")).select(*keys, pl.col("n").alias("n_blimp"))
    n_tse = ov.filter((pl.col("suite") == "tse") & (pl.col("condition") == "baseline")).select(*keys, pl.col("n").alias("n_tse"))
    t = (
        t.join(n_blimp, on=keys, how="left").join(n_tse, on=keys, how="left")
        .join(cw, on=keys, how="full", coalesce=True)
        .with_columns(
            ((pl.col("blimp_baseline") - pl.col("_wn")) * 100).alias("wn_drop"),
            ((pl.col("blimp_baseline") - pl.col("_rnd")) * 100).alias("random_drop"),
        )
        .select("model", "checkpoint", "step", "cohort_wd", "n_neurons", "blimp_baseline", "wn_drop", "random_drop",
                "tse_baseline", "n_blimp", "n_tse")
        .sort(["model", "step"])
    )
    return t


def dissociation_table(metrics: pl.DataFrame, *, main_percent: float) -> pl.DataFrame:
    """Per (model, method) at the final checkpoint: BLiMP drop and non-syntactic drop (points), perplexity."""
    finals = final_checkpoints(metrics)
    conds = main_conditions(main_percent)
    rows = []
    for model, ck in finals.items():
        _, n_b = overall_value(metrics, model, ck, "baseline", "blimp")
        _, n_ns = overall_value(metrics, model, ck, "baseline", "nonsyntactic")
        for method, cond in conds.items():
            bd = drop_points(metrics, model, ck, cond, "blimp")
            nd = drop_points(metrics, model, ck, cond, "nonsyntactic")
            if bd is None and nd is None:
                continue
            ppl, _ = overall_value(metrics, model, ck, cond, "ppl")
            rows.append(dict(model=model, checkpoint=ck, method=method, condition=cond, blimp_drop=bd, nonsyn_drop=nd,
                             ppl=ppl, n_blimp=n_b, n_nonsyn=n_ns))
    schema = {"model": pl.String, "checkpoint": pl.String, "method": pl.String, "condition": pl.String,
              "blimp_drop": pl.Float64, "nonsyn_drop": pl.Float64, "ppl": pl.Float64, "n_blimp": pl.Int64, "n_nonsyn": pl.Int64}
    return pl.DataFrame(rows, schema=schema)



def ablation_table(metrics: pl.DataFrame, *, main_percent: float, ppl_matched_m: dict[str, float] | None = None) -> pl.DataFrame:
    """The neg_zero all-layer rows of the final checkpoints (perplexity, BLiMP, TSE), one per (model,
    suite, set), with the ppl-matched set placed at its own percent (``ppl_matched_m[model]``, else
    ``main_percent``): ``model, checkpoint, suite, method, set, percent, value, value_sd, replicates,
    baseline, n, n_neurons, shown``. ``shown`` is what the figure draws: the whole sample's baseline
    minus the row's drop on its own pairs, which is ``value`` unless the row is of a nested tier."""
    ppl_matched_m = ppl_matched_m or {}
    finals = final_checkpoints(metrics)
    suites = ("ppl", "blimp", "tse")
    parts = []
    for suite in suites:
        t = vs_baseline(metrics, suite=suite).filter(
            (pl.col("intervention") == "neg_zero") & (pl.col("scope") == "all")
        )
        parts.append(t)
    rows = pl.concat(parts, how="vertical_relaxed") if parts else pl.DataFrame()
    if rows.height:
        keep = [finals.get(m) == ck for m, ck in zip(rows["model"].to_list(), rows["checkpoint"].to_list())]
        rows = rows.filter(pl.Series(keep, dtype=pl.Boolean))
    if rows.height:
        x = [
            float(ppl_matched_m.get(m, main_percent)) if meth == "ppl_matched" else p
            for m, meth, p in zip(rows["model"].to_list(), rows["method"].to_list(), rows["percent"].to_list())
        ]
        rows = rows.with_columns(pl.Series("percent", x, dtype=pl.Float64))
        if "value_sd" not in rows.columns:  # single-seed tables: no spread
            rows = rows.with_columns(pl.lit(0.0).alias("value_sd"), pl.lit(1, dtype=pl.Int64).alias("replicates"))
        table = rows.select(
            "model", "checkpoint", "suite", "method", "set", "percent", "value", "value_sd", "replicates",
            "baseline", "n", "n_neurons",
            (pl.col("value") + pl.col("main_baseline").fill_null(pl.col("baseline")) - pl.col("baseline")).alias("shown"),
        ).sort(["model", "suite", "method", "percent"])
    else:
        table = pl.DataFrame(schema={"model": pl.String, "checkpoint": pl.String, "suite": pl.String, "method": pl.String,
                                     "set": pl.String, "percent": pl.Float64, "value": pl.Float64, "value_sd": pl.Float64,
                                     "replicates": pl.Int64, "baseline": pl.Float64, "n": pl.Int64, "n_neurons": pl.Int64,
                                     "shown": pl.Float64})

    return table
