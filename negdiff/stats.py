"""Statistics over evaluation tables: random-control replicates and paired bootstrap intervals.

- :func:`merge_replicates` folds the random controls drawn with several seeds (sets ``random@p``,
  ``random@p#1``, ...) into one condition per family, with the mean value, its standard deviation
  across seeds and the number of seeds. Per-pair tables get the mean correctness over seeds (a
  fraction), so a comparison with "the random control" is a comparison with its seed average.
- :func:`paired_bootstrap` gives a percentile interval for a statistic of per-pair accuracies. Pairs
  are resampled with replacement, the same resample for every condition of a suite, so differences
  between conditions are *paired*: each resample compares the conditions on the same pairs. Suites
  are resampled independently of each other.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import polars as pl

from negdiff.conditions import set_family


def family_condition(name: str) -> str:
    """``"neg_zero|random@1#2|all"`` -> ``"neg_zero|random@1|all"``; other names unchanged."""
    if "|" not in name:
        return name
    intervention, set_, scope = name.split("|")
    return f"{intervention}|{set_family(set_)}|{scope}"


def merge_replicates(table: pl.DataFrame, values: list[str]) -> pl.DataFrame:
    """Average the ``values`` columns over the seed replicates of each random-control condition.

    Rows are grouped by every other column, after mapping ``condition`` (and ``set``, when present)
    to its family. Adds ``{v}_sd`` (population sd over replicates; 0 for a single one, or for
    non-random conditions) for the first value column and ``replicates`` (rows merged). Row order
    follows first appearance."""
    if table.height == 0:
        return table.with_columns(pl.lit(None, dtype=pl.Float64).alias(f"{values[0]}_sd"),
                                  pl.lit(None, dtype=pl.Int64).alias("replicates"))
    mapped = table.with_columns(
        pl.col("condition").map_elements(family_condition, return_dtype=pl.String),
        *([pl.col("set").map_elements(set_family, return_dtype=pl.String)] if "set" in table.columns else []),
    )
    keys = [c for c in table.columns if c not in values]
    first = values[0]
    out = mapped.group_by(keys, maintain_order=True).agg(
        *[pl.col(v).cast(pl.Float64).mean() for v in values],
        pl.col(first).cast(pl.Float64).std(ddof=0).fill_null(0.0).alias(f"{first}_sd"),
        pl.len().cast(pl.Int64).alias("replicates"),
    )
    return out.select(table.columns + [f"{first}_sd", "replicates"])


def paired_bootstrap(
    suites: Mapping[str, Mapping[str, np.ndarray]],
    statistic: Callable[[dict[str, dict[str, np.ndarray]]], np.ndarray],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    chunk: int = 250,
) -> tuple[float, float, float]:
    """``(estimate, low, high)``: a statistic of per-pair accuracies and its percentile interval.

    ``suites[suite][condition]`` is a float array of per-pair correctness (0/1, or a mean over
    replicates), the same pairs in the same order for every condition of a suite. ``statistic``
    receives ``{suite: {condition: accuracy}}`` and must be vectorised: during resampling each
    accuracy is an array over resamples (use numpy operations such as ``np.maximum``). Resamples
    draw each suite's pair indices with ``numpy.random.default_rng(seed)``, ``chunk`` at a time.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    arrays: dict[str, dict[str, np.ndarray]] = {}
    for suite, conds in suites.items():
        arrs = {c: np.asarray(v, dtype=np.float64) for c, v in conds.items()}
        sizes = {a.shape for a in arrs.values()}
        if len(sizes) != 1 or len(next(iter(sizes))) != 1 or next(iter(sizes))[0] == 0:
            raise ValueError(f"suite {suite}: conditions need equal-length, non-empty 1-d pair arrays, got {sizes}")
        arrays[suite] = arrs
    estimate = float(statistic({s: {c: a.mean() for c, a in conds.items()} for s, conds in arrays.items()}))
    rng = np.random.default_rng(seed)
    stats: list[np.ndarray] = []
    done = 0
    while done < n_boot:
        b = min(chunk, n_boot - done)
        means = {}
        for suite, conds in arrays.items():
            n = len(next(iter(conds.values())))
            idx = rng.integers(0, n, size=(b, n))
            means[suite] = {c: a[idx].mean(axis=1) for c, a in conds.items()}
        stats.append(np.broadcast_to(np.asarray(statistic(means), dtype=np.float64), (b,)))
        done += b
    dist = np.concatenate(stats)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(dist, [alpha, 1 - alpha])
    return estimate, float(low), float(high)


def pair_arrays(pairs: pl.DataFrame, model: str, checkpoint: str, suite: str,
                conditions: list[str]) -> dict[str, np.ndarray] | None:
    """Per-pair correctness of ``conditions`` on one suite, aligned by pair index (None if any is missing)."""
    sub = pairs.filter((pl.col("model") == model) & (pl.col("checkpoint") == checkpoint) & (pl.col("suite") == suite))
    out = {}
    for c in conditions:
        rows = sub.filter(pl.col("condition") == c).sort("pair")
        if rows.height == 0:
            return None
        out[c] = rows["correct"].cast(pl.Float64).to_numpy()
    if len({len(v) for v in out.values()}) != 1:
        raise ValueError(f"{model} {checkpoint} {suite}: conditions {conditions} have different pair counts")
    return out
