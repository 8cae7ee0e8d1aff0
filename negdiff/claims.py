"""Evaluation-stage figures and the claims table.

Inputs are the tidy tables written by the evaluation jobs (see the module-level notes below); every
figure function writes one PDF atomically and returns the tidy polars table it plotted, so tests can
check the numbers behind each mark.

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
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from negdiff.conditions import parse_scope, parse_set, set_name  # noqa: E402
from negdiff.figures import ACTIVATION_OF, _save  # noqa: E402
from negdiff.io import atomic_path  # noqa: E402

FUNCTION_POS = ("DET", "ADP", "AUX", "PRON", "SCONJ", "CCONJ", "PART")
CONTENT_POS = ("NOUN", "VERB", "ADJ", "PROPN")
METHODS = ("wn", "random", "ppl_matched")
METHOD_STYLE = {
    "wn": dict(color="C3", marker="o", label="Wasserstein neurons"),
    "random": dict(color="C0", marker="s", label="random (same count per layer)"),
    "ppl_matched": dict(color="C2", marker="^", label="perplexity-matched"),
}
SUITE_LABEL = {"ppl": "perplexity", "blimp": "BLiMP accuracy", "tse": "TSE accuracy", "nonsyntactic": "non-syntactic accuracy"}


# --------------------------------------------------------------------------- helpers


def cond_name(intervention: str, set_: str, scope: str = "all") -> str:
    return f"{intervention}|{set_}|{scope}"


def main_conditions(main_percent: float) -> dict[str, str]:
    """method -> the neg_zero condition on its main-percent set over all layers."""
    return {m: cond_name("neg_zero", set_name(m, main_percent), "all") for m in METHODS}


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


def _models(*frames: pl.DataFrame | None) -> list[str]:
    seen: dict[str, None] = {}
    for f in frames:
        if f is not None and "model" in f.columns:
            for m in f["model"].unique(maintain_order=True).to_list():
                seen.setdefault(m, None)
    return list(seen)


def vs_baseline(metrics: pl.DataFrame, *, suite: str, level: str = "overall") -> pl.DataFrame:
    """Every non-baseline row of ``suite``/``level`` with its checkpoint's baseline value beside it.

    Adds ``baseline`` (the baseline value of the same model, checkpoint and group), ``method`` and
    ``percent`` (parsed from ``set``) and ``error_increase`` = 100 * (baseline - value): accuracy
    points lost (for ``ppl`` this is a negative number times 100; use ``value`` and ``baseline``).
    """
    m = metrics.filter((pl.col("suite") == suite) & (pl.col("level") == level))
    base = m.filter(pl.col("condition") == "baseline").select(
        "model", "checkpoint", "group", pl.col("value").alias("baseline"), pl.col("n").alias("n_baseline")
    )
    abl = m.filter(pl.col("condition") != "baseline").join(base, on=["model", "checkpoint", "group"], how="left")
    parsed = [parse_set(s) for s in abl["set"].to_list()]
    return abl.with_columns(
        pl.Series("method", [p[0] for p in parsed], dtype=pl.String),
        pl.Series("percent", [p[1] for p in parsed], dtype=pl.Float64),
        ((pl.col("baseline") - pl.col("value")) * 100.0).alias("error_increase"),
    )


def _scalar(frame: pl.DataFrame, col: str):
    """The single value of ``col`` in ``frame``, or None when there is no row (or a null)."""
    if frame.height == 0:
        return None
    v = frame[col][0]
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return v


def _overall(metrics: pl.DataFrame, model: str, checkpoint: str, condition: str, suite: str):
    f = metrics.filter(
        (pl.col("model") == model) & (pl.col("checkpoint") == checkpoint) & (pl.col("condition") == condition)
        & (pl.col("suite") == suite) & (pl.col("level") == "overall")
    )
    return _scalar(f, "value"), _scalar(f, "n")


def _drop(metrics, model, checkpoint, condition, suite):
    """Accuracy points lost by ``condition`` vs baseline on ``suite`` overall, or None."""
    b, _ = _overall(metrics, model, checkpoint, "baseline", suite)
    a, _ = _overall(metrics, model, checkpoint, condition, suite)
    if b is None or a is None:
        return None
    return 100.0 * (b - a)


def _act(architectures: dict[str, str] | None, model: str) -> str:
    return ACTIVATION_OF.get((architectures or {}).get(model, ""), "?")


def _grid(nrows: int, ncols: int, w: float, h: float):
    fig, axes = plt.subplots(max(nrows, 1), ncols, figsize=(w * ncols, h * max(nrows, 1)), squeeze=False)
    return fig, axes


def _empty_figure(out, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, title, ha="center", va="center", wrap=True)
    _save(fig, out)


# --------------------------------------------------------------------------- figures


def plot_ablation(
    out: str | Path,
    metrics: pl.DataFrame,
    *,
    main_percent: float,
    data_label: str,
    architectures: dict[str, str] | None = None,
    ppl_matched_m: dict[str, float] | None = None,
) -> pl.DataFrame:
    """neg_zero sweep over the % of neurons per layer: perplexity, BLiMP and TSE overall accuracy.

    Lines for wn and random sets; the perplexity-matched set is a point at ``ppl_matched_m[model]``
    (its percent from the selection record) or, if not given, at ``main_percent``. The dashed line is
    the unablated baseline. Returns one row per (model, suite, set): ``model, checkpoint, suite,
    method, set, percent, value, baseline, n, n_neurons``.
    """
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
        ).sort(["model", "suite", "method", "percent"])
    else:
        table = pl.DataFrame(schema={"model": pl.String, "checkpoint": pl.String, "suite": pl.String, "method": pl.String,
                                     "set": pl.String, "percent": pl.Float64, "value": pl.Float64, "value_sd": pl.Float64,
                                     "replicates": pl.Int64, "baseline": pl.Float64, "n": pl.Int64, "n_neurons": pl.Int64})

    models = list(finals)
    if not models:
        _empty_figure(out, f"no metrics; data: {data_label}")
        return table
    fig, axes = _grid(len(models), 3, 4.6, 3.6)
    for r, model in enumerate(models):
        for c, suite in enumerate(suites):
            ax = axes[r, c]
            t = table.filter((pl.col("model") == model) & (pl.col("suite") == suite))
            b, n_base = _overall(metrics, model, finals[model], "baseline", suite)
            if b is not None:
                ax.axhline(b, color="k", ls="--", lw=1, label="baseline")
            for method in METHODS:
                tm = t.filter(pl.col("method") == method).sort("percent")
                if tm.height == 0:
                    continue
                st = METHOD_STYLE[method]
                nn = tm["n_neurons"].to_list()
                lab = f"{st['label']} (n={nn[-1]} neurons)" if method == "ppl_matched" else f"{st['label']} (n={nn[0]}..{nn[-1]} neurons)"
                ls = "none" if method == "ppl_matched" else "-"
                k = int(tm["replicates"].max())
                if k > 1:  # random controls over several seeds: mean, with the sd across seeds as error bars
                    lab += f", mean ± sd of {k} seeds"
                ax.errorbar(tm["percent"], tm["value"], yerr=tm["value_sd"] if k > 1 else None, ls=ls, marker=st["marker"],
                            color=st["color"], ms=8 if ls == "none" else 5, capsize=3, label=lab)
            pcts = sorted({p for p in t["percent"].to_list() if p is not None and p > 0})
            if pcts:
                ax.set_xscale("log")
                ax.set_xticks(pcts)
                ax.set_xticklabels([f"{p:g}" for p in pcts])
                ax.minorticks_off()
            ax.set_xlabel("% of neurons per layer (neg_zero)")
            ax.set_ylabel(SUITE_LABEL[suite])
            n_txt = f"n={n_base} {'tokens' if suite == 'ppl' else 'pairs'}" if n_base is not None else "n=?"
            ax.set_title(f"{model} ({_act(architectures, model)}, {finals[model]}): {SUITE_LABEL[suite]}, {n_txt}", fontsize=9)
            if c == 0 and ax.get_legend_handles_labels()[0]:  # an empty panel has nothing to label
                ax.legend(fontsize=7)
    fig.suptitle(f"Zeroing negative pre-activations: Wasserstein neurons vs controls; data: {data_label}")
    fig.tight_layout()
    _save(fig, out)
    return table


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


def _grouped_barh(ax, table: pl.DataFrame, *, key: str, value: str, order: list[str], methods, labels=None):
    k = len(methods)
    height = 0.8 / max(k, 1)
    y = np.arange(len(order))
    for j, method in enumerate(methods):
        t = table.filter(pl.col("method") == method)
        vals = dict(zip(t[key].to_list(), t[value].to_list()))
        xs = [vals.get(g, np.nan) for g in order]
        st = METHOD_STYLE[method]
        ax.barh(y + ((k - 1) / 2 - j) * height, xs, height=height, color=st["color"], label=st["label"])
    ax.set_yticks(y)
    ax.set_yticklabels(labels or order, fontsize=7)
    ax.axvline(0, color="k", lw=0.6)


def _order_by_wn(table: pl.DataFrame, key: str, value: str) -> list[str]:
    """Groups sorted so the largest wn effect is drawn at the top of a barh (ascending list)."""
    wn = table.filter(pl.col("method") == "wn")
    eff = dict(zip(wn[key].to_list(), wn[value].to_list()))
    groups = table[key].unique().to_list()
    return sorted(groups, key=lambda g: (eff.get(g) is None or eff.get(g) != eff.get(g), eff.get(g) or 0.0, g))


def plot_phenomena(out: str | Path, metrics: pl.DataFrame, *, main_percent: float, data_label: str) -> pl.DataFrame:
    """Error increase (points) per BLiMP phenomenon and TSE template: wn vs random vs ppl_matched.

    Returns ``model, checkpoint, suite, level, group, method, set, baseline, value, error_increase, n``.
    """
    table = phenomena_table(metrics, main_percent=main_percent)
    models = table["model"].unique(maintain_order=True).to_list()
    if not models:
        _empty_figure(out, f"no phenomenon-level metrics for the main sets; data: {data_label}")
        return table
    n_max = max(table.filter(pl.col("model") == m)["group"].n_unique() for m in models)
    fig, axes = _grid(len(models), 2, 6.5, max(3.0, 0.22 * n_max + 1.5))
    for r, model in enumerate(models):
        for c, suite in enumerate(("blimp", "tse")):
            ax = axes[r, c]
            t = table.filter((pl.col("model") == model) & (pl.col("suite") == suite))
            if t.height == 0:
                ax.axis("off")
                ax.set_title(f"{model}: no {suite} rows", fontsize=9)
                continue
            order = _order_by_wn(t, "group", "error_increase")
            n_of = dict(zip(t["group"].to_list(), t["n"].to_list()))
            labels = [f"{g} (n={n_of.get(g)})" for g in order]
            methods = [m for m in METHODS if m in set(t["method"].to_list())]
            _grouped_barh(ax, t, key="group", value="error_increase", order=order, methods=methods, labels=labels)
            ax.set_xlabel("error increase (accuracy points, baseline − ablated)")
            what = "BLiMP phenomena" if suite == "blimp" else "TSE templates"
            ax.set_title(f"{model} ({t['checkpoint'][0]}): {what}, n={int(t.filter(pl.col('method') == methods[0])['n'].sum())} pairs", fontsize=9)
            if r == 0 and c == 0:
                ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Where neg_zero at {main_percent:g}% per layer hurts; data: {data_label}")
    fig.tight_layout()
    _save(fig, out)
    return table


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


def plot_pos_surprisal(out: str | Path, surprisal: pl.DataFrame, *, main_percent: float, data_label: str) -> pl.DataFrame:
    """Excess surprisal by POS, sorted by the wn effect; function-word POS in bold red labels."""
    table = pos_excess_surprisal(surprisal, main_percent=main_percent)
    models = table["model"].unique(maintain_order=True).to_list()
    if not models:
        _empty_figure(out, f"no surprisal rows for the main sets; data: {data_label}")
        return table
    n_pos = max(table.filter(pl.col("model") == m)["pos"].n_unique() for m in models)
    fig, axes = _grid(1, len(models), 6.0, max(3.5, 0.3 * n_pos + 1.5))
    for c, model in enumerate(models):
        ax = axes[0, c]
        t = table.filter(pl.col("model") == model)
        order = _order_by_wn(t, "pos", "excess")
        n_of = dict(zip(t["pos"].to_list(), t["n_tokens"].to_list()))
        labels = [f"{p} (n={n_of.get(p)})" for p in order]
        methods = [m for m in METHODS if m in set(t["method"].to_list())]
        _grouped_barh(ax, t, key="pos", value="excess", order=order, methods=methods, labels=labels)
        for lab, p in zip(ax.get_yticklabels(), order):
            if p in FUNCTION_POS:
                lab.set_color("C3")
                lab.set_fontweight("bold")
        ax.set_xlabel("excess surprisal (nats, ablated − baseline), mean over tokens")
        n_tok = int(t.filter(pl.col("method") == methods[0])["n_tokens"].sum())
        ax.set_title(f"{model}: n={n_tok} tagged tokens; bold red = function-word POS", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Excess surprisal by part of speech, neg_zero at {main_percent:g}% per layer; data: {data_label}")
    fig.tight_layout()
    _save(fig, out)
    return table


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


def plot_layerwise(out: str | Path, metrics: pl.DataFrame, *, main_percent: float, data_label: str) -> pl.DataFrame:
    """Heatmaps (phenomenon × layer group) of single-group and cumulative error increase, plus overall lines."""
    table = layerwise_table(metrics, main_percent=main_percent)
    models = table["model"].unique(maintain_order=True).to_list()
    if not models:
        _empty_figure(out, f"no layer-wise conditions; data: {data_label}")
        return table
    terms_max = max(table.filter((pl.col("model") == m) & (pl.col("level") == "linguistics_term"))["term"].n_unique() for m in models)
    fig, axes = _grid(len(models), 3, 5.0, max(3.5, 0.25 * terms_max + 1.5))
    for r, model in enumerate(models):
        t = table.filter(pl.col("model") == model)
        ng = int(t["layer_group"].max()) + 1
        terms = t.filter(pl.col("level") == "linguistics_term")
        term_names = sorted(terms["term"].unique().to_list())
        lim = float(np.nanmax(np.abs(terms["error_increase"].to_numpy()))) if terms.height else 1.0
        lim = lim if lim > 0 and math.isfinite(lim) else 1.0
        for c, kind in enumerate(("single", "cumulative")):
            ax = axes[r, c]
            mat = np.full((len(term_names), ng), np.nan)
            tk = terms.filter(pl.col("kind") == kind)
            idx = {name: i for i, name in enumerate(term_names)}
            for term, g, v in tk.select("term", "layer_group", "error_increase").iter_rows():
                mat[idx[term], g] = v
            im = ax.imshow(mat, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
            ax.set_xticks(range(ng))
            ax.set_xlabel("layer group" + (" (0..g cumulative)" if kind == "cumulative" else " (alone)"))
            ax.set_yticks(range(len(term_names)))
            n_of = dict(zip(tk["term"].to_list(), tk["n"].to_list()))
            ax.set_yticklabels([f"{x} (n={n_of.get(x)})" for x in term_names], fontsize=7)
            ax.set_title(f"{model}: wn neg_zero, {kind} groups", fontsize=9)
            fig.colorbar(im, ax=ax, label="error increase (points)")
        ax = axes[r, 2]
        ov = t.filter(pl.col("level") == "overall")
        n_pairs = _scalar(ov, "n")
        for kind, st in (("single", dict(color="C3", marker="o", label="wn, single group")),
                         ("cumulative", dict(color="C1", marker="D", label="wn, cumulative 0..g")),
                         ("random_single", dict(color="C0", marker="s", label="random, single group"))):
            tk = ov.filter(pl.col("kind") == kind).sort("layer_group")
            if tk.height:
                ax.plot(tk["layer_group"], tk["error_increase"], **st)
        ax.axhline(0, color="k", lw=0.6)
        ax.set_xticks(range(ng))
        ax.set_xlabel("layer group")
        ax.set_ylabel("BLiMP error increase (points)")
        ax.set_title(f"{model}: overall, n={n_pairs} pairs", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(f"Harm across depth, neg_zero at {main_percent:g}% per layer, BLiMP; data: {data_label}")
    fig.tight_layout()
    _save(fig, out)
    return table


def training_table(metrics: pl.DataFrame, cohort_wd: pl.DataFrame | None, *, main_percent: float) -> pl.DataFrame:
    """Per (model, checkpoint): cohort mean WD, BLiMP drops (wn, random) and TSE/BLiMP baseline accuracy."""
    conds = main_conditions(main_percent)
    if cohort_wd is None:
        cohort_wd = pl.DataFrame(schema={"model": pl.String, "checkpoint": pl.String, "step": pl.Int64, "wd": pl.Float64})
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


def plot_training_dynamics(
    out: str | Path, metrics: pl.DataFrame, cohort_wd: pl.DataFrame, *, main_percent: float, data_label: str
) -> pl.DataFrame:
    """Cohort WD vs step, neg_zero harm vs step (wn and random), and cohort WD vs TSE baseline accuracy."""
    table = training_table(metrics, cohort_wd, main_percent=main_percent)
    models = table["model"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    ax_wd, ax_h, ax_s = axes
    pos_steps = [s for s in table["step"].to_list() if s is not None and s > 0]
    linthresh = float(min(pos_steps)) if pos_steps else 1.0
    for k, model in enumerate(models):
        t = table.filter(pl.col("model") == model).sort("step")
        color = f"C{k}"
        nn = _scalar(t.filter(pl.col("n_neurons").is_not_null()), "n_neurons")
        nb = _scalar(t.filter(pl.col("n_blimp").is_not_null()), "n_blimp")
        nt = _scalar(t.filter(pl.col("n_tse").is_not_null()), "n_tse")
        tw = t.filter(pl.col("cohort_wd").is_not_null())
        ax_wd.plot(tw["step"], tw["cohort_wd"], marker="o", color=color, label=f"{model} (n={nn} WNs)")
        th = t.filter(pl.col("wn_drop").is_not_null())
        ax_h.plot(th["step"], th["wn_drop"], marker="o", color=color, label=f"{model}: wn (n={nb} pairs)")
        tr = t.filter(pl.col("random_drop").is_not_null())
        ax_h.plot(tr["step"], tr["random_drop"], marker="s", ls=":", color=color, label=f"{model}: random")
        ts = t.filter(pl.col("cohort_wd").is_not_null() & pl.col("tse_baseline").is_not_null())
        ax_s.scatter(ts["cohort_wd"], ts["tse_baseline"], color=color, label=f"{model} (n={nt} TSE pairs)")
        for s, x, y in ts.select("step", "cohort_wd", "tse_baseline").iter_rows():
            ax_s.annotate(str(s), (x, y), fontsize=6, xytext=(2, 2), textcoords="offset points")
    for ax in (ax_wd, ax_h):
        ax.set_xscale("symlog", linthresh=linthresh)
        ax.set_xlabel("training step (symlog)")
    ax_wd.set_ylabel("mean WD of the final WN cohort")
    ax_wd.set_title("cohort non-Gaussianity over training", fontsize=9)
    ax_h.axhline(0, color="k", lw=0.6)
    ax_h.set_ylabel("BLiMP drop (points) from neg_zero")
    ax_h.set_title(f"ablation harm over training ({main_percent:g}% per layer)", fontsize=9)
    ax_s.set_xlabel("mean WD of the cohort")
    ax_s.set_ylabel("TSE baseline accuracy")
    ax_s.set_title("cohort WD vs syntax (one point per checkpoint, label = step)", fontsize=9)
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(f"Training dynamics of the Wasserstein-neuron cohort; models: {', '.join(models) or 'none'}; data: {data_label}")
    fig.tight_layout()
    _save(fig, out)
    return table


def dissociation_table(metrics: pl.DataFrame, *, main_percent: float) -> pl.DataFrame:
    """Per (model, method) at the final checkpoint: BLiMP drop and non-syntactic drop (points), perplexity."""
    finals = final_checkpoints(metrics)
    conds = main_conditions(main_percent)
    rows = []
    for model, ck in finals.items():
        _, n_b = _overall(metrics, model, ck, "baseline", "blimp")
        _, n_ns = _overall(metrics, model, ck, "baseline", "nonsyntactic")
        for method, cond in conds.items():
            bd = _drop(metrics, model, ck, cond, "blimp")
            nd = _drop(metrics, model, ck, cond, "nonsyntactic")
            if bd is None and nd is None:
                continue
            ppl, _ = _overall(metrics, model, ck, cond, "ppl")
            rows.append(dict(model=model, checkpoint=ck, method=method, condition=cond, blimp_drop=bd, nonsyn_drop=nd,
                             ppl=ppl, n_blimp=n_b, n_nonsyn=n_ns))
    schema = {"model": pl.String, "checkpoint": pl.String, "method": pl.String, "condition": pl.String,
              "blimp_drop": pl.Float64, "nonsyn_drop": pl.Float64, "ppl": pl.Float64, "n_blimp": pl.Int64, "n_nonsyn": pl.Int64}
    return pl.DataFrame(rows, schema=schema)


def plot_dissociation(out: str | Path, metrics: pl.DataFrame, *, main_percent: float, data_label: str) -> pl.DataFrame:
    """Syntactic (BLiMP) vs non-syntactic accuracy drop per set; points below the diagonal hurt syntax more."""
    table = dissociation_table(metrics, main_percent=main_percent)
    fig, ax = plt.subplots(figsize=(6.2, 5.6))
    models = table["model"].unique(maintain_order=True).to_list()
    for k, model in enumerate(models):
        t = table.filter(pl.col("model") == model)
        for method, bd, nd, nb, nn in t.select("method", "blimp_drop", "nonsyn_drop", "n_blimp", "n_nonsyn").iter_rows():
            if bd is None or nd is None:
                continue
            st = METHOD_STYLE[method]
            ax.scatter([bd], [nd], marker=st["marker"], color=f"C{k}", s=60, edgecolor="k",
                       label=f"{model}: {st['label']} (n={nb}/{nn} pairs)")
    vals = [v for v in table["blimp_drop"].to_list() + table["nonsyn_drop"].to_list() if v is not None]
    lo, hi = (min(vals + [0.0]), max(vals + [0.0])) if vals else (0.0, 1.0)
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="0.5", ls="--", lw=1, label="equal damage")
    ax.axhline(0, color="k", lw=0.5)
    ax.axvline(0, color="k", lw=0.5)
    ax.set_xlabel("syntactic damage: BLiMP accuracy drop (points)")
    ax.set_ylabel("non-syntactic damage: accuracy drop (points)")
    ax.set_title(f"Double dissociation, neg_zero at {main_percent:g}% per layer\nmodels: {', '.join(models) or 'none'}; data: {data_label}",
                 fontsize=9)
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    _save(fig, out)
    return table


# --------------------------------------------------------------------------- claims

CLAIMS = {
    "C1": "neg_zero on WNs drops BLiMP accuracy more than on random neurons (same count per layer)",
    "C2": "neg_zero on WNs drops BLiMP accuracy more than a perplexity-matched set",
    "C3": "double dissociation: WNs hurt syntax more than non-syntactic; ppl-matched hurts non-syntactic at least as much as syntax",
    "C4": "WN excess surprisal is larger on function-word POS than on content-word POS",
    "C5": "harm builds across depth: cumulative increase at the last group >= largest single-group increase",
    "C6": "harm grows over training: WN BLiMP drop at the final checkpoint > at the earliest nonzero checkpoint",
    "C7": "cohort WD grows over training (final > step 0)",
    "C8": "WN non-Gaussianity lives in the negative region: mean wd_neg/wd of the top neurons > 0.5",
    "C9": "TSE: neg_zero on WNs drops TSE accuracy more than on random neurons",
}
CLAIM_SCHEMA = {"claim_id": pl.String, "claim": pl.String, "model": pl.String, "metric": pl.String,
                "value": pl.Float64, "control": pl.Float64, "control_sd": pl.Float64, "diff": pl.Float64,
                "ci_low": pl.Float64, "ci_high": pl.Float64, "n_pairs": pl.Int64, "holds": pl.Boolean,
                "note": pl.String}
# claims whose value and control are accuracy differences: "holds" needs the paired bootstrap interval
# of value - control to exclude zero in the paper's direction (C3: its part 1; see claims_table)
BOOTSTRAPPED = ("C1", "C2", "C3", "C5", "C6", "C9")


TOL = 1e-9


def _fmt(v) -> str:
    return "NA" if v is None else f"{v:.4g}"


def _holds(value, control, op) -> bool | None:
    if value is None or control is None or not (math.isfinite(value) and math.isfinite(control)):
        return None
    return bool(op(value, control))


def claims_table(
    metrics: pl.DataFrame,
    surprisal: pl.DataFrame | None,
    cohort_wd: pl.DataFrame | None,
    scores: dict[str, pl.DataFrame] | None,
    *,
    main_percent: float,
    pairs: pl.DataFrame | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> pl.DataFrame:
    """One row per (claim, model); ``holds`` is null (with a note) when an input is missing.

    Drops are accuracy points (100 × (baseline − ablated)); surprisal is in nats. Random controls
    drawn with several seeds are averaged (``control`` is the seed mean, ``control_sd`` the sd
    across seeds, :func:`negdiff.stats.merge_replicates`).

    For the accuracy claims (:data:`BOOTSTRAPPED`), ``diff`` = value − control carries a paired
    bootstrap 95% interval over pairs (``ci_low``, ``ci_high``; ``n_boot`` resamples, ``seed``),
    computed from the per-pair table ``pairs``; the claim holds only when the interval excludes zero
    in the paper's direction (``ci_low > 0``). Without ``pairs`` the interval is null and ``holds``
    falls back to comparing the point values (said in the note).
    """
    from negdiff.scoring import top_neurons
    from negdiff.stats import merge_replicates, pair_arrays, paired_bootstrap

    scores = scores or {}
    if "replicates" not in metrics.columns:
        metrics = merge_replicates(metrics, ["value", "margin"])
    if surprisal is not None and surprisal.height and "replicates" not in surprisal.columns:
        surprisal = merge_replicates(surprisal, ["surprisal"])
    if pairs is not None and "replicates" not in pairs.columns:
        pairs = merge_replicates(pairs, ["correct", "margin"])
    finals = final_checkpoints(metrics)
    conds = main_conditions(main_percent)
    models = _models(metrics, surprisal, cohort_wd) + [m for m in scores if m not in finals]
    models = list(dict.fromkeys(models))
    pos = pos_excess_surprisal(surprisal, main_percent=main_percent) if surprisal is not None and surprisal.height else None
    train = training_table(metrics, cohort_wd, main_percent=main_percent)
    layer = layerwise_table(metrics, main_percent=main_percent) if metrics.height else None

    rows: list[dict] = []

    def add(cid, model, metric, value, control, holds, note, ci=None, control_sd=None):
        """``ci`` = (estimate, low, high, n_pairs) of value − control from the bootstrap, or None."""
        diff = None if value is None or control is None else float(value) - float(control)
        low = high = n = None
        if ci is not None:
            est, low, high, n = ci
            if diff is not None and abs(est - diff) > 1e-6 * max(1.0, abs(diff)):
                raise AssertionError(f"{cid} {model}: per-pair estimate {est} != table difference {diff}")
            holds = None if holds is None else bool(low > 0)
            note = f"{note}; paired bootstrap {n_boot}x over {n} pairs, 95% CI [{low:.3g}, {high:.3g}]"
        elif cid in BOOTSTRAPPED and holds is not None:
            note = f"{note}; no per-pair table: point comparison, no interval"
        rows.append(dict(claim_id=cid, claim=CLAIMS[cid], model=model, metric=metric,
                         value=None if value is None else float(value),
                         control=None if control is None else float(control),
                         control_sd=None if control_sd is None else float(control_sd), diff=diff,
                         ci_low=low, ci_high=high, n_pairs=n, holds=holds, note=note))

    def boot(model, items, statistic):
        """Bootstrap of ``statistic`` over ``items`` = [(suite, checkpoint, condition), ...]; None if a
        pair table row is missing. ``statistic`` gets {suite: {(checkpoint, condition): accuracy}}."""
        if pairs is None:
            return None
        data: dict[str, dict] = {}
        for suite, ck_, cond in items:
            arr = pair_arrays(pairs, model, ck_, suite, [cond])
            if arr is None:
                return None
            data.setdefault(suite, {})[(ck_, cond)] = arr[cond]
        est, low, high = paired_bootstrap(data, statistic, n_boot=n_boot, seed=seed)
        n = sum(len(next(iter(d.values()))) for d in data.values())
        return est, low, high, n

    def rnd_sd(model, ck_, suite):
        """sd over seeds of the random control's drop (points), or None."""
        f = metrics.filter((pl.col("model") == model) & (pl.col("checkpoint") == ck_)
                           & (pl.col("condition") == conds["random"]) & (pl.col("suite") == suite)
                           & (pl.col("level") == "overall"))
        v = _scalar(f, "value_sd")
        k = _scalar(f, "replicates")
        return (None, k) if v is None else (100.0 * v, k)

    # comparisons ignore floating-point noise: equal effects (up to TOL) are not "larger"
    gt = lambda a, b: a > b + TOL  # noqa: E731
    ge = lambda a, b: a >= b - TOL  # noqa: E731

    for model in models:
        ck = finals.get(model)
        have = ck is not None

        # C1 / C9: wn vs random, same count per layer
        for cid, suite in (("C1", "blimp"), ("C9", "tse")):
            wn = _drop(metrics, model, ck, conds["wn"], suite) if have else None
            rnd = _drop(metrics, model, ck, conds["random"], suite) if have else None
            note = f"final checkpoint {ck}" if wn is not None and rnd is not None else \
                f"missing {suite} overall rows for baseline/{conds['wn']}/{conds['random']} at the final checkpoint"
            sd, k = rnd_sd(model, ck, suite) if have else (None, None)
            if k:
                note += f"; random control: mean of {k} seeds"
            ci = None
            if wn is not None and rnd is not None:
                w, r = (ck, conds["wn"]), (ck, conds["random"])
                ci = boot(model, [(suite, *w), (suite, *r)], lambda a, s=suite, w=w, r=r: 100.0 * (a[s][r] - a[s][w]))
            add(cid, model, f"{suite} overall accuracy drop (points): wn@{main_percent:g} vs random@{main_percent:g}",
                wn, rnd, _holds(wn, rnd, gt), note, ci, sd)

        # C2: wn vs ppl_matched
        wn = _drop(metrics, model, ck, conds["wn"], "blimp") if have else None
        pm = _drop(metrics, model, ck, conds["ppl_matched"], "blimp") if have else None
        if pm is None:
            note = f"no ppl_matched results ({conds['ppl_matched']}) for this model"
        else:
            p_wn, _ = _overall(metrics, model, ck, conds["wn"], "ppl")
            p_pm, _ = _overall(metrics, model, ck, conds["ppl_matched"], "ppl")
            p_b, _ = _overall(metrics, model, ck, "baseline", "ppl")
            note = f"perplexity: wn {_fmt(p_wn)}, ppl_matched {_fmt(p_pm)}, baseline {_fmt(p_b)}"
        ci = None
        if wn is not None and pm is not None:
            w, q = (ck, conds["wn"]), (ck, conds["ppl_matched"])
            ci = boot(model, [("blimp", *w), ("blimp", *q)], lambda a, w=w, q=q: 100.0 * (a["blimp"][q] - a["blimp"][w]))
        add("C2", model, "BLiMP overall accuracy drop (points): wn vs ppl_matched", wn, pm, _holds(wn, pm, gt), note, ci)

        # C3: double dissociation; value/control = (syntax drop − non-syntactic drop) for wn / ppl_matched
        def gap(method):
            if not have:
                return None
            b = _drop(metrics, model, ck, conds[method], "blimp")
            n = _drop(metrics, model, ck, conds[method], "nonsyntactic")
            return None if b is None or n is None else b - n

        g_wn, g_pm = gap("wn"), gap("ppl_matched")

        def gap_ci(method):
            """Bootstrap of the (blimp drop - nonsyntactic drop) of one method; suites resampled independently."""
            b, c = (ck, "baseline"), (ck, conds[method])
            return boot(model, [("blimp", *b), ("blimp", *c), ("nonsyntactic", *b), ("nonsyntactic", *c)],
                        lambda a, b=b, c=c: 100.0 * ((a["blimp"][b] - a["blimp"][c]) - (a["nonsyntactic"][b] - a["nonsyntactic"][c])))

        ci_wn = gap_ci("wn") if g_wn is not None else None
        ci_pm = gap_ci("ppl_matched") if g_pm is not None else None
        # with intervals: part 1 needs the wn gap's interval above zero; part 2 fails only when the
        # ppl-matched gap's interval is above zero (syntax significantly more hurt than non-syntactic)
        part1 = None if g_wn is None else (g_wn > TOL if ci_wn is None else ci_wn[1] > 0)
        part2 = None if g_pm is None else (g_pm <= TOL if ci_pm is None else ci_pm[1] <= 0)
        holds = None if part1 is None or part2 is None else bool(part1 and part2)
        missing = [name for name, g in (("wn", g_wn), ("ppl_matched", g_pm)) if g is None]
        note = f"part 1 (wn syntax > non-syntactic): {part1}; part 2 (ppl_matched non-syntactic >= syntax): {part2}"
        if missing:
            note += f"; missing blimp/nonsyntactic rows for {', '.join(missing)}"
        if ci_pm is not None:
            note += f"; ppl_matched gap 95% CI [{ci_pm[1]:.3g}, {ci_pm[2]:.3g}]"
        if ci_wn is not None:  # the interval is of the wn gap itself (value), not of value - control
            note += f"; wn gap paired bootstrap {n_boot}x over {ci_wn[3]} pairs, 95% CI [{ci_wn[1]:.3g}, {ci_wn[2]:.3g}]"
        rows.append(dict(claim_id="C3", claim=CLAIMS["C3"], model=model,
                         metric="BLiMP drop − non-syntactic drop (points): wn (value) vs ppl_matched (control); interval: wn gap",
                         value=g_wn, control=g_pm, control_sd=None, diff=g_wn,
                         ci_low=None if ci_wn is None else ci_wn[1], ci_high=None if ci_wn is None else ci_wn[2],
                         n_pairs=None if ci_wn is None else ci_wn[3], holds=holds,
                         note=note + ("" if ci_wn is not None or holds is None else "; no per-pair table: point comparison")))

        # C4: function vs content POS excess surprisal for wn
        fv = cv = None
        note = "no surprisal for baseline and the wn condition"
        if pos is not None:
            t = pos.filter((pl.col("model") == model) & (pl.col("method") == "wn"))

            def pooled(tags):
                s = t.filter(pl.col("pos").is_in(list(tags)))
                n = int(s["n_tokens"].sum()) if s.height else 0
                return (None, 0) if n == 0 else (float((s["excess"] * s["n_tokens"]).sum() / n), n)

            (fv, nf), (cv, nc) = pooled(FUNCTION_POS), pooled(CONTENT_POS)
            note = f"tokens: function {nf}, content {nc} (mean excess nats, pooled over tokens)"
        add("C4", model, "excess surprisal (nats): function-word POS vs content-word POS, wn", fv, cv, _holds(fv, cv, gt), note)

        # C5: cumulative at last group >= max single group (BLiMP overall)
        cum = sgl = None
        ci = None
        note = "missing layer-wise single/cumulative BLiMP overall rows"
        if layer is not None:
            ov = layer.filter((pl.col("model") == model) & (pl.col("level") == "overall"))
            s = ov.filter(pl.col("kind") == "single")
            c = ov.filter(pl.col("kind") == "cumulative").sort("layer_group")
            if s.height and c.height:
                n_groups = int(s["layer_group"].max()) + 1
                last = c.filter(pl.col("layer_group") == n_groups - 1)
                cum = _scalar(last, "error_increase")
                sgl = float(s["error_increase"].max())
                g_best = int(s.sort("error_increase", descending=True)["layer_group"][0])
                note = f"{n_groups} layer groups; largest single group {g_best}"
                if cum is None:
                    note = f"no all-scope (cumulative last group) row; {n_groups} layer groups"
                else:
                    singles = [(ck, cond_name("neg_zero", set_name("wn", main_percent), f"single:{g}"))
                               for g in sorted(s["layer_group"].to_list())]
                    whole = (ck, conds["wn"])
                    # cum drop - max single drop = min single accuracy - cumulative accuracy
                    ci = boot(model, [("blimp", *x) for x in singles + [whole]],
                              lambda a, singles=singles, whole=whole: 100.0 * (
                                  np.min(np.stack([np.asarray(a["blimp"][x], dtype=float) for x in singles]), axis=0)
                                  - a["blimp"][whole]))
        add("C5", model, "BLiMP error increase (points): cumulative last group vs max single group", cum, sgl, _holds(cum, sgl, ge), note, ci)

        # C6: drop final vs earliest nonzero checkpoint;  C7: cohort WD final vs step 0
        fin = early = None
        ci6 = None
        note6 = "no training-dynamics rows"
        w_fin = w0 = None
        note7 = "no cohort WD table"
        if train is not None:
            t = train.filter(pl.col("model") == model).sort("step")
            if have:
                tf = t.filter(pl.col("checkpoint") == ck)
                fin = _scalar(tf, "wn_drop")
                te = t.filter((pl.col("step") > 0) & (pl.col("checkpoint") != ck) & pl.col("wn_drop").is_not_null())
                early = _scalar(te, "wn_drop")
                note6 = (f"final {ck} vs step {te['step'][0]}" if te.height else
                         "no nonzero checkpoint before the final one with a wn drop")
                if fin is not None and early is not None:
                    ek = te["checkpoint"][0]
                    bf, wf, be, we = (ck, "baseline"), (ck, conds["wn"]), (ek, "baseline"), (ek, conds["wn"])
                    ci6 = boot(model, [("blimp", *x) for x in (bf, wf, be, we)],
                               lambda a, bf=bf, wf=wf, be=be, we=we: 100.0 * (
                                   (a["blimp"][bf] - a["blimp"][wf]) - (a["blimp"][be] - a["blimp"][we])))
                w_fin = _scalar(tf, "cohort_wd")
                tw = t.filter(pl.col("cohort_wd").is_not_null() & (pl.col("checkpoint") != ck))
                w0 = _scalar(tw, "cohort_wd")
                if tw.height == 0:
                    note7 = "no earlier checkpoint with cohort WD"
                elif tw["step"][0] == 0:
                    note7 = f"final {ck} vs step 0 (n={_scalar(tf, 'n_neurons')} neurons)"
                else:
                    note7 = f"no step 0; compared with earliest step {tw['step'][0]}"
        add("C6", model, "BLiMP drop (points) from wn neg_zero: final vs earliest nonzero checkpoint", fin, early, _holds(fin, early, gt), note6, ci6)
        add("C7", model, "mean WD of the final WN cohort: final vs step 0", w_fin, w0, _holds(w_fin, w0, gt), note7)

        # C8: negative-region share of WD among the top main% neurons
        share = None
        note = "no scores table"
        sc = scores.get(model)
        if sc is not None and sc.height:
            top = top_neurons(sc, main_percent).filter(pl.col("wd") > 0)
            if top.height:
                share = float((top["wd_neg"] / top["wd"]).mean())
                note = f"n={top.height} top-{main_percent:g}% neurons (wd > 0)"
            else:
                note = "no top neuron with wd > 0"
        add("C8", model, f"mean wd_neg/wd over the top {main_percent:g}% neurons per layer", share, 0.5, _holds(share, 0.5, gt), note)

    return pl.DataFrame(rows, schema=CLAIM_SCHEMA).sort(["claim_id", "model"])


def write_summary_csv(path: str | Path, table: pl.DataFrame) -> None:
    """Write ``table`` as CSV atomically."""
    with atomic_path(path) as tmp:
        table.write_csv(tmp)
