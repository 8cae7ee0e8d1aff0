"""Per-neuron scores: Wasserstein distance to a normal (WD) and mapping difficulty (MD).

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

MD (mapping difficulty)
    Random token pairs ``(i, j)``, ``i != j``, sampled once per layer with ``md_seed`` (shared by
    all neurons of the layer). With ``x`` the MLP input vectors and ``y`` the neuron's
    pre-activation: ``dx_p = ||x_i - x_j||_2``, ``dy_p = |y_i - y_j|`` and
    ``MD = mean_p ((dy_p / median_p dy) / (dx_p / max_p dx))``. Pairs with ``dx == 0`` are
    dropped first. If a neuron's ``median dy == 0``: ``MD = 0.0`` when all its ``dy`` are 0,
    otherwise the mean ``dy`` is used as the normaliser (with a ``UserWarning``). If every
    pair has ``dx == 0`` MD is undefined: NaN from :func:`mapping_difficulty` (with a
    warning), null in the score tables. Float64 throughout.

Implementation notes
--------------------
:func:`score_layer` reads ``neuron_block`` neurons at a time (``[T, B]`` float32), copies them
into a neuron-major ``[B, T]`` buffer (tiled transpose), sorts each row in place with numpy's
SIMD sort, wraps the rows zero-copy as a polars DataFrame (one column per neuron) and computes
the per-column statistics in a lazy ``LazyFrame.map_batches`` whose kernel works column by
column in float64 with cache-resident scratch. Per-block results are assembled into the output
table with polars. ``engine="polars"`` computes the same statistics with pure polars
expressions (sort, z-score, closed-form terms with ``scipy.special.ndtr`` applied to
expressions, filtered sums); it agrees to ~1e-13 but is far slower (polars' float sort is slower
than numpy's, and per-column ``map_batches`` UDFs contend for the GIL; timings in BENCHMARKS.md §1),
so it is kept only as a cross-check.
Memory: one neuron-major ``[B, T]`` buffer, allocated once per layer and reused by every block
(readers with ``iter_pre_activation`` transpose each shard straight into it, so no ``[T, B]``
block exists; others add one ``[T, B]`` block), one shard, the MD pair rows, and ``2 T`` float64
scratch. Timings and memory: ``benchmarks/bench_scoring.py``, BENCHMARKS.md §1.
"""

from __future__ import annotations

import functools
import math
import threading
import warnings
from typing import Any, Iterable, Sequence

import numpy as np
import polars as pl
import torch
from scipy import special

from negdiff import kernels

__all__ = [
    "wd_exact_sorted",
    "wd_to_normal",
    "md_pairs",
    "mapping_difficulty",
    "pair_distances",
    "score_layer",
    "score_activations",
    "top_neurons",
    "SCORE_SCHEMA",
]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

SCORE_SCHEMA: dict[str, Any] = {
    "layer": pl.Int32,
    "neuron": pl.Int32,
    "wd": pl.Float64,
    "wd_neg": pl.Float64,
    "wd_pos": pl.Float64,
    "md": pl.Float64,
    "mean": pl.Float64,
    "std": pl.Float64,
    "frac_negative": pl.Float64,
}

# Order of the statistics returned by the per-column kernel.
_STATS = ("wd", "wd_neg", "wd_pos", "mean", "std", "frac_negative", "zero_var")
_WD_KEYS = ("wd", "wd_neg", "wd_pos", "mean", "std", "frac_negative")
_VALID_MODES = ("exact", "sample", "streaming")


def _layer_name(layer: int | None) -> str:
    return "?" if layer is None else str(layer)


def _short_list(idx: Sequence[int], limit: int = 20) -> str:
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


def _column_stats(a_sorted: np.ndarray, ref: np.ndarray, q: np.ndarray | None,
                  w: np.ndarray | None) -> tuple[float, ...]:
    """Statistics of one finite, sorted column of raw pre-activations (see ``_STATS``)."""
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


def _mode_refs(n: int, mode: str, seed: int):
    if mode == "exact":
        q, m, w = _exact_consts(n)
        return m, q, w
    if mode == "sample":
        return _sample_reference(n, seed), None, None
    raise ValueError(f"mode must be 'exact' or 'sample' here ('streaming' is score_layer's), "
                     f"got {mode!r}")


def _raise_nonfinite(a: np.ndarray, layer: int | None, neuron_offset: int) -> None:
    bad = ~np.isfinite(a)
    cols = np.flatnonzero(bad.any(axis=0))
    col = int(cols[0])
    tok = int(np.flatnonzero(bad[:, col])[0])
    raise ValueError(
        f"non-finite pre-activation in layer {_layer_name(layer)}: token position {tok}, "
        f"neuron {neuron_offset + col} (value {a[tok, col]!r}; lowest offending neuron, "
        f"its first offending token)"
    )


def _warn_zero_var(cols: np.ndarray, layer: int | None, neuron_offset: int, mode: str) -> None:
    if cols.size == 0:
        return
    what = "mean|s|" if mode == "sample" else "sqrt(2/pi)"
    warnings.warn(
        f"layer {_layer_name(layer)}: zero-variance pre-activations for neuron(s) "
        f"{_short_list(neuron_offset + cols)}; z treated as all zeros (wd = {what})",
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
    ref, q, w = _mode_refs(n, mode, seed)
    cols = np.sort(np.array(a.T, order="C"), axis=1)  # neuron-major sorted copy
    finite = np.isfinite(cols[:, 0]) & np.isfinite(cols[:, -1])  # NaN sorts last
    if not finite.all():
        _raise_nonfinite(a, layer, neuron_offset)
    res = np.array([_column_stats(cols[j], ref, q, w) for j in range(b)], dtype=np.float64)
    res = res.reshape(b, len(_STATS))
    _warn_zero_var(np.flatnonzero(res[:, -1] > 0), layer, neuron_offset, mode)
    return {k: res[:, i].copy() for i, k in enumerate(_WD_KEYS)}


# --------------------------------------------------------------------------- MD


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


_draw_md_pairs = md_pairs  # for score_layer, whose pair count takes the config's name ``md_pairs``


def _dx_normalised(x: np.ndarray, i: np.ndarray, j: np.ndarray,
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


def _dy_normalised(yi: np.ndarray, yj: np.ndarray, *, layer: int | None,
                   neuron_offset: int) -> np.ndarray:
    """|y_i - y_j| / median over pairs, [P, B] float64, with the zero-median fallbacks."""
    dy = np.abs(yi.astype(np.float64) - yj)
    if dy.shape[0] == 0:
        return dy
    if not np.isfinite(dy).all():
        col = int(np.flatnonzero(~np.isfinite(dy).all(axis=0))[0])
        raise ValueError(f"non-finite pre-activation in layer {_layer_name(layer)}, "
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
                f"layer {_layer_name(layer)}: median |dy| is 0 for neuron(s) "
                f"{_short_list(neuron_offset + fallback)}; mean |dy| used as the MD normaliser",
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
    keep, dxn = _dx_normalised(x, i, j)
    dyn = _dy_normalised(y[i[keep]], y[j[keep]], layer=layer, neuron_offset=neuron_offset)
    return dxn, dyn


def _md_from_normalised(dxn: np.ndarray, dyn: np.ndarray, layer: int | None) -> np.ndarray:
    if dxn.size == 0:
        warnings.warn(f"layer {_layer_name(layer)}: every sampled pair has identical MLP "
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
    return _md_from_normalised(dxn, dyn, layer)


# --------------------------------------------------------------------------- tables


def _neuron_major(block: np.ndarray, rows: int = 256, out: np.ndarray | None = None) -> np.ndarray:
    """[T, B] -> a C-contiguous [B, T] copy (into ``out`` when given), transposed in cache-sized
    row tiles."""
    t, b = block.shape
    if out is None:
        out = np.empty((b, t), block.dtype)
    for s in range(0, t, rows):
        out[:, s:s + rows] = block[s:s + rows].T
    return out


def _fill_neuron_major(reader, layer: int, start: int, stop: int, n_tokens: int,
                       buf: np.ndarray | None) -> np.ndarray:
    """Neurons ``start:stop`` of ``layer`` as a neuron-major [B, T] array, written into ``buf``
    (reused across blocks) when it fits.

    Readers with ``iter_pre_activation`` (the dump reader) are read shard by shard and each shard
    block is transposed straight into the buffer, so no [T, B] block is ever materialised. Reusing
    one buffer matters: a fresh 100+ MB allocation per block costs more in page faults than the
    transpose itself (BENCHMARKS.md §1).
    """
    b = stop - start

    def target(dtype) -> np.ndarray:
        if buf is not None and buf.dtype == dtype and buf.shape[0] >= b and buf.shape[1] == n_tokens:
            return buf[:b]
        return np.empty((b, n_tokens), dtype)

    def as_float(block: np.ndarray) -> np.ndarray:
        block = np.asarray(block)
        return block if block.dtype in (np.float32, np.float64) else block.astype(np.float32)

    if hasattr(reader, "iter_pre_activation"):
        nm = None
        pos = 0
        for block in reader.iter_pre_activation(layer, start, stop):
            block = as_float(block)
            if block.ndim != 2 or block.shape[1] != b or pos + block.shape[0] > n_tokens:
                raise ValueError(f"layer {layer}: iter_pre_activation({start}, {stop}) gave a block "
                                 f"of shape {block.shape} at token {pos} ({n_tokens} tokens, "
                                 f"{b} neurons expected)")
            if nm is None:
                nm = target(block.dtype)
            _neuron_major(block, out=nm[:, pos:pos + block.shape[0]])
            pos += block.shape[0]
        if pos != n_tokens:
            raise ValueError(f"layer {layer}: iter_pre_activation({start}, {stop}) gave {pos} "
                             f"tokens, expected {n_tokens}")
        return nm
    block = as_float(reader.read_pre_activation(layer, start, stop))
    if block.shape != (n_tokens, b):
        raise ValueError(f"layer {layer}: read_pre_activation({start}, {stop}) returned "
                         f"shape {block.shape}, expected {(n_tokens, b)}")
    return _neuron_major(block, out=target(block.dtype))


_STAT_SCHEMA = {k: pl.Float64 for k in _STATS}


def _block_stats(nm: np.ndarray, start: int, mode: str, seed: int,
                 engine: str = "numpy") -> np.ndarray:
    """Statistics [B, len(_STATS)] of a neuron-major float32 block [B, T] (sorted in place).

    The block is wrapped zero-copy as a polars DataFrame, one column per neuron.
    ``engine="numpy"`` (default): a lazy ``map_batches`` over the frame runs the numpy kernel
    column by column. ``engine="polars"``: the same statistics as pure polars expressions
    (slower, kept as a cross-check; see :func:`_polars_stats_frame`).
    """
    b, n = nm.shape
    ref, q, w = _mode_refs(n, mode, seed)
    names = [f"n{start + k}" for k in range(b)]
    if engine == "polars":
        frame = pl.DataFrame({name: nm[k] for k, name in enumerate(names)})
        out = _polars_stats_frame(frame, n, ref, q)
        return np.array([out[name][0].to_list() for name in names], dtype=np.float64)
    if engine != "numpy":
        raise ValueError(f"engine must be 'numpy' or 'polars', got {engine!r}")
    nm.sort(axis=1)  # numpy's SIMD sort, in place on our own neuron-major copy
    frame = pl.DataFrame({name: nm[k] for k, name in enumerate(names)})  # zero-copy columns

    def kernel(df: pl.DataFrame) -> pl.DataFrame:
        rows = []
        for s in df.iter_columns():
            col = s.to_numpy()
            if not (math.isfinite(col[0]) and math.isfinite(col[-1])):  # NaN sorts last
                rows.append((math.nan,) * len(_STATS))
            else:
                rows.append(_column_stats(col, ref, q, w))
        arr = np.array(rows, dtype=np.float64).reshape(len(rows), len(_STATS))
        return pl.DataFrame({k: arr[:, i] for i, k in enumerate(_STATS)})

    stats = frame.lazy().map_batches(kernel, schema=_STAT_SCHEMA).collect()
    return stats.to_numpy()


def _polars_stats_frame(frame: pl.DataFrame, n: int, ref: np.ndarray,
                        q: np.ndarray | None) -> pl.DataFrame:
    """Pure-polars statistics: one list-valued (``_STATS``) column per neuron column, one row.

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


def _chunks(reader, layer: int, start: int, stop: int, rows: int = 8192):
    """Token chunks [t, stop - start] of a neuron block: the reader's shards when it streams them,
    otherwise row slices of one full read (memory then follows the token count)."""
    if hasattr(reader, "iter_pre_activation"):
        yield from reader.iter_pre_activation(layer, start, stop)
        return
    block = np.asarray(reader.read_pre_activation(layer, start, stop))
    for s in range(0, block.shape[0], rows):
        yield block[s:s + rows]


def _streaming_block(reader, layer: int, start: int, stop: int, n_tokens: int, grid,
                     md_rows: tuple[np.ndarray, np.ndarray] | None):
    """Streaming statistics of one neuron block: (stats [B, len(_STATS)], yi, yj).

    Pass 1 merges chunk moments and gathers the MD pairs' values; pass 2 fills the histogram.
    """
    from negdiff import streaming as St

    b = stop - start
    mom = St.moments_init(b)
    yi = yj = None
    if md_rows is not None:
        pi, pj = md_rows
        yi = np.empty((pi.size, b), np.float32)
        yj = np.empty((pj.size, b), np.float32)
    pos = 0
    for chunk in _chunks(reader, layer, start, stop):
        chunk = np.asarray(chunk)
        if chunk.ndim != 2 or chunk.shape[1] != b:
            raise ValueError(f"layer {layer}: pre-activation chunk of shape {chunk.shape}, "
                             f"expected [t, {b}]")
        mom = St.moments_update(mom, chunk)
        if md_rows is not None:
            for idx, out in ((pi, yi), (pj, yj)):
                sel = np.flatnonzero((idx >= pos) & (idx < pos + chunk.shape[0]))
                out[sel] = chunk[idx[sel] - pos]
        pos += chunk.shape[0]
    if pos != n_tokens:
        raise ValueError(f"layer {layer}: read {pos} tokens, expected {n_tokens}")
    if not bool(torch.isfinite(mom.min).all() and torch.isfinite(mom.max).all()):
        _raise_nonfinite(np.asarray(reader.read_pre_activation(layer, start, stop)), layer, start)
    # int32 counts (half the cache footprint of the scattered increments) while they cannot overflow
    hist = St.hist_init(b, grid, dtype=torch.int32 if n_tokens < 2**31 else torch.int64)
    std = mom.std
    for chunk in _chunks(reader, layer, start, stop):
        St.hist_update(hist, chunk, mom.mean, std)
    return _stream_stats(hist, mom), yi, yj


def _stream_stats(hist, mom) -> np.ndarray:
    """[B, len(_STATS)] from a streaming histogram and its moments (numpy or tensors)."""
    from negdiff import streaming as St

    m = mom.numpy()
    wd = St.w1_from_histogram(hist, m)
    zero_var = m.min == m.max
    mean = np.where(zero_var, m.min, m.mean)
    return np.stack([wd["wd"], wd["wd_neg"], wd["wd_pos"], mean, m.std, m.n_neg / m.n,
                     zero_var.astype(np.float64)], axis=1)


def score_layer(reader, layer: int, *, mode: str = "exact", seed: int = 0,
                neuron_block: int = 256, md_pairs: int = 4096,
                md_seed: int = 0, engine: str = "numpy", bins: int = 4096,
                z_range: float = 8.0) -> pl.DataFrame:
    """Score every neuron of one layer; one row per neuron (schema ``SCORE_SCHEMA``).

    Keywords are named as in the config's ``scoring`` section: ``md_pairs`` is the number of MD token
    pairs (drawn by :func:`md_pairs` with ``md_seed``); ``bins`` / ``z_range`` set the z-grid of
    ``mode="streaming"`` (ignored otherwise).
    """
    if mode not in _VALID_MODES:
        raise ValueError(f"mode must be one of {_VALID_MODES}, got {mode!r}")
    if neuron_block < 1:
        raise ValueError(f"neuron_block must be positive, got {neuron_block}")
    n_tokens = int(reader.n_tokens)
    n_neurons = int(reader.n_neurons(layer))
    if n_tokens < 1:
        raise ValueError(f"layer {layer}: no tokens to score")

    # MD setup: pairs and normalised dx, once per layer; only the rows the pairs touch are read.
    md_ready = bool(reader.has_mlp_input) and n_tokens >= 2
    if bool(reader.has_mlp_input) and not md_ready:
        warnings.warn(f"layer {layer}: fewer than 2 tokens; md left null", UserWarning,
                      stacklevel=2)
    if md_ready:
        pi, pj = _draw_md_pairs(n_tokens, md_pairs, md_seed)
        rows = np.unique(np.concatenate([pi, pj]))
        x = np.asarray(reader.read_mlp_input(layer, rows))
        if x.shape[0] != rows.size:
            raise ValueError(f"layer {layer}: read_mlp_input returned {x.shape[0]} rows, "
                             f"expected {rows.size}")
        keep, dxn = _dx_normalised(x, np.searchsorted(rows, pi), np.searchsorted(rows, pj))
        pi, pj = pi[keep], pj[keep]
        del x

    from_histograms = getattr(reader, "keep", "all") == "histograms"
    if from_histograms:
        if mode != "streaming":
            raise ValueError(
                f"activation dump {getattr(reader, 'path', '?')} keeps histograms, not every token "
                f"(activations.keep: histograms): it can only be scored with scoring.mode: streaming, got {mode!r}")
        mom, hist = reader.histogram(layer)
    grid = None
    if mode == "streaming":
        from negdiff import streaming as St

        grid = St.Grid(int(bins), float(z_range))
    parts: list[pl.DataFrame] = []
    buf: np.ndarray | None = None  # one neuron-major [B, T] buffer, reused by every block
    for start in range(0, n_neurons, neuron_block):
        stop = min(start + neuron_block, n_neurons)
        nm = None
        if from_histograms:  # the dump's moments and histograms; MD over its token sample
            sl = slice(start, stop)
            stats = _stream_stats(St.Histogram(hist.grid, hist.slots[sl], hist.tail_n[sl], hist.tail_sum[sl]),
                                  St.Moments(mom.n, mom.mean[sl], mom.m2[sl], mom.min[sl], mom.max[sl],
                                             mom.n_neg[sl]))
            if md_ready:
                y = np.asarray(reader.read_pre_activation(layer, start, stop))
                yi, yj = y[pi], y[pj]
        elif mode == "streaming":
            stats, yi, yj = _streaming_block(reader, layer, start, stop, n_tokens, grid,
                                             (pi, pj) if md_ready else None)
        else:
            nm = _fill_neuron_major(reader, layer, start, stop, n_tokens, buf)
            if buf is None:
                buf = nm
            if md_ready:  # gather the MD pairs' values before the rows are sorted in place
                yi, yj = nm[:, pi].T, nm[:, pj].T
            stats = _block_stats(nm, start, mode, seed, engine)
            if np.isnan(stats[:, 0]).any():  # error path: re-read the block to name the token
                _raise_nonfinite(np.asarray(reader.read_pre_activation(layer, start, stop)),
                                 layer, start)
        _warn_zero_var(np.flatnonzero(stats[:, -1] > 0), layer, start, mode)
        if md_ready:
            dyn = _dy_normalised(yi, yj, layer=layer, neuron_offset=start)
            del yi, yj
            md = _md_from_normalised(dxn, dyn, layer)
        else:
            md = np.full(stop - start, np.nan)
        cols = {k: stats[:, i] for i, k in enumerate(_STATS) if k != "zero_var"}
        parts.append(
            pl.DataFrame(
                {
                    "layer": np.full(stop - start, layer, np.int32),
                    "neuron": np.arange(start, stop, dtype=np.int32),
                    **cols,
                    "md": md,
                }
            ).with_columns(pl.col("md").fill_nan(None))
        )
        del nm
    if not parts:
        return pl.DataFrame(schema=SCORE_SCHEMA)
    return pl.concat(parts).select(
        [pl.col(k).cast(v) for k, v in SCORE_SCHEMA.items()]
    )


def score_activations(reader, layers: Iterable[int] | None = None, **kw) -> pl.DataFrame:
    """:func:`score_layer` over ``layers`` (default: all of ``reader.layers``), sorted by
    (layer, neuron)."""
    layers = list(reader.layers) if layers is None else list(layers)
    frames = [score_layer(reader, int(layer), **kw) for layer in layers]
    if not frames:
        return pl.DataFrame(schema=SCORE_SCHEMA)
    return pl.concat(frames).sort(["layer", "neuron"])


def top_neurons(scores: pl.DataFrame, percent: float) -> pl.DataFrame:
    """Top ``percent`` % of neurons by ``wd`` within each layer.

    Per layer ``count = max(1, round(N * percent / 100))`` (Python ``round``, i.e. halves to
    even) with ``N`` the layer's rows in ``scores``; ties in ``wd`` go to the lower neuron
    index. Zero-variance (constant, e.g. dead) neurons have a defined WD but rank after every
    neuron that varies, so they are selected only when nothing else is left. Rows come back
    ordered by layer, then rank (``wd`` descending).
    """
    if not (0 < percent <= 100) or not math.isfinite(percent):
        raise ValueError(f"percent must be in (0, 100], got {percent}")
    sizes = scores.group_by("layer").len()
    counts = pl.DataFrame(
        {
            "layer": sizes["layer"],
            "_count": [max(1, round(n * percent / 100)) for n in sizes["len"].to_list()],
        },
        schema_overrides={"layer": scores.schema["layer"], "_count": pl.Int64},
    )
    return (
        scores.with_columns(
            (pl.col("std") > 0).fill_null(True).alias("_varies") if "std" in scores.columns else pl.lit(True).alias("_varies")
        )
        .sort(["layer", "_varies", "wd", "neuron"], descending=[False, True, True, False],
              nulls_last=True)
        .drop("_varies")
        .with_columns(pl.int_range(pl.len()).over("layer").alias("_rank"))
        .join(counts, on="layer", how="left")
        .filter(pl.col("_rank") < pl.col("_count"))
        .drop(["_rank", "_count"])
    )
