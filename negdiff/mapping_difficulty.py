"""Mapping difficulty (MD) of a neuron: how unevenly it maps nearby MLP inputs to pre-activations.

Definition (Kong et al. 2026, "Negative Pre-activations Differentiate Syntax")
------------------------------------------------------------------------------
Random token pairs ``(i, j)``, ``i != j``, sampled once per layer with ``md_seed`` (shared by all
neurons of the layer; :func:`md_pairs`). With ``x`` the MLP input vectors and ``y`` the neuron's
pre-activation: ``dx_p = ||x_i - x_j||_2``, ``dy_p = |y_i - y_j|`` and
``MD = mean_p ((dy_p / median_p dy) / (dx_p / max_p dx))``. Pairs with ``dx == 0`` are dropped
first. If a neuron's ``median dy == 0``: ``MD = 0.0`` when all its ``dy`` are 0, otherwise the mean
``dy`` is used as the normaliser (with a ``UserWarning``). If every pair has ``dx == 0`` MD is
undefined: NaN from :func:`mapping_difficulty` (with a warning), null in the score tables
(:func:`negdiff.scoring.score_layer`). Float64 throughout.
"""

from __future__ import annotations

import warnings

import numpy as np

from negdiff.wasserstein import layer_label, short_list

__all__ = ["md_pairs", "pair_distances", "mapping_difficulty", "dx_normalised", "dy_normalised",
           "md_from_normalised"]


def md_pairs(n_tokens: int, n_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n_pairs`` token pairs drawn uniformly (with replacement) among ordered pairs ``i != j``."""
    if n_tokens < 2:
        raise ValueError(f"md_pairs needs at least 2 tokens, got {n_tokens}")
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be positive, got {n_pairs}")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n_tokens, size=n_pairs, dtype=np.int64)
    j = rng.integers(0, n_tokens - 1, size=n_pairs, dtype=np.int64)
    j += j >= i
    return i, j


def dx_normalised(x: np.ndarray, i: np.ndarray, j: np.ndarray,
                   chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Kept-pair mask (dx > 0) and dx / max dx over the kept pairs (float64)."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"x must be [T, d], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("non-finite value in the MLP input")
    p = len(i)
    dx = np.empty(p, np.float64)
    for s in range(0, p, chunk):
        diff = x[i[s:s + chunk]].astype(np.float64) - x[j[s:s + chunk]]
        dx[s:s + chunk] = np.sqrt(np.einsum("pd,pd->p", diff, diff))
    keep = dx > 0
    dx = dx[keep]
    if dx.size:
        dx /= dx.max()
    return keep, dx


def dy_normalised(yi: np.ndarray, yj: np.ndarray, *, layer: int | None,
                   neuron_offset: int) -> np.ndarray:
    """|y_i - y_j| / median over pairs, [P, B] float64, with the zero-median fallbacks."""
    dy = np.abs(yi.astype(np.float64) - yj)
    if dy.shape[0] == 0:
        return dy
    if not np.isfinite(dy).all():
        col = int(np.flatnonzero(~np.isfinite(dy).all(axis=0))[0])
        raise ValueError(f"non-finite pre-activation in layer {layer_label(layer)}, "
                         f"neuron {neuron_offset + col} (in the MD pairs)")
    norm = np.median(dy, axis=0)
    zero = norm == 0
    if zero.any():
        zcols = np.flatnonzero(zero)
        mean_dy = dy[:, zcols].mean(axis=0)
        fallback = zcols[mean_dy > 0]
        norm[zcols] = np.where(mean_dy > 0, mean_dy, 1.0)  # all-zero dy: 0 / 1 -> MD 0
        if fallback.size:
            warnings.warn(
                f"layer {layer_label(layer)}: median |dy| is 0 for neuron(s) "
                f"{short_list(neuron_offset + fallback)}; mean |dy| used as the MD normaliser",
                UserWarning,
                stacklevel=3,
            )
    dy /= norm
    return dy


def _check_pairs(n: int, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    if i.shape != j.shape or i.ndim != 1:
        raise ValueError("i and j must be 1-D index arrays of equal length")
    if i.size and (min(i.min(), j.min()) < 0 or max(i.max(), j.max()) >= n):
        raise ValueError(f"pair indices out of range for {n} tokens")
    return i, j


def pair_distances(x: np.ndarray, y: np.ndarray, i: np.ndarray, j: np.ndarray, *,
                   layer: int | None = None, neuron_offset: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Normalised pair distances: ``dx / max dx`` [P'] and ``dy / median dy`` [P', B].

    ``P'`` counts the pairs kept (``dx > 0``). ``y`` may be [T] (then dy is [P', 1]).
    """
    y = np.asarray(y)
    if y.ndim == 1:
        y = y[:, None]
    x = np.asarray(x)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x has {x.shape[0]} tokens but y has {y.shape[0]}")
    i, j = _check_pairs(y.shape[0], i, j)
    keep, dxn = dx_normalised(x, i, j)
    dyn = dy_normalised(y[i[keep]], y[j[keep]], layer=layer, neuron_offset=neuron_offset)
    return dxn, dyn


def md_from_normalised(dxn: np.ndarray, dyn: np.ndarray, layer: int | None) -> np.ndarray:
    if dxn.size == 0:
        warnings.warn(f"layer {layer_label(layer)}: every sampled pair has identical MLP "
                      "input (dx == 0); MD undefined (NaN)", UserWarning, stacklevel=3)
        return np.full(dyn.shape[1], np.nan)
    # Reduce each neuron's contiguous row: the sum order then never depends on the block size.
    ratio = np.ascontiguousarray((dyn / dxn[:, None]).T)
    return ratio.mean(axis=1)


def mapping_difficulty(x: np.ndarray, y: np.ndarray, i: np.ndarray, j: np.ndarray, *,
                       layer: int | None = None, neuron_offset: int = 0) -> np.ndarray:
    """MD per neuron: ``mean_p ((dy_p / median dy) / (dx_p / max dx))`` over pairs with dx > 0.

    ``x`` [T, d] MLP input, ``y`` [T, B] pre-activations (or [T]); returns float64 [B].
    """
    dxn, dyn = pair_distances(x, y, i, j, layer=layer, neuron_offset=neuron_offset)
    return md_from_normalised(dxn, dyn, layer)


# --------------------------------------------------------------------------- tables
