"""Sample sizes per tier of condition: the decisive conditions on every sampled pair, the rest on a nested tier.

The main claims (C1, C2, C3, C6, C9) compare the baseline with ``neg_zero`` over all layers on the sets of
the main percent: ``wn@main``, every seed of ``random@main`` and ``ppl_matched@main``. Those conditions
(:func:`decisive`) are scored on the whole pair sample (``evaluation.pairs_per_paradigm``). Every other
condition (the sweep over percents, the other operations, the layer groups) is scored on the first
``evaluation.secondary_pairs_per_paradigm`` pairs of each paradigm's draw
(:func:`negdiff.suites.sample_pairs` with ``first``): a subsample nested in the main one, so that every
comparison stays paired. A claim that compares conditions of both tiers is computed on the pairs they
share (:meth:`negdiff.claim_data.PairData.common`). ``null`` sizes keep one tier: every condition on
the whole sample, as without tiers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import polars as pl

from negdiff.conditions import BASELINE, PAIRED_BASELINE, Condition, parse_set

__all__ = ["Tiers", "decisive", "split_tiers", "tier_suites", "evaluate_tiers"]


@dataclass(frozen=True)
class Tiers:
    """The pair samples of one evaluation: ``main`` (suite -> pairs), the ``nested`` tier (or None: one
    tier) and, per suite, the position in ``main`` of each nested pair (``positions``)."""

    main: dict[str, list[dict]]
    nested: dict[str, list[dict]] | None = None
    positions: dict[str, np.ndarray] | None = None


def decisive(cond: Condition, main_percent: float) -> bool:
    """Whether ``cond`` decides a main claim: the baseline, or neg_zero over all layers on a set of the
    main percent (wn, any random seed, ppl_matched)."""
    if cond.name == BASELINE.name:
        return True
    if cond.intervention != "neg_zero" or cond.scope != "all":
        return False
    return parse_set(cond.set)[1] == float(main_percent)


def split_tiers(conditions: list[Condition], main_percent: float) -> tuple[list[Condition], list[Condition]]:
    """(decisive conditions, the others), each in the given order."""
    main = [c for c in conditions if decisive(c, main_percent)]
    return main, [c for c in conditions if not decisive(c, main_percent)]


def tier_suites(loaded: Mapping[str, list[dict]], evaluation: Mapping[str, Any]) -> Tiers:
    """The main sample of every suite and, when a suite has a secondary size, the nested tier."""
    from negdiff.suites import sample_indices

    per, small, seed = evaluation["pairs_per_paradigm"], evaluation.get("secondary_pairs_per_paradigm") or {}, evaluation["pairs_seed"]
    idx = {name: sample_indices(pairs, per[name], seed=seed) for name, pairs in loaded.items()}
    main = {name: [loaded[name][k] for k in ks] for name, ks in idx.items()}
    if not any(small.get(name) for name in loaded):
        return Tiers(main)
    nested, positions = {}, {}
    for name, pairs in loaded.items():
        sub = sample_indices(pairs, per[name], seed=seed, first=small[name]) if small.get(name) else idx[name]
        nested[name] = [pairs[k] for k in sub]
        positions[name] = np.searchsorted(np.asarray(idx[name], dtype=np.int64), np.asarray(sub, dtype=np.int64))
    return Tiers(main, nested, positions)


def _on_main_pairs(pairs: pl.DataFrame, positions: Mapping[str, np.ndarray]) -> pl.DataFrame:
    """A nested run's pairs table with each ``pair`` renumbered to its position in the main sample."""
    parts = [g.with_columns(pl.Series("pair", positions[suite][g["pair"].to_numpy()], dtype=pl.Int64))
             for (suite,), g in pairs.group_by(["suite"], maintain_order=True)]
    return pl.concat(parts, how="vertical") if parts else pairs


def _with_paired_baseline(metrics: pl.DataFrame) -> pl.DataFrame:
    """A nested run's metrics without its baseline rows, each other row carrying the baseline's value on
    the same pairs and group as :data:`PAIRED_BASELINE`."""
    keys = ["suite", "level", "group"]
    is_base = pl.col("condition") == BASELINE.name
    base = metrics.filter(is_base).select(*keys, pl.col("value").alias(PAIRED_BASELINE))
    return metrics.filter(~is_base).join(base, on=keys, how="left", maintain_order="left")


def evaluate_tiers(model, tokenizer, tiers: Tiers, conditions: list[Condition], selection, *, main_percent: float,
                   prepend_bos: bool, batch_size: int, empty_sets=()) -> dict[str, pl.DataFrame]:
    """:func:`negdiff.sweep.evaluate_conditions` on the decisive conditions with the main pairs and on
    the others with the nested ones (one call on the main pairs for all with one tier); the metrics and
    pairs tables of both, concatenated.

    The nested run's ``pair`` numbers are positions in the main sample (the same pair, the same number,
    in both tiers), and its metric rows carry :data:`PAIRED_BASELINE`: the baseline is scored on the
    nested pairs too (free when the sweep replays from the baseline's block outputs), so that a figure's
    drop of a nested condition compares it with the baseline on its own pairs. Its pairs rows are left
    out: the main tier's baseline has them."""
    from negdiff.sweep import evaluate_conditions, prepare_eval_data

    def run(suites, conds):
        data = prepare_eval_data(tokenizer, suites=suites, ppl_text=None, surprisal_text=None, surprisal_pos=None,
                                 ppl_tokens=0, surprisal_tokens=0, window=None, stride=None, prepend_bos=prepend_bos)
        return evaluate_conditions(model, data, conds, selection, batch_size=batch_size, empty_sets=empty_sets)

    if tiers.nested is None:
        return run(tiers.main, conditions)
    first, rest = split_tiers(conditions, main_percent)
    main = run(tiers.main, first)
    if not rest:
        return {k: main[k] for k in ("metrics", "pairs")}
    nested = run(tiers.nested, [BASELINE, *rest])
    pairs = _on_main_pairs(nested["pairs"].filter(pl.col("condition") != BASELINE.name), tiers.positions)
    return {"metrics": pl.concat([main["metrics"], _with_paired_baseline(nested["metrics"])], how="diagonal"),
            "pairs": pl.concat([main["pairs"], pairs], how="vertical")}
