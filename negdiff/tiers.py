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

from typing import Any, Mapping

import polars as pl

from negdiff.conditions import BASELINE, Condition, parse_set

__all__ = ["decisive", "split_tiers", "tier_suites", "evaluate_tiers"]


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


def tier_suites(loaded: Mapping[str, list[dict]], evaluation: Mapping[str, Any]
                ) -> tuple[dict[str, list[dict]], dict[str, list[dict]] | None]:
    """(the main sample of every suite, the nested tier's, or None when no suite has a secondary size)."""
    from negdiff.suites import sample_pairs

    per, small, seed = evaluation["pairs_per_paradigm"], evaluation.get("secondary_pairs_per_paradigm") or {}, evaluation["pairs_seed"]
    main = {name: sample_pairs(pairs, per[name], seed=seed) for name, pairs in loaded.items()}
    if not any(small.get(name) for name in loaded):
        return main, None
    nested = {name: sample_pairs(pairs, per[name], seed=seed, first=small[name]) if small.get(name) else main[name]
              for name, pairs in loaded.items()}
    return main, nested


def evaluate_tiers(model, tokenizer, main: Mapping[str, list[dict]], nested: Mapping[str, list[dict]] | None,
                   conditions: list[Condition], selection, *, main_percent: float, prepend_bos: bool,
                   batch_size: int, empty_sets=()) -> dict[str, pl.DataFrame]:
    """:func:`negdiff.sweep.evaluate_conditions` on the decisive conditions with the ``main`` pairs and on
    the others with the ``nested`` ones (one call on ``main`` for all when ``nested`` is None); the
    metrics and pairs tables of both, concatenated."""
    from negdiff.sweep import evaluate_conditions, prepare_eval_data

    def run(suites, conds):
        data = prepare_eval_data(tokenizer, suites=suites, ppl_text=None, surprisal_text=None, surprisal_pos=None,
                                 ppl_tokens=0, surprisal_tokens=0, window=None, stride=None, prepend_bos=prepend_bos)
        return evaluate_conditions(model, data, conds, selection, batch_size=batch_size, empty_sets=empty_sets)

    if nested is None:
        return run(main, conditions)
    first, rest = split_tiers(conditions, main_percent)
    tables = [run(main, first)] + ([run(nested, rest)] if rest else [])
    return {k: pl.concat([t[k] for t in tables], how="vertical") for k in ("metrics", "pairs")}
