"""Negative differentiation per neuron (claim C8): how much of the separation a neuron puts between
similar inputs lies in its negative pre-activation range.

Why
---
The claim: Wasserstein neurons (the top ~1% per layer by WD) map *similar* inputs (tokens whose MLP
inputs are close) to *distinct negative* pre-activations, so that zeroing the negative region
(``a' = max(a, 0)``, the ``neg_zero`` intervention) erases the distinction. The earlier measure (the
share ``wd_neg / wd`` of the WD) follows the fraction of negative values and so cannot tell
"differentiates in the negative range" from "is often negative". This measure asks directly what
neg-zeroing does to the pairs the neuron separates most sharply.

The measure (fixed in advance)
------------------------------
Pairs are the mapping-difficulty pairs of :mod:`negdiff.mapping_difficulty`: ``md_pairs(T, scoring.md_pairs,
scoring.seed)`` over the dump's token rows (for ``activations.keep: histograms`` dumps: over the
seeded token sample the dump keeps, exactly as ``score_layer`` does), pairs with identical MLP input
(``dx == 0``) dropped. For one neuron with pre-activations ``y`` and MLP inputs ``x``, the per-pair
ratio is MD's ``r = (|y_i - y_j| / median|dy|) / (||x_i - x_j|| / max||dx||)`` (from
:func:`negdiff.mapping_difficulty.pair_distances`); large ``r`` = close inputs, far-apart outputs.

* **top pairs**: the neuron's ``top_k`` pairs of highest ``r`` among its pairs with ``dy != 0``
  (ties go to the earlier pair in the sample; fewer when fewer pairs move). The per-neuron
  normaliser ``median|dy|`` rescales every ratio of the neuron alike, so it never changes the set.
* **negative share** of a pair: the fraction of the interval ``[min, max]`` spanned by the two
  values that lies in ``(-inf, 0]``, ``s = (min(max, 0) - min) / (max - min)`` when ``min < 0``,
  else 0. Neg-zeroing maps that part of the interval onto the single point 0, so ``s`` is the share
  of the pair's separation it erases: 1 when both values are negative (the pair becomes identical),
  0 when both are non-negative (untouched). ``s`` is continuous in the values (no threshold at 0);
  undefined (NaN) for equal values.
* per neuron: ``top_share_neg`` = mean ``s`` over its top pairs; ``random_share_neg`` = mean ``s``
  over all its kept pairs with ``dy != 0`` (the baseline the top pairs are compared with);
  sign patterns among the top pairs, ``top_both_neg`` (both ``< 0``), ``top_mixed`` (exactly one
  ``< 0``), ``top_both_pos`` (both ``>= 0``; zero counts as non-negative), summing to ``n_top``;
  ``top_function_share``: of the top pairs' tokens (two per pair, with multiplicity) that carry a
  Universal POS tag, the share whose tag is in :data:`negdiff.pos.FUNCTION_POS`.

Shares are null where undefined: no moving pair (``n_top == 0``), no MLP input in the dump, fewer
than 2 tokens, every pair with ``dx == 0``; ``top_function_share`` also when POS is unavailable or
no top token is tagged. ``wd`` is copied from the scores table so a consumer can pick the WNs.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, Sequence

import numpy as np
import polars as pl

from negdiff.pos import FUNCTION_POS
from negdiff.mapping_difficulty import md_pairs as draw_md_pairs
from negdiff.mapping_difficulty import pair_distances

__all__ = [
    "DIFFERENTIATION_SCHEMA",
    "negative_share",
    "differentiation_layer",
    "differentiation_table",
    "token_pos",
]

DIFFERENTIATION_SCHEMA: dict[str, Any] = {
    "layer": pl.Int32,
    "neuron": pl.Int32,
    "wd": pl.Float64,
    "top_share_neg": pl.Float64,
    "random_share_neg": pl.Float64,
    "n_top": pl.Int32,
    "top_both_neg": pl.Int32,
    "top_mixed": pl.Int32,
    "top_both_pos": pl.Int32,
    "top_function_share": pl.Float64,
}

_MEASURES = [k for k in DIFFERENTIATION_SCHEMA if k not in ("layer", "neuron", "wd")]
_SHARES = ("top_share_neg", "random_share_neg", "top_function_share")

log = logging.getLogger(__name__)


def negative_share(yi, yj) -> np.ndarray:
    """Share of ``[min(yi, yj), max(yi, yj)]`` that lies in ``(-inf, 0]`` (float64, broadcast).

    ``(min(hi, 0) - lo) / (hi - lo)`` for ``lo < 0``, 0 for ``lo >= 0``; NaN where ``yi == yj``.
    """
    a = np.asarray(yi, dtype=np.float64)
    b = np.asarray(yj, dtype=np.float64)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    width = hi - lo
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(lo < 0, (np.minimum(hi, 0.0) - lo) / width, 0.0)
    return np.where(width > 0, np.clip(s, 0.0, 1.0), np.nan)


def _function_flags(pos: Sequence[str | None] | None, n: int) -> np.ndarray | None:
    """Per token: 1.0 function tag, 0.0 other tag, NaN untagged (None when there is no POS)."""
    if pos is None:
        return None
    if len(pos) != n:
        raise ValueError(f"pos has {len(pos)} tags for {n} tokens")
    function = set(FUNCTION_POS)
    return np.array([np.nan if t is None else float(t in function) for t in pos], dtype=np.float64)


def _check_inputs(x, y, i, j, top_k: int):
    x = np.asarray(x)
    y = np.asarray(y)
    if y.ndim == 1:
        y = y[:, None]
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x must be [T, d] and y [T, B] with the same T, got {x.shape} and {y.shape}")
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    if i.shape != j.shape or i.ndim != 1:
        raise ValueError("i and j must be 1-D index arrays of equal length")
    if i.size and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= y.shape[0]):
        raise ValueError(f"pair indices out of range for {y.shape[0]} tokens")
    if int(top_k) < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    return x, y, i, j


def _null_measures(b: int) -> dict[str, np.ndarray]:
    out = {k: np.full(b, np.nan) for k in _SHARES}
    out.update({k: np.zeros(b, np.int32) for k in ("n_top", "top_both_neg", "top_mixed", "top_both_pos")})
    return out


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Column means of ``values`` over ``mask`` (NaN for an empty column)."""
    n = mask.sum(axis=0)
    total = np.where(mask, values, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def _measures(ratio: np.ndarray, yi: np.ndarray, yj: np.ndarray, pi: np.ndarray, pj: np.ndarray,
              top_k: int, flags: np.ndarray | None) -> dict[str, np.ndarray]:
    """The per-neuron measures from ratios and pair values [P, B] (pairs ``pi, pj`` into ``flags``)."""
    moving = yi != yj
    share = negative_share(yi, yj)
    k = min(int(top_k), ratio.shape[0])
    # highest ratio first, ties to the earlier pair; non-moving pairs last (and masked out)
    order = np.argsort(np.where(moving, -ratio, np.inf), axis=0, kind="stable")[:k]
    valid = np.take_along_axis(moving, order, axis=0)
    ti, tj = np.take_along_axis(yi, order, axis=0), np.take_along_axis(yj, order, axis=0)
    ni, nj = ti < 0, tj < 0
    out = {
        "top_share_neg": _masked_mean(np.take_along_axis(share, order, axis=0), valid),
        "random_share_neg": _masked_mean(share, moving),
        "n_top": valid.sum(axis=0).astype(np.int32),
        "top_both_neg": (valid & ni & nj).sum(axis=0).astype(np.int32),
        "top_mixed": (valid & (ni ^ nj)).sum(axis=0).astype(np.int32),
        "top_both_pos": (valid & ~ni & ~nj).sum(axis=0).astype(np.int32),
        "top_function_share": np.full(ratio.shape[1], np.nan),
    }
    if flags is not None:
        fi, fj = flags[pi[order]], flags[pj[order]]  # [k, B]
        f = np.concatenate([fi, fj])
        tagged = np.concatenate([valid, valid]) & ~np.isnan(f)
        out["top_function_share"] = _masked_mean(np.nan_to_num(f), tagged)
    return out


def _frame(measures: dict[str, np.ndarray], neurons: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame({"neuron": neurons.astype(np.int32), **measures}).with_columns(
        [pl.col(k).fill_nan(None) for k in _SHARES]
    ).select(["neuron"] + [pl.col(k).cast(DIFFERENTIATION_SCHEMA[k]) for k in _MEASURES])


def differentiation_layer(x, y, i, j, *, top_k: int = 32, pos: Sequence[str | None] | None = None,
                          layer: int | None = None, neuron_offset: int = 0) -> pl.DataFrame:
    """The measures for every neuron (column) of ``y``; one row per neuron, ``neuron`` numbered from
    ``neuron_offset``, the columns of :data:`DIFFERENTIATION_SCHEMA` but ``layer`` and ``wd``.

    ``x`` [T, d] MLP inputs, ``y`` [T, B] (or [T]) pre-activations, ``i``/``j`` the sampled pairs
    (rows of ``x``/``y``; pairs with ``dx == 0`` are dropped), ``pos`` an optional Universal POS tag
    (or None) per row. ``layer`` only labels warnings.
    """
    x, y, i, j = _check_inputs(x, y, i, j, top_k)
    b = y.shape[1]
    neurons = np.arange(neuron_offset, neuron_offset + b)
    flags = _function_flags(pos, y.shape[0])
    # dx > 0 exactly when the rows differ (float32 inputs: a nonzero difference squares to > 0)
    moved = np.concatenate([np.any(x[i[s:s + 1024]] != x[j[s:s + 1024]], axis=1)
                            for s in range(0, i.size, 1024)] or [np.zeros(0, bool)])
    i, j = i[moved], j[moved]
    if i.size == 0:
        warnings.warn(f"layer {'?' if layer is None else layer}: no sampled pair with distinct MLP inputs; "
                      "differentiation measures null", UserWarning, stacklevel=2)
        return _frame(_null_measures(b), neurons)
    with warnings.catch_warnings():
        # score_layer already warns about the median fallback; the normaliser cannot change the top set
        warnings.filterwarnings("ignore", message=r".*median \|dy\| is 0", category=UserWarning)
        dxn, dyn = pair_distances(x, y, i, j, layer=layer, neuron_offset=neuron_offset)
    if dxn.size != i.size:
        raise RuntimeError(f"pair_distances kept {dxn.size} of {i.size} pairs with distinct MLP inputs")
    ratio = dyn / dxn[:, None]
    yi, yj = y[i].astype(np.float64), y[j].astype(np.float64)
    return _frame(_measures(ratio, yi, yj, i, j, top_k, flags), neurons)


def _pair_rows(reader, layer: int, start: int, stop: int, rows: np.ndarray) -> np.ndarray:
    """Pre-activations of neurons ``start:stop`` at the sorted token ``rows`` [R, B], one shard at a time."""
    if not hasattr(reader, "iter_pre_activation"):
        return np.asarray(reader.read_pre_activation(layer, start, stop))[rows]
    out = np.empty((rows.size, stop - start), np.float32)
    pos = 0
    for block in reader.iter_pre_activation(layer, start, stop):
        lo, hi = np.searchsorted(rows, [pos, pos + block.shape[0]])
        out[lo:hi] = block[rows[lo:hi] - pos]
        pos += block.shape[0]
    if pos != int(reader.n_tokens):
        raise ValueError(f"layer {layer}: read {pos} tokens, expected {reader.n_tokens}")
    return out


def _layer_table(reader, layer: int, *, top_k: int, n_pairs: int, seed: int,
                 pos: Sequence[str | None] | None, neuron_block: int) -> pl.DataFrame:
    n_tokens, n_neurons = int(reader.n_tokens), int(reader.n_neurons(layer))
    if not reader.has_mlp_input or n_tokens < 2:
        why = "the dump has no MLP inputs (activations.capture_mlp_input)" if not reader.has_mlp_input \
            else f"{n_tokens} token(s)"
        log.warning("layer %d: differentiation measures null: %s", layer, why)
        return _frame(_null_measures(n_neurons), np.arange(n_neurons))
    pi, pj = draw_md_pairs(n_tokens, n_pairs, seed)
    rows = np.unique(np.concatenate([pi, pj]))
    x = np.asarray(reader.read_mlp_input(layer, rows))
    li, lj = np.searchsorted(rows, pi), np.searchsorted(rows, pj)
    pos_rows = None if pos is None else [pos[r] for r in rows.tolist()]
    parts = []
    for start in range(0, n_neurons, neuron_block):
        stop = min(start + neuron_block, n_neurons)
        y = _pair_rows(reader, layer, start, stop, rows)
        parts.append(differentiation_layer(x, y, li, lj, top_k=top_k, pos=pos_rows, layer=layer,
                                           neuron_offset=start))
    return pl.concat(parts) if parts else _frame(_null_measures(0), np.arange(0))


def differentiation_table(reader, scores: pl.DataFrame, *, top_k: int = 32, md_pairs: int = 4096,
                          seed: int = 0, pos: Sequence[str | None] | None = None,
                          neuron_block: int = 256) -> pl.DataFrame:
    """:func:`differentiation_layer` over every layer of an activation dump, one layer at a time.

    ``reader`` is a :class:`negdiff.activation_reader.ActivationReader` (or alike); ``scores`` its score
    table (``wd`` is copied, and must cover every dumped neuron); ``md_pairs`` / ``seed`` are
    ``scoring.md_pairs`` / ``scoring.seed`` (the MD pairs); ``pos`` one tag (or None) per dump row.
    Only the pairs' token rows are held, ``neuron_block`` neurons at a time. Returns
    :data:`DIFFERENTIATION_SCHEMA`, sorted by (layer, neuron).
    """
    if neuron_block < 1:
        raise ValueError(f"neuron_block must be positive, got {neuron_block}")
    if pos is not None and len(pos) != int(reader.n_tokens):
        raise ValueError(f"pos has {len(pos)} tags, the dump {int(reader.n_tokens)} token rows")
    frames = [
        _layer_table(reader, int(layer), top_k=top_k, n_pairs=md_pairs, seed=seed, pos=pos,
                     neuron_block=neuron_block).with_columns(pl.lit(int(layer), pl.Int32).alias("layer"))
        for layer in reader.layers
    ]
    if not frames:
        return pl.DataFrame(schema=DIFFERENTIATION_SCHEMA)
    table = pl.concat(frames)
    wd = scores.select(pl.col("layer").cast(pl.Int32), pl.col("neuron").cast(pl.Int32), pl.col("wd").cast(pl.Float64))
    if wd.select(pl.struct("layer", "neuron").is_duplicated().any()).item():
        raise ValueError("the scores table has duplicate (layer, neuron) rows")
    table = table.join(wd, on=["layer", "neuron"], how="left")
    missing = table.filter(pl.col("wd").is_null())
    if missing.height:
        raise ValueError(f"the scores table lacks {missing.height} dumped neuron(s), e.g. layer "
                         f"{missing['layer'][0]} neuron {missing['neuron'][0]} (scores from another dump?)")
    return table.select([pl.col(k).cast(v) for k, v in DIFFERENTIATION_SCHEMA.items()]).sort(["layer", "neuron"])


def token_pos(text: str, offsets, *, gold_pos: str | None = None,
              spacy_model: str = "en_core_web_sm") -> tuple[list[str | None] | None, str]:
    """One Universal POS tag (or None) per dump row, and how it was obtained (or why not).

    As the example-neuron figure: gold tags of the built-in corpus (``gold_pos``, the ``.pos``
    content, via :func:`negdiff.pos.word_pos_for_offsets`), else spaCy over the text
    (:func:`negdiff.pos.spacy_pos_tagger`). ``offsets`` are the rows' character spans into
    ``text`` (``ActivationReader.offsets()``, the sample's rows for histogram dumps). Returns
    ``(None, reason)`` when the spans do not fit the text or spaCy (or its model) is missing.
    """
    off = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    if off.size and (int(off.min()) < 0 or int(off[:, 1].max()) > len(text)):
        return None, (f"token offsets reach character {int(off[:, 1].max())} but the text has {len(text)}: "
                      "the dump was made from another text")
    if gold_pos is not None:
        from negdiff.pos import word_pos_for_offsets

        return word_pos_for_offsets(text, gold_pos, off), "gold tags of the built-in corpus"
    from negdiff.pos import spacy_pos_tagger

    try:
        tagger = spacy_pos_tagger(spacy_model)
    except (ImportError, OSError) as err:
        return None, f"no spaCy tagger: {err}"
    return tagger(text, off), f"spaCy {spacy_model}"
