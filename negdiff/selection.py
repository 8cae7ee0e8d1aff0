"""Neuron sets for the interventions: WD-selected neurons (WN) and their controls.

All functions take a scores table as produced by :func:`negdiff.scoring.score_activations`
(columns ``layer``, ``neuron``, ``wd``, ...; one row per neuron) and return a set as a polars
table with one row per selected neuron and the columns

``layer`` (Int32), ``neuron`` (Int32), ``wd`` (Float64), ``method`` (String),
``percent`` (Float64, null where not applicable), ``seed`` (Int64, null where not applicable),

sorted by layer, then neuron. :func:`selection_table` stacks named sets into one long table.

The set methods are a registry, :data:`SET_METHODS`: a method name (the ``METHOD`` of a set name
``METHOD@PERCENT[#K]``, :mod:`negdiff.conditions`) maps to a :class:`SetMethod` whose function builds
one set from a :class:`SetContext`; :func:`build_sets` builds every planned set by its method. A new
method is one entry there; :mod:`negdiff.conditions` (torch-free, read by the Snakefile) names and plans
the sets, so the name goes into its ``SET_METHODS`` too (``tests/test_registries.py`` ties the two).

Per-layer counts follow :func:`negdiff.scoring.top_neurons`: ``max(1, round(N * percent / 100))``
with ``N`` the layer's rows in the scores table (Python ``round``: halves to even).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import polars as pl

from negdiff.conditions import parse_set, set_name
from negdiff.scoring import top_neurons

__all__ = [
    "SET_SCHEMA",
    "SELECTION_SCHEMA",
    "count_for",
    "counts_per_layer",
    "select_wn",
    "select_random",
    "select_lowest_wd",
    "ppl_matched_search",
    "ppl_matched_skip",
    "identity_record",
    "matched_control",
    "selection_table",
    "SetContext",
    "SetMethod",
    "SET_METHODS",
    "build_sets",
    "set_entry",
    "wn_set",
    "random_set",
    "ppl_matched_set",
]

SET_SCHEMA: dict[str, pl.DataType] = {
    "layer": pl.Int32,
    "neuron": pl.Int32,
    "wd": pl.Float64,
    "method": pl.String,
    "percent": pl.Float64,
    "seed": pl.Int64,
}

SELECTION_SCHEMA: dict[str, pl.DataType] = {"set": pl.String, **SET_SCHEMA}


def count_for(n: int, percent: float) -> int:
    """Neurons taken from a layer of ``n``: ``max(1, round(n * percent / 100))``, capped at ``n``."""
    return min(n, max(1, round(n * percent / 100)))


def _check_scores(scores: pl.DataFrame) -> None:
    missing = {"layer", "neuron", "wd"} - set(scores.columns)
    if missing:
        raise ValueError(f"scores table lacks column(s) {sorted(missing)}")
    if scores.select(pl.struct("layer", "neuron").is_duplicated().any()).item():
        raise ValueError("scores table has duplicate (layer, neuron) rows")


def _check_percent(percent: float, *, allow_zero: bool = False) -> float:
    percent = float(percent)
    lo_ok = percent >= 0 if allow_zero else percent > 0
    if not (math.isfinite(percent) and lo_ok and percent <= 100):
        interval = "[0, 100]" if allow_zero else "(0, 100]"
        raise ValueError(f"percent must be in {interval}, got {percent}")
    return percent


def _finish(df: pl.DataFrame, method: str, percent: float | None, seed: int | None) -> pl.DataFrame:
    return (
        df.select("layer", "neuron", "wd")
        .with_columns(
            pl.lit(method).alias("method"),
            pl.lit(percent, dtype=pl.Float64).alias("percent"),
            pl.lit(seed, dtype=pl.Int64).alias("seed"),
        )
        .select([pl.col(k).cast(v) for k, v in SET_SCHEMA.items()])
        .sort(["layer", "neuron"])
    )


def _empty_set() -> pl.DataFrame:
    return pl.DataFrame(schema=SET_SCHEMA)


def counts_per_layer(selection: pl.DataFrame) -> dict[int, int]:
    """Number of selected neurons per layer of a set (layers with none are absent)."""
    counts = selection.group_by("layer").len().sort("layer")
    return {int(l): int(c) for l, c in zip(counts["layer"].to_list(), counts["len"].to_list())}


def select_wn(scores: pl.DataFrame, percent: float) -> pl.DataFrame:
    """WD-selected neurons: the top ``percent`` % by ``wd`` in each layer (ties to the lower index)."""
    _check_scores(scores)
    percent = _check_percent(percent)
    return _finish(top_neurons(scores, percent), "wn", percent, None)


def select_lowest_wd(scores: pl.DataFrame, percent: float) -> pl.DataFrame:
    """The lowest-``wd`` ``percent`` % of each layer (ties to the lower index).

    The perplexity-matched control family. ``percent == 0`` gives the empty set; any positive
    ``percent`` takes at least one neuron per layer. As in :func:`negdiff.scoring.top_neurons`,
    zero-variance neurons (``std == 0``, when a ``std`` column is present) rank after every neuron
    that varies, so they are taken only when nothing else is left.
    """
    _check_scores(scores)
    percent = _check_percent(percent, allow_zero=True)
    if percent == 0:
        return _finish(_empty_set(), "lowest_wd", 0.0, None)
    sizes = scores.group_by("layer").len()
    counts = pl.DataFrame(
        {"layer": sizes["layer"], "_count": [count_for(n, percent) for n in sizes["len"].to_list()]},
        schema_overrides={"layer": scores.schema["layer"], "_count": pl.Int64},
    )
    varies = (pl.col("std") > 0).fill_null(True) if "std" in scores.columns else pl.lit(True)
    picked = (
        scores.with_columns(varies.alias("_varies"))
        .sort(["layer", "_varies", "wd", "neuron"], descending=[False, True, False, False],
              nulls_last=True)
        .with_columns(pl.int_range(pl.len()).over("layer").alias("_rank"))
        .join(counts, on="layer", how="left")
        .filter(pl.col("_rank") < pl.col("_count"))
    )
    return _finish(picked, "lowest_wd", percent, None)


def _layer_rng(seed: int, layer: int) -> np.random.Generator:
    # a generator per (seed, layer): the draw for one layer does not depend on the other layers
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(layer)]))


def select_random(scores: pl.DataFrame, counts_per_layer: Mapping[int, int], seed: int) -> pl.DataFrame:
    """``counts_per_layer[l]`` neurons of layer ``l`` drawn uniformly without replacement.

    Draws from all neurons of the layer in ``scores``, with ``numpy.random.default_rng`` seeded by
    ``SeedSequence([seed, layer])``, so each layer's draw depends only on (seed, layer).
    Layers absent from ``counts_per_layer`` (or with count 0) contribute nothing.
    """
    _check_scores(scores)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    present = set(scores["layer"].unique().to_list())
    parts = []
    for layer, count in sorted(counts_per_layer.items()):
        layer, count = int(layer), int(count)
        if layer not in present:
            raise ValueError(f"layer {layer} is not in the scores table")
        rows = scores.filter(pl.col("layer") == layer).sort("neuron")
        if not 0 <= count <= rows.height:
            raise ValueError(f"layer {layer}: cannot draw {count} of {rows.height} neurons")
        if count == 0:
            continue
        idx = np.sort(_layer_rng(seed, layer).choice(rows.height, size=count, replace=False))
        parts.append(rows[idx])
    if not parts:
        return _finish(_empty_set(), "random", None, int(seed))
    return _finish(pl.concat(parts, how="vertical_relaxed"), "random", None, int(seed))


def _check_search_args(target_ppl: float, tolerance: float, max_iter: int, lo: float, hi: float
                       ) -> tuple[float, float, float]:
    """Validate ppl_matched_search's arguments; returns (target_ppl, lo, hi) as floats."""
    target_ppl = float(target_ppl)
    if not math.isfinite(target_ppl) or target_ppl <= 0:
        raise ValueError(f"target_ppl must be finite and positive, got {target_ppl}")
    if not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be finite and >= 0, got {tolerance}")
    if int(max_iter) < 0:
        raise ValueError(f"max_iter must be >= 0, got {max_iter}")
    lo, hi = _check_percent(lo, allow_zero=True), _check_percent(hi, allow_zero=True)
    if lo > hi:
        raise ValueError(f"lo ({lo}) must not exceed hi ({hi})")
    return target_ppl, lo, hi


class _MatchedSearch:
    """The state of one :func:`ppl_matched_search`: cached perplexities, history, evaluated sets."""

    def __init__(self, scores: pl.DataFrame, ppl_of: Callable[[pl.DataFrame], float],
                 target_ppl: float, tolerance: float, max_iter: int, lo: float, hi: float):
        self.scores = scores
        self.ppl_of = ppl_of
        self.target_ppl = target_ppl
        self.tolerance = tolerance
        self.max_iter = max_iter
        self.lo = lo
        self.hi = hi
        self.band = float(tolerance) * target_ppl
        self.cache: dict[tuple, float] = {}
        self.history: list[dict] = []
        self.sets: dict[float, pl.DataFrame] = {}

    def evaluate(self, m: float) -> float:
        sel = select_lowest_wd(self.scores, m)
        key = tuple(sorted(counts_per_layer(sel).items()))
        if key not in self.cache:
            self.cache[key] = float(self.ppl_of(sel))
        ppl = self.cache[key]
        self.sets[m] = sel
        self.history.append({"m": float(m), "ppl": ppl, "n_selected": int(sel.height)})
        return ppl

    def within(self, ppl: float) -> bool:
        return math.isfinite(ppl) and abs(ppl - self.target_ppl) <= self.band

    def result(self, m: float, ppl: float, converged: bool, reason: str, iterations: int):
        record = {
            "m": float(m),
            "ppl": float(ppl),
            "target_ppl": self.target_ppl,
            "tolerance": float(self.tolerance),
            "iterations": int(iterations),
            "evaluations": len(self.cache),
            "max_iter": int(self.max_iter),
            "lo": self.lo,
            "hi": self.hi,
            "converged": bool(converged),
            "reason": reason,
            "n_selected": int(self.sets[m].height),
            "history": self.history,
        }
        return self.sets[m].with_columns(pl.lit("ppl_matched").alias("method")), record


def ppl_matched_search(
    scores: pl.DataFrame,
    ppl_of: Callable[[pl.DataFrame], float],
    target_ppl: float,
    *,
    tolerance: float,
    max_iter: int,
    lo: float = 0.0,
    hi: float = 100.0,
) -> tuple[pl.DataFrame, dict]:
    """Find ``m`` such that neg-zeroing the lowest-WD ``m`` % per layer gives ``target_ppl``.

    ``ppl_of(set)`` returns the perplexity with the given set intervened on; it is assumed to
    increase with ``m`` (in expectation). Converged when ``|ppl - target| <= tolerance * target``.

    Procedure: evaluate ``m = hi``; if its ppl is below the target band, return ``hi``
    unconverged. Evaluate ``m = lo``; if its ppl is above the band, return ``lo`` unconverged.
    Otherwise bisect ``[lo, hi]`` for at most ``max_iter`` midpoints (``iterations`` counts the
    midpoints) and return the first midpoint within tolerance; the endpoints only bracket (an
    endpoint within the band is accepted only if no midpoint is, as the closest evaluated point).
    ``m`` values that give the same set (counts are discrete) reuse the cached perplexity;
    ``evaluations`` counts the calls of ``ppl_of``. Without a midpoint within tolerance the
    evaluated ``m`` closest to the target is returned (``converged`` says whether it is within).

    Returns ``(set, record)``; ``set`` has ``method == "ppl_matched"`` and ``percent == m``;
    ``record`` = ``{m, ppl, target_ppl, tolerance, iterations, evaluations, max_iter, lo, hi,
    converged, reason, n_selected, history: [{m, ppl, n_selected}]}`` (JSON-serialisable).
    """
    _check_scores(scores)
    target_ppl, lo, hi = _check_search_args(target_ppl, tolerance, max_iter, lo, hi)
    search = _MatchedSearch(scores, ppl_of, target_ppl, tolerance, max_iter, lo, hi)
    band = search.band

    # the endpoints only bracket the target; an endpoint inside the band is not accepted outright
    # (with a generous tolerance that would always pick the largest set)
    ppl_hi = search.evaluate(hi)
    if ppl_hi < target_ppl - band:
        return search.result(hi, ppl_hi, False, "ppl at hi is below the target", 0)
    ppl_lo = search.evaluate(lo) if lo != hi else ppl_hi
    if ppl_lo > target_ppl + band:
        return search.result(lo, ppl_lo, False, "ppl at lo is above the target", 0)

    a, b = lo, hi  # bracket: ppl(a) <= target + band, ppl(b) >= target - band
    iterations = 0
    while iterations < int(max_iter) and a < b:
        iterations += 1
        m = 0.5 * (a + b)
        ppl = search.evaluate(m)
        if search.within(ppl):
            return search.result(m, ppl, True, "within tolerance", iterations)
        if ppl < target_ppl:  # NaN counts as too high
            a = m
        else:
            b = m
    best = min(search.history,
               key=lambda h: abs(h["ppl"] - target_ppl) if math.isfinite(h["ppl"]) else math.inf)
    ok = search.within(best["ppl"])
    return search.result(best["m"], best["ppl"], ok, "within tolerance" if ok else "max_iter reached",
                         iterations)


def selection_table(sets: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """Stack named sets into one table (schema :data:`SELECTION_SCHEMA`), in the given set order.

    Each set needs ``layer`` and ``neuron``; ``wd``, ``method``, ``percent``, ``seed`` are taken
    when present and null otherwise. Duplicate (layer, neuron) rows within a set raise.
    """
    frames = []
    for name, df in sets.items():
        missing = {"layer", "neuron"} - set(df.columns)
        if missing:
            raise ValueError(f"set {name!r} lacks column(s) {sorted(missing)}")
        if df.select(pl.struct("layer", "neuron").is_duplicated().any()).item():
            raise ValueError(f"set {name!r} has duplicate (layer, neuron) rows")
        cols = [pl.lit(str(name)).alias("set")]
        for k, dtype in SET_SCHEMA.items():
            cols.append(pl.col(k).cast(dtype) if k in df.columns else pl.lit(None, dtype=dtype).alias(k))
        frames.append(df.select(cols).sort(["layer", "neuron"]))
    if not frames:
        return pl.DataFrame(schema=SELECTION_SCHEMA)
    return pl.concat(frames, how="vertical").select(
        [pl.col(k).cast(v) for k, v in SELECTION_SCHEMA.items()]
    )


def identity_record(architecture) -> dict:
    """What the selection record says about the model's nonlinearity, for later stages that do not
    load the model: ``{"architecture": model_type, "nonlinearity": name, "identity_operations":
    {operation: reason}}`` (empty where every operation changes something); ``architecture`` is
    anything :func:`negdiff.architectures.arch_spec` takes."""
    from negdiff.architectures import arch_spec, identity_operations, identity_reason

    spec = arch_spec(architecture)
    return {
        "architecture": spec.name,
        "nonlinearity": spec.activation,
        "identity_operations": {op: identity_reason(op, spec.activation) for op in identity_operations(spec)},
    }


def ppl_matched_skip(architecture) -> dict | None:
    """The ``ppl_matched`` record of a search that is not run, or None where it must run.

    The search matches the perplexity of the neg-zeroed WN set; where neg_zero is the identity on the
    model's nonlinearity (ReLU) that perplexity is the baseline's and nothing is to be matched:
    ``{"skipped": "relu(a) = 0 for a < 0, so neg_zero changes nothing; no perplexity to match",
    "operation": "neg_zero", "nonlinearity": "relu"}``.
    """
    from negdiff.architectures import arch_spec, identity_reason

    act = arch_spec(architecture).activation
    reason = identity_reason("neg_zero", act)
    if reason is None:
        return None
    return {"skipped": f"{reason}; no perplexity to match", "operation": "neg_zero", "nonlinearity": act}


def matched_control(
    model,
    tokenizer,
    scores: pl.DataFrame,
    wn_set: pl.DataFrame,
    *,
    text_path,
    tokens: int,
    window: int,
    stride: int,
    prepend_bos: bool,
    tolerance: float,
    max_iter: int,
    hi: float,
    batch_size: int = 16,
) -> tuple[pl.DataFrame, dict]:
    """The perplexity-matched control of a WN set on a real model (loaded by the caller, with its tokenizer).

    Takes the first ``tokens`` tokens of ``text_path``, measures the perplexity with ``wn_set``
    neg-zeroed (the target), then searches ``m`` with :func:`ppl_matched_search`; ``window`` is the
    config's ``evaluation.window`` (model positions, BOS included, as :func:`negdiff.logprobs.perplexity`
    takes it). The record also holds the baseline perplexity and the data used.

    Where neg_zero is the identity on the model's nonlinearity nothing is evaluated: the set is empty and
    the record is :func:`ppl_matched_skip`'s (:func:`ppl_matched_set` checks that from the model's config
    before any weight is loaded).
    """
    from negdiff.data import encode_text, read_text
    from negdiff.logprobs import perplexity
    from negdiff.interventions import intervene, masks_from_selection
    from negdiff.models import n_layers, n_neurons
    from negdiff.tokenizer import bos_token_id

    skipped = ppl_matched_skip(model)
    if skipped is not None:
        return _finish(_empty_set(), "ppl_matched", None, None), skipped
    stream = encode_text(tokenizer, read_text(text_path), max_tokens=tokens)
    bos = bos_token_id(tokenizer) if prepend_bos else None
    shape = (n_layers(model), n_neurons(model))

    def ppl_of(neurons: pl.DataFrame) -> float:
        masks = masks_from_selection(neurons.select("layer", "neuron"), *shape)
        with intervene(model, masks, "neg_zero"):
            return perplexity(model, stream.ids, window=window, stride=stride, batch_size=batch_size, bos_token_id=bos)

    baseline = ppl_of(wn_set.head(0))
    target = ppl_of(wn_set)
    # ``tolerance`` is a fraction of the perplexity increase the WNs cause (a relative tolerance on the
    # perplexity itself would accept almost any set when that increase is small), floored at 1e-4 of it
    band = max(tolerance * abs(target - baseline), 1e-4 * target)
    chosen, record = ppl_matched_search(scores, ppl_of, target, tolerance=band / target, max_iter=max_iter, hi=hi)
    record.update(
        baseline_ppl=baseline, tolerance_of_increase=tolerance, band_ppl=band,
        tokens=int(len(stream)), text=str(text_path), window=window, stride=stride,
    )
    return chosen, record


# --------------------------------------------------------------------------- the set methods


@dataclass
class SetContext:
    """What the set methods build from, and what they leave besides their sets.

    ``selection`` is the config's selection section (``seed``, ``percents``); ``architecture`` what
    :func:`negdiff.architectures.arch_spec` takes (the model's config, read without weights); ``load_model`` the
    caller's loader of ``(model, tokenizer)``, called at most once and only by a method that runs the model;
    ``matched`` the keyword arguments of :func:`matched_control` besides the model and the sets
    (``text_path``, ``tokens``, ``window``, ...). ``sets`` holds the sets built so far and ``records``
    what a method reports beyond its set (the ppl_matched search), both by set name.
    """

    scores: pl.DataFrame
    selection: Mapping[str, Any]
    architecture: Any = None
    load_model: Callable[[], tuple[Any, Any]] | None = None
    matched: Mapping[str, Any] = field(default_factory=dict)
    sets: dict[str, pl.DataFrame] = field(default_factory=dict)
    records: dict[str, dict] = field(default_factory=dict)
    _loaded: tuple[Any, Any] | None = field(default=None, repr=False)

    def model(self) -> tuple[Any, Any]:
        """``(model, tokenizer)`` from ``load_model``, loaded on first use."""
        if self._loaded is None:
            if self.load_model is None:
                raise ValueError("this set method runs the model, but the SetContext has no load_model")
            self._loaded = self.load_model()
        return self._loaded

    def loaded(self) -> tuple[Any, Any] | None:
        """``(model, tokenizer)`` if a set method loaded the model, else None (nothing was loaded)."""
        return self._loaded

    def wn(self, percent: float) -> pl.DataFrame:
        name = set_name("wn", percent)
        if name not in self.sets:
            raise KeyError(f"{name} must be built before the sets matched to it")
        return self.sets[name]


def wn_set(ctx: SetContext, percent: float, replicate: int = 0) -> pl.DataFrame:
    """``wn@p``: the top ``percent`` % of each layer by WD (:func:`select_wn`)."""
    return select_wn(ctx.scores, percent)


def random_set(ctx: SetContext, percent: float, replicate: int = 0) -> pl.DataFrame:
    """``random@p`` (``#k``): as many neurons per layer as ``wn@p``, drawn uniformly with seed
    ``selection.seed + k`` (:func:`select_random`)."""
    return select_random(ctx.scores, counts_per_layer(ctx.wn(percent)), seed=ctx.selection["seed"] + replicate)


def ppl_matched_set(ctx: SetContext, percent: float, replicate: int = 0) -> pl.DataFrame:
    """``ppl_matched@p``: the lowest-WD m % of each layer whose neg-zero perplexity matches ``wn@p``'s
    (:func:`matched_control`; its search record goes to ``ctx.records``). Where neg_zero is the identity on
    the model's nonlinearity the model is not loaded: the set is empty and the record says why."""
    name = set_name("ppl_matched", percent)
    skipped = ppl_matched_skip(ctx.architecture)
    if skipped is not None:
        ctx.records[name] = skipped
        return _finish(_empty_set(), "ppl_matched", None, None)
    model, tokenizer = ctx.model()
    chosen, ctx.records[name] = matched_control(model, tokenizer, ctx.scores, ctx.wn(percent), **ctx.matched)
    return chosen


@dataclass(frozen=True)
class SetMethod:
    """One kind of neuron set: ``build(ctx, percent, replicate)`` returns the set (schema
    :data:`SET_SCHEMA`); ``runs_model`` sets are built after every set that does not."""

    build: Callable[[SetContext, float, int], pl.DataFrame]
    runs_model: bool = False


SET_METHODS: dict[str, SetMethod] = {
    "wn": SetMethod(wn_set),
    "random": SetMethod(random_set),
    "ppl_matched": SetMethod(ppl_matched_set, runs_model=True),
}


def _planned(name: str, percents: Sequence[float]) -> tuple[str, float, int]:
    """``(method, percent, replicate)`` of a set name; the percent as the config spells it."""
    method, pct = parse_set(name)
    if method not in SET_METHODS:
        raise ValueError(f"set {name!r}: no set method {method!r} in negdiff.selection.SET_METHODS")
    label = name.partition("#")[0].partition("@")[2]
    percent = next((p for p in percents if f"{p:g}" == label), pct)
    return method, percent, int(name.partition("#")[2] or 0)


def build_sets(names: Sequence[str], ctx: SetContext) -> dict[str, pl.DataFrame]:
    """Every named set (``METHOD@PERCENT[#K]``), built by its method in :data:`SET_METHODS`.

    Built and returned in this order: sets that do not run the model first, then those that do (so the
    model is loaded once, last, and only if needed); within each, by percent in ``selection.percents``
    order, then method in registry order, then replicate. Each set is also kept in ``ctx.sets``.
    """
    percents = list(ctx.selection["percents"])
    methods = list(SET_METHODS)
    plan = {name: _planned(name, percents) for name in dict.fromkeys(names)}

    def order(name):
        method, percent, replicate = plan[name]
        rank = percents.index(percent) if percent in percents else len(percents)
        return SET_METHODS[method].runs_model, rank, float(percent), methods.index(method), replicate

    ordered = sorted(plan, key=order)
    for name in ordered:
        method, percent, replicate = plan[name]
        ctx.sets[name] = SET_METHODS[method].build(ctx, percent, replicate)
    return {name: ctx.sets[name] for name in ordered}


def set_entry(df: pl.DataFrame, record: dict | None = None) -> dict:
    """A set's entry in the selection record: ``n_neurons``, ``counts_per_layer`` and, for a set with no
    record of its own, the ``seed`` it was drawn with (None where not seeded); a set whose method left a
    ``record`` (the ppl_matched search) carries its ``skipped`` reason instead, where it was skipped."""
    entry = {"n_neurons": df.height, "counts_per_layer": counts_per_layer(df)}
    if record is None:
        entry["seed"] = int(df["seed"][0]) if df.height and df["seed"][0] is not None else None
    elif "skipped" in record:
        entry["skipped"] = record["skipped"]
    return entry
