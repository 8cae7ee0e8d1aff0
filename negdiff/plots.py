"""PDF figures. Every figure states its model, data and n in its title or footer."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from negdiff.architectures import ACTIVATION_LABELS  # noqa: E402
from negdiff.io import atomic_path  # noqa: E402


def save_pdf(fig, out: str | Path) -> None:
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="pdf", bbox_inches="tight")
    plt.close(fig)


def similar_input_pairs(dx_norm: np.ndarray, dy: np.ndarray, *, n: int, similar_quantile: float = 0.1) -> np.ndarray:
    """Indices of the ``n`` pairs with the largest output gap among pairs with similar inputs.

    "Similar" means an input distance at or below the ``similar_quantile`` quantile of all pairs.
    """
    if dx_norm.size == 0:
        return np.zeros(0, dtype=np.int64)
    cutoff = np.quantile(dx_norm, similar_quantile)
    candidates = np.flatnonzero(dx_norm <= cutoff)
    order = np.lexsort((candidates, -dy[candidates]))  # largest gap first, ties by index
    return candidates[order[:n]]


def plot_neuron_example(
    out: str | Path,
    *,
    model: str,
    checkpoint: str,
    layer: int,
    neuron: int,
    wd: float,
    pre_activation: np.ndarray,
    pair_i: np.ndarray,
    pair_j: np.ndarray,
    dx_norm: np.ndarray,
    dy_norm: np.ndarray,
    tokens: list[str],
    pos: list[str | None],
    data_label: str,
    n_pairs_marked: int = 10,
) -> list[dict]:
    """Histogram, marked similar-input pairs (with tokens and POS) and the distance scatter for one neuron.

    Returns the table of marked pairs (also drawn in the figure).
    """
    a = np.asarray(pre_activation, dtype=np.float64)
    dy = np.abs(a[pair_i] - a[pair_j])
    marked = similar_input_pairs(dx_norm, dy, n=n_pairs_marked)
    rows = []
    for k in marked:
        i, j = int(pair_i[k]), int(pair_j[k])
        rows.append(
            {
                "token_a": tokens[i], "pos_a": pos[i] or "-", "y_a": float(a[i]),
                "token_b": tokens[j], "pos_b": pos[j] or "-", "y_b": float(a[j]),
                "dx_norm": float(dx_norm[k]), "dy": float(dy[k]),
            }
        )

    fig = plt.figure(figsize=(13, 9))
    grid = fig.add_gridspec(2, 2, height_ratios=[1, 1.1])
    ax_h = fig.add_subplot(grid[0, 0])
    ax_s = fig.add_subplot(grid[0, 1])
    ax_t = fig.add_subplot(grid[1, :])

    ax_h.hist(a, bins=120, color="0.35")
    ax_h.axvline(0.0, color="k", lw=0.8, ls=":")
    colors = plt.cm.tab10(np.arange(len(rows)) % 10)
    for c, r in zip(colors, rows):
        ax_h.plot([r["y_a"], r["y_b"]], [0, 0], marker="|", ms=14, mew=2, color=c)
    ax_h.set_xlabel("pre-activation")
    ax_h.set_ylabel("tokens")
    ax_h.set_title(f"histogram, n={a.size} tokens; marks: {len(rows)} similar-input pairs")

    dyn = dy_norm[:, 0] if dy_norm.ndim == 2 else dy_norm  # the one plotted neuron
    ax_s.scatter(dx_norm, dyn, s=3, alpha=0.3, color="0.4", rasterized=True)
    ax_s.scatter(dx_norm[marked], dyn[marked], s=30, color=colors[: len(marked)], zorder=3)
    ax_s.set_xlabel("input distance ||Δx|| / max ||Δx||")
    ax_s.set_ylabel("output distance |Δy| / median |Δy|")
    ax_s.set_title(f"{dx_norm.size} random token pairs")

    ax_t.axis("off")
    cell = [
        [r["token_a"], r["pos_a"], f"{r['y_a']:.2f}", r["token_b"], r["pos_b"], f"{r['y_b']:.2f}", f"{r['dx_norm']:.3f}", f"{r['dy']:.2f}"]
        for r in rows
    ]
    if cell:
        table = ax_t.table(
            cellText=cell,
            colLabels=["token A", "POS A", "y A", "token B", "POS B", "y B", "||Δx||/max", "|Δy|"],
            loc="upper center",
            cellColours=[[tuple(c[:3]) + (0.25,)] * 8 for c in colors[: len(cell)]],
        )
        table.auto_set_font_size(False)
        table.set_fontsize(9)
        table.scale(1, 1.3)
    fig.suptitle(
        f"{model} ({checkpoint}), layer {layer}, neuron {neuron}: top-WD neuron of the layer, WD={wd:.3f}\n"
        f"data: {data_label}"
    )
    save_pdf(fig, out)
    return rows


def negative_region_summary(scores: pl.DataFrame, percent: float) -> pl.DataFrame:
    """Per layer: mean WD and negative-region share of WD, for the top-``percent``% neurons and for all."""
    from negdiff.scoring import top_neurons

    top = top_neurons(scores, percent)

    def agg(df: pl.DataFrame, tag: str) -> pl.DataFrame:
        return df.group_by("layer").agg(
            pl.len().alias(f"n_{tag}"),
            pl.col("wd").mean().alias(f"wd_{tag}"),
            (pl.col("wd_neg").sum() / pl.col("wd").sum()).alias(f"neg_share_{tag}"),
            pl.col("frac_negative").mean().alias(f"frac_negative_{tag}"),
        )

    return agg(top, "top").join(agg(scores, "all"), on="layer").sort("layer")


def plot_negative_region(
    out: str | Path,
    tables: dict[str, pl.DataFrame],
    *,
    architectures: dict[str, str],
    percent: float,
    data_label: str,
) -> pl.DataFrame:
    """WD of the top-p% neurons per layer and the share of it from the negative pre-activation region."""
    summaries = []
    fig, (ax_wd, ax_neg) = plt.subplots(1, 2, figsize=(12, 4.5))
    for k, (model, scores) in enumerate(tables.items()):
        s = negative_region_summary(scores, percent).with_columns(pl.lit(model).alias("model"))
        summaries.append(s)
        act = ACTIVATION_LABELS.get(architectures.get(model, ""), "?")
        label = f"{model} ({act}, n={int(s['n_top'][0])}/{int(s['n_all'][0])} neurons per layer)"
        color = f"C{k}"
        ax_wd.plot(s["layer"], s["wd_top"], marker="o", color=color, label=label)
        ax_wd.plot(s["layer"], s["wd_all"], ls=":", color=color)
        ax_neg.plot(s["layer"], s["neg_share_top"], marker="o", color=color, label=label)
        ax_neg.plot(s["layer"], s["neg_share_all"], ls=":", color=color)
    ax_wd.set_xlabel("layer")
    ax_wd.set_ylabel("mean WD to N(0,1)")
    ax_wd.set_title(f"top {percent:g}% neurons by WD (solid) vs all (dotted)")
    ax_neg.set_xlabel("layer")
    ax_neg.set_ylabel("share of WD from negative pre-activations")
    ax_neg.set_ylim(0, 1)
    ax_neg.axhline(0.5, color="0.7", lw=0.8)
    ax_neg.set_title("where the non-Gaussianity lives")
    ax_neg.legend(fontsize=8, loc="lower left")
    fig.suptitle(f"Negative region of Wasserstein neurons; data: {data_label}")
    fig.tight_layout()
    save_pdf(fig, out)
    return pl.concat(summaries) if summaries else pl.DataFrame()
