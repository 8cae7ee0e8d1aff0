"""Streaming WD: W1 to N(0, 1) from running moments and a fixed z-grid histogram.

Nothing here ever holds a neuron's full column: memory is ``O(B x bins)`` for ``B`` neurons plus
one chunk of tokens, whatever the token count. Two passes over the tokens (shards):

1. **Moments.** Per neuron, float64 count / mean / M2 (sum of squared deviations), merged across
   chunks with Chan et al.'s parallel update (:func:`moments_update`, :func:`moments_merge`),
   plus min, max and the exact count of negative raw values (``frac_negative``).
2. **Histogram.** With ``mean`` and ``std`` (population, ``ddof=0``) known, each value's
   ``z = (a - mean) / std`` is counted into a fixed grid of ``bins`` equal bins of width
   ``h = 2 R / bins`` on ``[-R, R)`` (:func:`hist_update`). Values outside the grid are not
   binned: per side (``z < -R`` / ``z >= R``) and per sign of the *raw* value, the count and the
   exact float64 sum of their ``z`` are kept.

W1 from the histogram (:func:`w1_from_histogram`)
-------------------------------------------------
In quantile form ``W1 = int_0^1 |F^-1(u) - Phi^-1(u)| du``. Replace every binned value by its
bin centre ``c_j``: the quantile function becomes a step function, equal to ``c_j`` on the
``u``-interval ``[U_{j-1}, U_j)`` of the bin's cumulative mass, and each piece is integrated in
closed form against ``Phi^-1`` (the same formula as the exact scorer, with ``G(t) = -phi(Phi^-1(t))``
the antiderivative of ``Phi^-1``). For the tail pieces (out-of-grid mass) only
``int F^-1 du = (sum of tail z) / n`` is known, so their term is ``|sum/n - int Phi^-1 du|``.

``wd_neg`` / ``wd_pos`` split ``u`` at ``p0 = frac_negative`` (the negative raw values are exactly
the lowest ``n_neg`` z's, as in the exact scorer); the piece containing ``p0`` is cut there, and the
tails keep their sums per raw sign, so every part is computed the same way.

Error bound (stated, and tested in tests/test_streaming.py)
-----------------------------------------------------------
``|wd_stream - wd_exact| <= h / 2 + 4 Psi(R) + eps`` and the same for ``wd_neg`` and ``wd_pos``,
with ``Psi(R) = phi(R) - R Phi(-R) = E[(-R - Y)^+]`` for ``Y ~ N(0, 1)`` (``6e-9`` at ``R = 6``,
``5e-16`` at ``R = 8``):

* Binned values: moving every value to its bin centre moves it by at most ``h / 2``; the
  quantile (order-preserving) coupling gives ``W1(mu, nu) <= mean |move| <= h / 2``, and by the
  triangle inequality ``|W1(mu, N) - W1(nu, N)| <= W1(mu, nu)``. The same coupling bounds each
  ``u``-part separately, so ``wd_neg`` and ``wd_pos`` obey the same bound.
* Tails: on a tail piece, ``|int (f - g)|`` differs from ``int |f - g|`` by ``2 int (f - g)^+``
  (or ``^-``), which is non-zero only where ``Phi^-1(u)`` lies beyond the grid on the same side;
  that area is at most ``Psi(R)`` per side, so ``2 Psi(R)`` per side.
* ``eps``: z is computed in float64 and the bin index is ``floor((z + R) / h)`` in float64, so a
  value's bin is off only within rounding of an edge, moving it by ``h / 2 + O(1e-12)``; ``eps``
  accounts for that and for float64 summation (:func:`error_bound` adds ``1e-9``).

The typical error is far below the bound (signed displacements cancel; see BENCHMARKS.md).
Zero-variance neurons (min == max) get the exact scorer's value, ``sqrt(2/pi)``, split by the
sign of the constant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

__all__ = [
    "Grid",
    "Moments",
    "Histogram",
    "moments_init",
    "moments_update",
    "moments_merge",
    "hist_init",
    "hist_update",
    "w1_from_histogram",
    "error_bound",
    "normal_tail_psi",
]

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


@dataclass(frozen=True)
class Grid:
    """``bins`` equal bins on ``[-z_range, z_range)`` in z-score units."""

    bins: int = 4096
    z_range: float = 8.0

    def __post_init__(self):
        if int(self.bins) < 2:
            raise ValueError(f"bins must be >= 2, got {self.bins}")
        if not (math.isfinite(self.z_range) and self.z_range > 0):
            raise ValueError(f"z_range must be positive and finite, got {self.z_range}")

    @property
    def width(self) -> float:
        return 2.0 * self.z_range / self.bins

    @property
    def centres(self) -> np.ndarray:
        return -self.z_range + (np.arange(self.bins, dtype=np.float64) + 0.5) * self.width


def normal_tail_psi(r: float) -> float:
    """``Psi(r) = E[(-r - Y)^+] = phi(r) - r Phi(-r)`` for ``Y ~ N(0, 1)``."""
    return float(math.exp(-0.5 * r * r) * _INV_SQRT_2PI - r * special.ndtr(-r))


def error_bound(grid: Grid) -> float:
    """Upper bound on ``|wd_stream - wd_exact|`` (also for ``wd_neg`` and ``wd_pos``)."""
    return grid.width / 2 + 4 * normal_tail_psi(grid.z_range) + 1e-9


# --------------------------------------------------------------------------- moments


@dataclass
class Moments:
    """Per-neuron running statistics (float64 except the integer counts)."""

    n: int
    mean: np.ndarray
    m2: np.ndarray
    min: np.ndarray
    max: np.ndarray
    n_neg: np.ndarray

    @property
    def std(self) -> np.ndarray:
        """Population std (``ddof=0``); 0 where ``min == max``."""
        sd = np.sqrt(np.maximum(self.m2, 0.0) / max(self.n, 1))
        return np.where(self.min == self.max, 0.0, sd)


def moments_init(b: int) -> Moments:
    return Moments(0, np.zeros(b), np.zeros(b), np.full(b, np.inf), np.full(b, -np.inf),
                   np.zeros(b, np.int64))


def moments_merge(a: Moments, b: Moments) -> Moments:
    """Chan et al.'s parallel merge of two partial moment sets (float64)."""
    n = a.n + b.n
    if a.n == 0:
        return Moments(b.n, b.mean.copy(), b.m2.copy(), b.min.copy(), b.max.copy(), b.n_neg.copy())
    if b.n == 0:
        return Moments(a.n, a.mean.copy(), a.m2.copy(), a.min.copy(), a.max.copy(), a.n_neg.copy())
    delta = b.mean - a.mean
    mean = a.mean + delta * (b.n / n)
    m2 = a.m2 + b.m2 + delta * delta * (a.n * b.n / n)
    return Moments(n, mean, m2, np.minimum(a.min, b.min), np.maximum(a.max, b.max),
                   a.n_neg + b.n_neg)


def chunk_moments(x: np.ndarray) -> Moments:
    """Moments of one chunk ``x`` [t, B] (two-pass within the chunk, float64)."""
    x = np.asarray(x)
    t, b = x.shape
    if t == 0:
        return moments_init(b)
    d = x.astype(np.float64)  # a copy: centred in place below
    mean = d.sum(axis=0) / t
    d -= mean
    m2 = np.einsum("ij,ij->j", d, d)
    return Moments(t, mean, m2, x.min(axis=0).astype(np.float64), x.max(axis=0).astype(np.float64),
                   np.count_nonzero(x < 0, axis=0).astype(np.int64))


def moments_update(state: Moments, x: np.ndarray) -> Moments:
    """``state`` merged with the chunk ``x`` [t, B]."""
    return moments_merge(state, chunk_moments(x))


# --------------------------------------------------------------------------- histogram


@dataclass
class Histogram:
    """Counts [B, bins] of in-grid z, and per side (0: z < -R, 1: z >= R) and raw sign
    (0: a < 0, 1: a >= 0) the count [B, 2, 2] and float64 sum of z [B, 2, 2] beyond the grid."""

    grid: Grid
    counts: np.ndarray
    tail_n: np.ndarray = field(default=None)
    tail_sum: np.ndarray = field(default=None)


def hist_init(b: int, grid: Grid) -> Histogram:
    return Histogram(grid, np.zeros((b, grid.bins), np.int64), np.zeros((b, 2, 2), np.int64),
                     np.zeros((b, 2, 2), np.float64))


def hist_update(h: Histogram, x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> None:
    """Count the chunk ``x`` [t, B] (raw values) into ``h`` in place, z-scored with ``mean`` / ``std``.

    Neurons with ``std == 0`` are skipped (their WD is exact without a histogram). The bin index
    is computed in float64 with each neuron's offset in the flat count array folded into the
    affine map, so one ``bincount`` counts the whole chunk; the out-of-grid values are found from
    the chunk's per-neuron min / max and summed exactly, column by column.
    """
    x = np.asarray(x)
    t, b = x.shape
    if t == 0:
        return
    g = h.grid
    nb = g.bins
    stride = nb + 2
    live = std > 0
    inv = np.where(live, 1.0 / np.where(live, std, 1.0), 0.0)
    base = np.arange(b, dtype=np.float64) * stride
    # q = (z + R) / h + 1 + j * stride: in-grid values of neuron j land in [base_j + 1,
    # base_j + nb + 1), its two tails are base_j and base_j + nb + 1 (float64: exact to ~1e-9 bins)
    scale = inv / g.width
    shift = (g.z_range - mean * inv) / g.width + 1.0 + base
    xmin, xmax = x.min(axis=0), x.max(axis=0)
    qmin = np.multiply(xmin, scale, dtype=np.float64) + shift
    qmax = np.multiply(xmax, scale, dtype=np.float64) + shift
    lo_cols = np.flatnonzero(live & (qmin < base + 1))
    hi_cols = np.flatnonzero(live & (qmax >= base + (nb + 1)))
    q = np.multiply(x, scale, dtype=np.float64)
    q += shift
    out_cols = np.zeros(b, bool)
    out_cols[lo_cols] = out_cols[hi_cols] = True
    for j in np.flatnonzero(out_cols):  # clip only the columns that leave the grid
        np.clip(q[:, j], base[j], base[j] + (nb + 1), out=q[:, j])
    dead = np.flatnonzero(~live)
    if dead.size:
        q[:, dead] = base[dead]  # counted into a tail bin and discarded below
    idx = q.astype(np.intp)
    del q
    full = np.bincount(idx.ravel(), minlength=b * stride).reshape(b, stride)
    del idx
    h.counts += full[:, 1:nb + 1]
    # out-of-grid values, summed exactly; the test is the binning's own arithmetic, so every
    # value is counted exactly once
    for side, cols in ((0, lo_cols), (1, hi_cols)):
        for j in cols:
            qj = np.multiply(x[:, j], scale[j], dtype=np.float64) + shift[j]
            a = x[:, j][(qj < base[j] + 1) if side == 0 else (qj >= base[j] + (nb + 1))]
            z = (a.astype(np.float64) - mean[j]) * inv[j]
            neg = a < 0
            h.tail_n[j, side, 0] += int(neg.sum())
            h.tail_n[j, side, 1] += int(a.size - neg.sum())
            h.tail_sum[j, side, 0] += float(z[neg].sum())
            h.tail_sum[j, side, 1] += float(z[~neg].sum())


# --------------------------------------------------------------------------- W1


def _g(u: np.ndarray) -> np.ndarray:
    """``G(u) = int_0^u Phi^-1 = -phi(Phi^-1(u))`` (0 at u = 0 and u = 1)."""
    q = special.ndtri(np.clip(u, 0.0, 1.0))
    with np.errstate(invalid="ignore", over="ignore"):
        out = -np.exp(-0.5 * q * q) * _INV_SQRT_2PI
    return np.where(np.isfinite(q), out, 0.0)


def _piece(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``int_lo^hi |v - Phi^-1(u)| du`` for a constant ``v`` (elementwise; 0 where hi <= lo)."""
    hi = np.maximum(hi, lo)
    c = np.clip(special.ndtr(v), lo, hi)
    gl, gh, gc = _g(lo), _g(hi), _g(c)
    left = v * (c - lo) - (gc - gl)  # int_lo^c (v - Phi^-1), >= 0
    right = (gh - gc) - v * (hi - c)  # int_c^hi (Phi^-1 - v), >= 0
    return np.maximum(left, 0.0) + np.maximum(right, 0.0)


def w1_from_histogram(h: Histogram, mom: Moments) -> dict[str, np.ndarray]:
    """``wd``, ``wd_neg``, ``wd_pos`` [B] (float64) from a histogram and the layer's moments.

    Per bin the closed form needs ``G`` only at the cumulative-mass edges: ``G(c)`` with
    ``c = clip(Phi(c_j), lo, hi)`` is ``G(lo)``, ``G(hi)`` or ``-phi(c_j)`` (a per-bin constant).
    """
    g = h.grid
    n = mom.n
    b = h.counts.shape[0]
    if n < 1:
        raise ValueError("w1_from_histogram needs at least one token")
    p0 = (mom.n_neg / n)[:, None]
    tn, ts = h.tail_n, h.tail_sum
    lo_mass = (tn[:, 0, 0] + tn[:, 0, 1]) / n
    # cumulative u at the bin edges (after the left tail): [B, bins + 1]
    cum = np.empty((b, g.bins + 1))
    cum[:, 0] = 0.0
    np.cumsum(h.counts, axis=1, out=cum[:, 1:])
    cum /= n
    cum += lo_mass[:, None]
    gcum = _g(cum)
    lo, hi = cum[:, :-1], cum[:, 1:]
    glo, ghi = gcum[:, :-1], gcum[:, 1:]
    v = g.centres
    pv = special.ndtr(v)
    gv = -np.exp(-0.5 * v * v) * _INV_SQRT_2PI
    c = np.clip(pv, lo, hi)
    gc = np.where(pv <= lo, glo, np.where(pv >= hi, ghi, gv))
    terms = np.maximum(v * (c - lo) - (gc - glo), 0.0)
    terms += np.maximum((ghi - gc) - v * (hi - c), 0.0)
    neg_grid = np.where(hi <= p0, terms, 0.0).sum(axis=1)
    pos_grid = np.where(lo >= p0, terms, 0.0).sum(axis=1)
    split = (lo < p0) & (hi > p0)  # at most one bin per neuron holds p0 strictly inside
    rows = np.flatnonzero(split.any(axis=1))
    if rows.size:
        k = split[rows].argmax(axis=1)
        vk, lk, hk, pk = v[k], lo[rows, k], hi[rows, k], p0[rows, 0]
        neg_grid[rows] += _piece(vk, lk, pk)
        pos_grid[rows] += _piece(vk, pk, hk)
    # tails: |int F^-1 - int Phi^-1| over each (side, raw sign) u-interval
    hi_start = cum[:, -1]
    n_lo_neg, n_lo_pos = tn[:, 0, 0] / n, tn[:, 0, 1] / n
    n_hi_neg, n_hi_pos = tn[:, 1, 0] / n, tn[:, 1, 1] / n
    intervals = {
        (0, 0): (np.zeros(b), n_lo_neg),
        (0, 1): (n_lo_neg, n_lo_neg + n_lo_pos),
        (1, 0): (hi_start, hi_start + n_hi_neg),
        (1, 1): (hi_start + n_hi_neg, hi_start + n_hi_neg + n_hi_pos),
    }
    tails = np.zeros((b, 2))
    for (side, sign), (a_u, b_u) in intervals.items():
        term = np.abs(ts[:, side, sign] / n - (_g(b_u) - _g(a_u)))
        tails[:, sign] += np.where(tn[:, side, sign] > 0, term, 0.0)
    wd_neg = neg_grid + tails[:, 0]
    wd_pos = pos_grid + tails[:, 1]
    zero_var = mom.min == mom.max
    if zero_var.any():
        neg_const = mom.min < 0
        wd_neg = np.where(zero_var, np.where(neg_const, _SQRT_2_OVER_PI, 0.0), wd_neg)
        wd_pos = np.where(zero_var, np.where(neg_const, 0.0, _SQRT_2_OVER_PI), wd_pos)
    return {"wd": wd_neg + wd_pos, "wd_neg": wd_neg, "wd_pos": wd_pos}
