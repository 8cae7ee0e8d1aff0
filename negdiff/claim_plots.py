"""Evaluation-stage figures: one PDF per claim figure, each stating its models, data and n.

Every function writes one PDF atomically (:func:`negdiff.plots.save_pdf`) and returns the tidy polars
table it plotted (from :mod:`negdiff.claim_tables`), so tests can check the numbers behind each mark.
The verdict forest plot is :func:`plot_claims`.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from negdiff.architectures import ACTIVATION_LABELS  # noqa: E402
from negdiff.claim_tables import (  # noqa: E402
    METHODS,
    ablation_table,
    dissociation_table,
    final_checkpoints,
    layerwise_table,
    overall_value,
    phenomena_table,
    pos_excess_surprisal,
    scalar,
    training_table,
)
from negdiff.plots import save_pdf  # noqa: E402
from negdiff.pos import FUNCTION_POS  # noqa: E402

METHOD_STYLE = {
    "wn": dict(color="C3", marker="o", label="Wasserstein neurons"),
    "random": dict(color="C0", marker="s", label="random (same count per layer)"),
    "ppl_matched": dict(color="C2", marker="^", label="perplexity-matched"),
}

SUITE_LABEL = {"ppl": "perplexity", "blimp": "BLiMP accuracy", "tse": "TSE accuracy", "nonsyntactic": "non-syntactic accuracy"}



def activation_label(architectures: dict[str, str] | None, model: str) -> str:
    return ACTIVATION_LABELS.get((architectures or {}).get(model, ""), "?")


def grid(nrows: int, ncols: int, w: float, h: float):
    fig, axes = plt.subplots(max(nrows, 1), ncols, figsize=(w * ncols, h * max(nrows, 1)), squeeze=False)
    return fig, axes


def empty_figure(out, title: str) -> None:
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, title, ha="center", va="center", wrap=True)
    save_pdf(fig, out)


def grouped_barh(ax, table: pl.DataFrame, *, key: str, value: str, order: list[str], methods, labels=None):
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


def order_by_wn(table: pl.DataFrame, key: str, value: str) -> list[str]:
    """Groups sorted so the largest wn effect is drawn at the top of a barh (ascending list)."""
    wn = table.filter(pl.col("method") == "wn")
    eff = dict(zip(wn[key].to_list(), wn[value].to_list()))
    groups = table[key].unique().to_list()
    return sorted(groups, key=lambda g: (eff.get(g) is None or eff.get(g) != eff.get(g), eff.get(g) or 0.0, g))


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
    the unablated baseline. A set scored on a nested tier of the pairs is drawn at the baseline minus
    its drop on its own pairs (``shown``; :func:`negdiff.claim_tables.ablation_table`). Returns one row
    per (model, suite, set): ``model, checkpoint, suite, method, set, percent, value, baseline, n,
    n_neurons, shown``.
    """
    finals = final_checkpoints(metrics)
    suites = ("ppl", "blimp", "tse")
    table = ablation_table(metrics, main_percent=main_percent, ppl_matched_m=ppl_matched_m)

    models = list(finals)
    if not models:
        empty_figure(out, f"no metrics; data: {data_label}")
        return table
    fig, axes = grid(len(models), 3, 4.6, 3.6)
    for r, model in enumerate(models):
        for c, suite in enumerate(suites):
            ax = axes[r, c]
            t = table.filter((pl.col("model") == model) & (pl.col("suite") == suite))
            b, n_base = overall_value(metrics, model, finals[model], "baseline", suite)
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
                ax.errorbar(tm["percent"], tm["shown"], yerr=tm["value_sd"] if k > 1 else None, ls=ls, marker=st["marker"],
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
            nested = sorted({n for n in t["n"].to_list() if n is not None and n != n_base})
            if nested:  # sets scored on a nested tier of the pairs (negdiff.tiers)
                n_txt += f" ({', '.join(map(str, nested))} for the nested tier)"
            ax.set_title(f"{model} ({activation_label(architectures, model)}, {finals[model]}): {SUITE_LABEL[suite]}, {n_txt}", fontsize=9)
            if c == 0 and ax.get_legend_handles_labels()[0]:  # an empty panel has nothing to label
                ax.legend(fontsize=7)
    fig.suptitle(f"Zeroing negative pre-activations: Wasserstein neurons vs controls; data: {data_label}")
    fig.tight_layout()
    save_pdf(fig, out)
    return table


def plot_phenomena(out: str | Path, metrics: pl.DataFrame, *, main_percent: float, data_label: str) -> pl.DataFrame:
    """Error increase (points) per BLiMP phenomenon and TSE template: wn vs random vs ppl_matched.

    Returns ``model, checkpoint, suite, level, group, method, set, baseline, value, error_increase, n``.
    """
    table = phenomena_table(metrics, main_percent=main_percent)
    models = table["model"].unique(maintain_order=True).to_list()
    if not models:
        empty_figure(out, f"no phenomenon-level metrics for the main sets; data: {data_label}")
        return table
    n_max = max(table.filter(pl.col("model") == m)["group"].n_unique() for m in models)
    fig, axes = grid(len(models), 2, 6.5, max(3.0, 0.22 * n_max + 1.5))
    for r, model in enumerate(models):
        for c, suite in enumerate(("blimp", "tse")):
            ax = axes[r, c]
            t = table.filter((pl.col("model") == model) & (pl.col("suite") == suite))
            if t.height == 0:
                ax.axis("off")
                ax.set_title(f"{model}: no {suite} rows", fontsize=9)
                continue
            order = order_by_wn(t, "group", "error_increase")
            n_of = dict(zip(t["group"].to_list(), t["n"].to_list()))
            labels = [f"{g} (n={n_of.get(g)})" for g in order]
            methods = [m for m in METHODS if m in set(t["method"].to_list())]
            grouped_barh(ax, t, key="group", value="error_increase", order=order, methods=methods, labels=labels)
            ax.set_xlabel("error increase (accuracy points, baseline − ablated)")
            what = "BLiMP phenomena" if suite == "blimp" else "TSE templates"
            ax.set_title(f"{model} ({t['checkpoint'][0]}): {what}, n={int(t.filter(pl.col('method') == methods[0])['n'].sum())} pairs", fontsize=9)
            if r == 0 and c == 0:
                ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Where neg_zero at {main_percent:g}% per layer hurts; data: {data_label}")
    fig.tight_layout()
    save_pdf(fig, out)
    return table


def plot_pos_surprisal(out: str | Path, surprisal: pl.DataFrame, *, main_percent: float, data_label: str) -> pl.DataFrame:
    """Excess surprisal by POS, sorted by the wn effect; function-word POS in bold red labels."""
    table = pos_excess_surprisal(surprisal, main_percent=main_percent)
    models = table["model"].unique(maintain_order=True).to_list()
    if not models:
        empty_figure(out, f"no surprisal rows for the main sets; data: {data_label}")
        return table
    n_pos = max(table.filter(pl.col("model") == m)["pos"].n_unique() for m in models)
    fig, axes = grid(1, len(models), 6.0, max(3.5, 0.3 * n_pos + 1.5))
    for c, model in enumerate(models):
        ax = axes[0, c]
        t = table.filter(pl.col("model") == model)
        order = order_by_wn(t, "pos", "excess")
        n_of = dict(zip(t["pos"].to_list(), t["n_tokens"].to_list()))
        labels = [f"{p} (n={n_of.get(p)})" for p in order]
        methods = [m for m in METHODS if m in set(t["method"].to_list())]
        grouped_barh(ax, t, key="pos", value="excess", order=order, methods=methods, labels=labels)
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
    save_pdf(fig, out)
    return table


def plot_layerwise(out: str | Path, metrics: pl.DataFrame, *, main_percent: float, data_label: str) -> pl.DataFrame:
    """Heatmaps (phenomenon × layer group) of single-group and cumulative error increase, plus overall lines."""
    table = layerwise_table(metrics, main_percent=main_percent)
    models = table["model"].unique(maintain_order=True).to_list()
    if not models:
        empty_figure(out, f"no layer-wise conditions; data: {data_label}")
        return table
    terms_max = max(table.filter((pl.col("model") == m) & (pl.col("level") == "linguistics_term"))["term"].n_unique() for m in models)
    fig, axes = grid(len(models), 3, 5.0, max(3.5, 0.25 * terms_max + 1.5))
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
        n_pairs = scalar(ov, "n")
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
    save_pdf(fig, out)
    return table


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
        nn = scalar(t.filter(pl.col("n_neurons").is_not_null()), "n_neurons")
        nb = scalar(t.filter(pl.col("n_blimp").is_not_null()), "n_blimp")
        nt = scalar(t.filter(pl.col("n_tse").is_not_null()), "n_tse")
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
    save_pdf(fig, out)
    return table


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
    save_pdf(fig, out)
    return table



VERDICT_COLOR = {"holds": "C2", "absent": "C0", "inconclusive": "C1", "n/a": "0.5"}


def verdict_rows(summary: pl.DataFrame) -> pl.DataFrame:
    """The forest plot's rows: every summary row, plus one margin row per accuracy claim (unit nats)."""
    main = summary.select(
        pl.col("claim_id"), "model", "unit", "diff", "ci_low", "ci_high", "smallest_effect", "verdict", "reason", "n",
        pl.lit("").alias("kind"))
    margin = summary.filter(pl.col("margin_verdict").is_not_null()).select(
        pl.col("claim_id"), "model", pl.lit("nats").alias("unit"), pl.col("margin_diff").alias("diff"),
        pl.col("margin_ci_low").alias("ci_low"), pl.col("margin_ci_high").alias("ci_high"),
        pl.lit(None, dtype=pl.Float64).alias("smallest_effect"), pl.col("margin_verdict").alias("verdict"),
        pl.lit("log-prob margin companion").alias("reason"), "n", pl.lit(" (margin)").alias("kind"))
    return pl.concat([main, margin], how="vertical_relaxed")


def plot_claims(out: str | Path, summary: pl.DataFrame, *, data_label: str, margin_smallest: float | None = None) -> pl.DataFrame:
    """Forest plot of ``summary.csv``: one row per claim and model, one panel per unit.

    Each row shows the effect in the paper's direction with its 95% interval, the band below the
    smallest effect of interest shaded, and the verdict (or the n/a reason) beside it. Returns the
    plotted rows (:func:`verdict_rows`)."""
    rows = verdict_rows(summary)
    if margin_smallest is not None:
        rows = rows.with_columns(pl.when(pl.col("kind") != "").then(pl.lit(float(margin_smallest)))
                                 .otherwise(pl.col("smallest_effect")).alias("smallest_effect"))
    units = [u for u in ("points", "nats", "WD", "share") if u in set(rows["unit"].to_list())]
    if not units:
        empty_figure(out, f"no claims; data: {data_label}")
        return rows
    sizes = [rows.filter(pl.col("unit") == u).height for u in units]
    fig, axes = plt.subplots(len(units), 1, figsize=(10, 0.32 * sum(sizes) + 1.2 * len(units) + 0.8),
                             gridspec_kw={"height_ratios": [max(s, 1) for s in sizes]}, squeeze=False)
    for ax, unit in zip(axes[:, 0], units):
        t = rows.filter(pl.col("unit") == unit)
        y = np.arange(t.height)[::-1]
        sesoi = t["smallest_effect"].drop_nulls()
        if sesoi.len():
            ax.axvspan(-float(sesoi.max()), float(sesoi.max()), color="0.9", zorder=0,
                       label=f"|effect| < smallest effect of interest ({float(sesoi.max()):g} {unit})")
        ax.axvline(0, color="k", lw=0.7)
        for yi, r in zip(y, t.iter_rows(named=True)):
            color = VERDICT_COLOR.get(r["verdict"], "k")
            if r["diff"] is not None and r["ci_low"] is not None and math.isfinite(r["ci_low"]):
                ax.errorbar([r["diff"]], [yi], xerr=[[r["diff"] - r["ci_low"]], [r["ci_high"] - r["diff"]]],
                            fmt="o", color=color, capsize=3, ms=4)
            text = r["verdict"] if r["verdict"] != "n/a" else f"n/a: {(r['reason'] or '')[:60]}"
            ax.annotate(text, (1.01, yi), xycoords=("axes fraction", "data"), fontsize=7, color=color, va="center")
        ax.set_yticks(y)
        ax.set_yticklabels([f"{r['claim_id']}{r['kind']} · {r['model']}" + (f" (n={r['n']})" if r["n"] is not None else "")
                            for r in t.iter_rows(named=True)], fontsize=7)
        ax.set_ylim(-0.7, t.height - 0.3)
        ax.set_xlabel(f"effect in the paper's direction ({unit}), 95% interval")
        if sesoi.len():
            ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(f"Claims: estimate, 95% interval and verdict; data: {data_label}", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    save_pdf(fig, out)
    return rows
