"""Wasserstein distance of a neuron's pre-activations to a standard normal (WD).

Definitions (Kong et al. 2026, "Negative Pre-activations Differentiate Syntax")
--------------------------------------------------------------------------------
For one MLP neuron, ``a`` are its pre-activations over the ``T`` tokens of a corpus.

WD
    ``z = (a - mean(a)) / std(a)`` (population std, ``ddof=0``); WD is the 1-Wasserstein
    distance between the empirical distribution of ``z`` and a standard normal.

    * ``mode="exact"`` (default): against the continuous N(0, 1), in closed form. With
      ``z_(1) <= ... <= z_(T)`` and bins ``[l, r] = [(k-1)/T, k/T]``,
      ``W1 = sum_k int_l^r |z_(k) - Phi^-1(u)| du``.  Using ``G(t) = int_0^t Phi^-1 = -phi(Phi^-1(t))``
      and ``c = clip(Phi(z_(k)), l, r)`` each term is ``z (2c - l - r) + G(l) + G(r) - 2 G(c)``.
      When ``z_(k)`` lies outside the bin's quantile range ``[Phi^-1(l), Phi^-1(r)]`` the
      integrand has one sign and the term reduces to ``|z_(k) - m_k| / T`` with
      ``m_k = T (phi(Phi^-1(l)) - phi(Phi^-1(r)))`` the normal's mean in bin ``k``; the kernel
      computes that for every ``k`` and evaluates the full formula (with ``ndtr``) only for
      the few ``k`` whose ``z_(k)`` falls inside its bin.  Float64 throughout; deterministic.
    * ``mode="sample"``: as the official code, ``scipy.stats.wasserstein_distance(z, s)`` with
      ``s = np.random.default_rng(seed).standard_normal(T)`` (the same ``s`` for every neuron
      of a call); for equal sizes that is ``mean_k |z_(k) - s_(k)|``.
    * ``mode="streaming"``: W1 to the continuous N(0, 1) from running moments and a fixed z-grid
      histogram (:mod:`negdiff.streaming`), two passes over the shards and never a full column;
      within ``streaming.error_bound(grid)`` (``h/2 + 4 Psi(R)``, ``h = 2 R / bins``) of
      ``exact`` for ``wd``, ``wd_neg`` and ``wd_pos``; ``mean``/``std``/``frac_negative`` are
      exact (float64 Chan merge). Memory is independent of the token count.

    ``wd_neg`` / ``wd_pos`` split the sum over ``k`` by the sign of the *raw* sorted
    pre-activation: ``a_(k) < 0`` versus ``a_(k) >= 0`` (so ``-0.0`` counts as positive);
    ``wd_neg + wd_pos == wd`` up to float rounding.

    Zero-variance neurons (``min == max``, which includes ``T == 1``): ``z`` is taken to be
    all zeros, so ``wd = W1(delta_0, N(0,1)) = E|X| = sqrt(2/pi)`` in exact mode and
    ``mean |s|`` in sample mode (split by the sign of the constant value); ``std`` is reported
    as ``0.0``. A ``UserWarning`` names the layer and neuron indices. WD is never NaN.

    Non-finite pre-activations raise ``ValueError`` naming the layer, the lowest offending
    neuron index and its first offending token position.

Per-neuron tables (blocks of neurons read from a dump, MD beside WD) are built by
:mod:`negdiff.scoring`; mapping difficulty is :mod:`negdiff.mapping_difficulty`.
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
from typing import Sequence

import numpy as np
import polars as pl
from scipy import special

from negdiff import kernels

__all__ = [
    "STATS",
    "WD_KEYS",
    "column_stats",
    "mode_refs",
    "polars_stats_frame",
    "wd_exact_sorted",
    "wd_to_normal",
]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# Order of the statistics returned by the per-column kernel.
STATS = ("wd", "wd_neg", "wd_pos", "mean", "std", "frac_negative", "zero_var")
WD_KEYS = ("wd", "wd_neg", "wd_pos", "mean", "std", "frac_negative")


def layer_label(layer: int | None) -> str:
    return "?" if layer is None else str(layer)


def short_list(idx: Sequence[int], limit: int = 20) -> str:
    idx = [int(v) for v in idx]
    if len(idx) <= limit:
        return str(idx)
    return f"{idx[:limit]} ... ({len(idx)} in all)"


# --------------------------------------------------------------------------- constants


@functools.lru_cache(maxsize=8)
def _exact_consts(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For ``n`` equal-mass bins of N(0, 1): quantile edges ``q`` [n+1], bin means ``m`` [n],
    bin widths ``w`` [n] (``inf`` for the two tail bins)."""
    edges = np.arange(n + 1, dtype=np.float64) / n
    q = special.ndtri(edges)
    q[0], q[-1] = -np.inf, np.inf
    phi = np.exp(-0.5 * q * q) * _INV_SQRT_2PI  # phi(+-inf) == 0
    m = n * (phi[:-1] - phi[1:])
    w = q[1:] - q[:-1]
    for arr in (q, m, w):
        arr.setflags(write=False)
    return q, m, w


def _sample_reference(n: int, seed: int) -> np.ndarray:
    s = np.sort(np.random.default_rng(seed).standard_normal(n))
    s.setflags(write=False)
    return s


class _Scratch(threading.local):
    """Per-thread float64 scratch, so polars' worker threads never share buffers."""

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        bufs = getattr(self, "bufs", None)
        if bufs is None or bufs[0].shape[0] != n:
            bufs = (np.empty(n, np.float64), np.empty(n, np.float64), np.empty(n, np.bool_))
            self.bufs = bufs
        return bufs


_SCRATCH = _Scratch()


# --------------------------------------------------------------------------- WD kernels


def _terms_from_z(z: np.ndarray, ref: np.ndarray, q: np.ndarray | None, w: np.ndarray | None,
                  t: np.ndarray, mask: np.ndarray | None = None) -> None:
    """Write ``T *`` (per-k contribution to W1) into ``t`` for one sorted float64 column ``z``.

    ``ref`` is the per-k reference point (normal bin means ``m`` in exact mode, the sorted
    normal sample in sample mode). ``q``/``w`` (exact mode only) give the bins' quantile
    edges and widths; ``k`` whose ``z`` lies inside its bin get the full closed form.
    """
    np.subtract(z, ref, out=t)
    np.abs(t, out=t)
    if q is None:
        return
    n = z.shape[0]
    # |z - m_k| <= w_k is necessary for q_{k-1} <= z <= q_k (m_k lies in the bin).
    cand = np.flatnonzero(np.less_equal(t, w, out=mask))
    if cand.size == 0:
        return
    zc = z[cand]
    lo_q, hi_q = q[cand], q[cand + 1]
    inside = (zc >= lo_q) & (zc <= hi_q)
    if not inside.any():
        return
    k = cand[inside]
    zc, lo_q, hi_q = zc[inside], lo_q[inside], hi_q[inside]
    lo = k / n
    hi = (k + 1) / n
    c = np.clip(special.ndtr(zc), lo, hi)
    phi_z = np.exp(-0.5 * zc * zc) * _INV_SQRT_2PI
    phi_lo = np.exp(-0.5 * lo_q * lo_q) * _INV_SQRT_2PI  # 0 at -inf
    phi_hi = np.exp(-0.5 * hi_q * hi_q) * _INV_SQRT_2PI
    # G(c) = -phi(z); G(l) = -phi(q_lo); G(r) = -phi(q_hi)
    left = np.maximum(zc * (c - lo) + phi_z - phi_lo, 0.0)  # int_l^c (z - Phi^-1)
    right = np.maximum(phi_z - phi_hi - zc * (hi - c), 0.0)  # int_c^r (Phi^-1 - z)
    t[k] = (left + right) * n


def wd_exact_sorted(z_sorted: np.ndarray) -> np.ndarray:
    """Per-k contributions to the exact W1(empirical(z), N(0,1)).

    ``z_sorted`` is ``[T]`` or ``[T, B]``, sorted along axis 0 (not z-scored here). Returns
    float64 of the same shape whose column sums are the W1 distances.
    """
    z = np.asarray(z_sorted, dtype=np.float64)
    squeeze = z.ndim == 1
    if squeeze:
        z = z[:, None]
    if z.ndim != 2:
        raise ValueError(f"z_sorted must be 1-D or 2-D, got shape {z.shape}")
    n, b = z.shape
    out = np.empty((n, b), np.float64)
    if n == 0:
        return out[:, 0] if squeeze else out
    if np.any(np.diff(z, axis=0) < 0):
        raise ValueError("z_sorted must be sorted along axis 0")
    q, m, w = _exact_consts(n)
    col = np.empty(n, np.float64)
    zc = np.empty(n, np.float64)
    for j in range(b):
        zc[:] = z[:, j]
        _terms_from_z(zc, m, q, w, col)
        out[:, j] = col
    out /= n
    return out[:, 0] if squeeze else out


def column_stats(a_sorted: np.ndarray, ref: np.ndarray, q: np.ndarray | None,
                  w: np.ndarray | None) -> tuple[float, ...]:
    """Statistics of one finite, sorted column of raw pre-activations (see ``STATS``)."""
    if kernels.AVAILABLE and a_sorted.dtype in (np.float32, np.float64):  # the same, fused and compiled
        exact = q is not None
        return kernels.sorted_column_stats(a_sorted, ref, q if exact else ref, w if exact else ref, exact)
    n = a_sorted.shape[0]
    d, t, mask = _SCRATCH.get(n)
    nneg = int(np.searchsorted(a_sorted, 0.0, side="left"))  # count of a < 0
    mu = float(a_sorted.mean(dtype=np.float64))
    zero_var = bool(a_sorted[0] == a_sorted[-1])
    if zero_var:
        mu = float(a_sorted[0])
        sd = 0.0
        d.fill(0.0)
    else:
        np.subtract(a_sorted, mu, out=d, dtype=np.float64)
        # einsum's own loop, not BLAS: BLAS thread wake-ups cost more than the work here.
        sd = math.sqrt(float(np.einsum("i,i->", d, d)) / n)
        np.divide(d, sd, out=d)
    _terms_from_z(d, ref, q, w, t, mask)
    neg = float(t[:nneg].sum()) / n
    pos = float(t[nneg:].sum()) / n
    return (neg + pos, neg, pos, mu, sd, nneg / n, float(zero_var))


def mode_refs(n: int, mode: str, seed: int):
    if mode == "exact":
        q, m, w = _exact_consts(n)
        return m, q, w
    if mode == "sample":
        return _sample_reference(n, seed), None, None
    raise ValueError(f"mode must be 'exact' or 'sample' here ('streaming' is score_layer's), "
                     f"got {mode!r}")


def raise_nonfinite(a: np.ndarray, layer: int | None, neuron_offset: int) -> None:
    bad = ~np.isfinite(a)
    cols = np.flatnonzero(bad.any(axis=0))
    col = int(cols[0])
    tok = int(np.flatnonzero(bad[:, col])[0])
    raise ValueError(
        f"non-finite pre-activation in layer {layer_label(layer)}: token position {tok}, "
        f"neuron {neuron_offset + col} (value {a[tok, col]!r}; lowest offending neuron, "
        f"its first offending token)"
    )


def warn_zero_var(cols: np.ndarray, layer: int | None, neuron_offset: int, mode: str) -> None:
    if cols.size == 0:
        return
    what = "mean|s|" if mode == "sample" else "sqrt(2/pi)"
    warnings.warn(
        f"layer {layer_label(layer)}: zero-variance pre-activations for neuron(s) "
        f"{short_list(neuron_offset + cols)}; z treated as all zeros (wd = {what})",
        UserWarning,
        stacklevel=3,
    )


def wd_to_normal(a: np.ndarray, mode: str = "exact", seed: int = 0, *,
                 layer: int | None = None, neuron_offset: int = 0) -> dict[str, np.ndarray]:
    """WD of each column of raw pre-activations ``a`` [T, B] (or [T]) to N(0, 1).

    Returns ``{"wd", "wd_neg", "wd_pos", "mean", "std", "frac_negative"}``, each float64 [B].
    ``layer`` / ``neuron_offset`` only label warnings and errors.
    """
    a = np.asarray(a)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"a must be [T, B], got shape {a.shape}")
    n, b = a.shape
    if n == 0:
        raise ValueError("wd_to_normal needs at least one token")
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    ref, q, w = mode_refs(n, mode, seed)
    cols = np.sort(np.array(a.T, order="C"), axis=1)  # neuron-major sorted copy
    finite = np.isfinite(cols[:, 0]) & np.isfinite(cols[:, -1])  # NaN sorts last
    if not finite.all():
        raise_nonfinite(a, layer, neuron_offset)
    res = np.array([column_stats(cols[j], ref, q, w) for j in range(b)], dtype=np.float64)
    res = res.reshape(b, len(STATS))
    warn_zero_var(np.flatnonzero(res[:, -1] > 0), layer, neuron_offset, mode)
    return {k: res[:, i].copy() for i, k in enumerate(WD_KEYS)}


# --------------------------------------------------------------------------- MD


def polars_stats_frame(frame: pl.DataFrame, n: int, ref: np.ndarray,
                        q: np.ndarray | None) -> pl.DataFrame:
    """Pure-polars statistics: one list-valued (``STATS``) column per neuron column, one row.

    Staged lazily (sort -> z -> per-k terms -> sums) so each intermediate column is
    materialised once instead of being re-expanded inside every later expression.
    """
    names = frame.columns
    lit = lambda arr: pl.lit(pl.Series(np.ascontiguousarray(arr, dtype=np.float64)))  # noqa: E731
    srt = frame.lazy().select([pl.col(c).sort().cast(pl.Float64) for c in names])

    def zero_var(c):
        return pl.col(c).first() == pl.col(c).last()

    def sd(c):
        return pl.when(zero_var(c)).then(pl.lit(0.0)).otherwise(pl.col(c).std(ddof=0))

    staged = srt.with_columns(
        [pl.when(zero_var(c)).then(pl.lit(0.0)).otherwise(
            (pl.col(c) - pl.col(c).mean()) / pl.col(c).std(ddof=0)).alias(f"{c}#z")
         for c in names]
    )
    ref_l = lit(ref)
    terms = []
    for c in names:
        z = pl.col(f"{c}#z")
        term = (z - ref_l).abs() / n
        if q is not None:
            lo = pl.lit(pl.Series(np.arange(n, dtype=np.float64) / n))
            hi = pl.lit(pl.Series(np.arange(1, n + 1, dtype=np.float64) / n))
            phi_q = np.exp(-0.5 * q * q) * _INV_SQRT_2PI
            inside = (z >= lit(q[:-1])) & (z <= lit(q[1:]))
            cc = special.ndtr(z).clip(lo, hi)
            phi_z = (z * z * -0.5).exp() * _INV_SQRT_2PI
            left = (z * (cc - lo) + phi_z - lit(phi_q[:-1])).clip(lower_bound=0.0)
            right = (phi_z - lit(phi_q[1:]) - z * (hi - cc)).clip(lower_bound=0.0)
            term = pl.when(inside).then(left + right).otherwise(term)
        terms.append(term.alias(f"{c}#t"))
    staged = staged.with_columns(terms)
    aggs = []
    for c in names:
        a, t = pl.col(c), pl.col(f"{c}#t")
        neg, pos = t.filter(a < 0).sum(), t.filter(a >= 0).sum()
        finite = a.first().is_finite() & a.last().is_finite()  # NaN sorts last
        aggs.append(pl.concat_list([
            pl.when(finite).then(neg + pos).otherwise(pl.lit(math.nan)), neg, pos,
            pl.when(zero_var(c)).then(a.first()).otherwise(a.mean()), sd(c),
            (a < 0).mean().cast(pl.Float64), zero_var(c).cast(pl.Float64),
        ]).alias(c))
    return staged.select(aggs).collect()
