"""Compiled CPU kernels (numba): the streaming accumulators, and the exact scorer's per-column statistics.

The torch implementation in :mod:`negdiff.streaming` runs on any device and is what the dump uses on a
GPU; on the CPU it costs ~9 full-size tensor passes per chunk (a float64 copy, the affine map, the clamp,
the integer cast, the scatter, the tail scan...). These kernels fuse each pass into one loop over the
chunk's rows (row-major, as the shards are), so the CPU reads each value once per pass:

* :func:`moments_chunk`: per column, the sum (float64), min, max and negative count in one sweep, then
  the centred sum of squares in a second sweep over the (cache-resident) chunk;
* :func:`hist_chunk`: per value, ``q = (z + R) / h`` in float64, clamped, and one increment of its bin
  or of a tail slot (branch-free); :func:`tail_chunk` then revisits only the columns with values
  beyond the grid and sums their ``z`` exactly per (side, raw sign).

Same definitions as the torch path (float64 bin position, ``floor``; a value lands in another bin only
within rounding of an edge, which the stated bound covers); tests compare the two and both with the
exact scorer. :func:`sorted_column_stats` is the exact scorer's per-neuron work after the sort (mean,
std, z, the closed-form W1 terms, the split by raw sign) in three sweeps instead of ~9 numpy passes.
``numba`` compiles them on first use (cached on disk next to this file).
"""

from __future__ import annotations

import math

import numpy as np

try:  # optional at import: without numba the torch path is used everywhere
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; kept importable without it
    numba = None

AVAILABLE = numba is not None

if AVAILABLE:
    _jit = numba.njit(cache=True, nogil=True, fastmath=False)

    @_jit
    def moments_chunk(x, mean, m2, mn, mx, nneg):  # pragma: no cover - compiled
        t, b = x.shape
        s = np.zeros(b)
        for j in range(b):
            mn[j] = np.inf
            mx[j] = -np.inf
            nneg[j] = 0
        for i in range(t):
            for j in range(b):
                v = x[i, j]
                s[j] += v
                mn[j] = min(mn[j], v)
                mx[j] = max(mx[j], v)
                nneg[j] += v < 0
        for j in range(b):
            mean[j] = s[j] / t
            m2[j] = 0.0
        for i in range(t):
            for j in range(b):
                d = x[i, j] - mean[j]
                m2[j] += d * d
        for j in range(b):  # NaN / inf anywhere in a column make its sum non-finite: report it as min
            if not np.isfinite(s[j]):
                mn[j] = np.nan

    @_jit
    def hist_chunk(x, scale, shift, nb, slots):  # pragma: no cover - compiled
        """Count every value into ``slots[j, k]`` with ``k = int(clamp(q, -1, nb) + 1)``: the bins
        1..nb, and the tail slots 0 and nb + 1 (branch-free: the scattered increments dominate its
        cost, BENCHMARKS.md §2). Returns nothing; :func:`tail_chunk` revisits the columns
        whose tail slots grew."""
        t, b = x.shape
        for i in range(t):
            for j in range(b):
                q = min(x[i, j] * scale[j] + shift[j], nb)
                if not q >= -1.0:  # also NaN: never an index outside the neuron's slots
                    q = -1.0
                slots[j, int(q + 1.0)] += 1

    @_jit
    def tail_chunk(x, cols, scale, shift, mean, inv, nb, tail_n, tail_sum):  # pragma: no cover
        """For the listed columns, the (side, raw sign) count and exact float64 sum of ``z`` of the
        values :func:`hist_chunk` put in a tail slot (the same arithmetic decides)."""
        t = x.shape[0]
        for c in range(cols.size):
            j = cols[c]
            for i in range(t):
                v = x[i, j]
                q = min(v * scale[j] + shift[j], nb)
                if not q >= -1.0:
                    q = -1.0
                k = int(q + 1.0)
                if k == 0 or k == nb + 1:
                    side = 0 if k == 0 else 1
                    sign = 0 if v < 0 else 1
                    tail_n[j, side, sign] += 1
                    tail_sum[j, side, sign] += (v - mean[j]) * inv[j]


    # Sums in the exact scorer may be reassociated (SIMD): a fixed order per CPU, so deterministic on
    # a machine; across instruction sets they agree to rounding (~1e-16 relative). Nothing else is.
    _jit_sum = numba.njit(cache=True, nogil=True, fastmath={"reassoc"})

    @_jit_sum
    def _sum(a, mu):  # pragma: no cover - compiled
        s = 0.0
        for i in range(a.size):
            s += a[i] - mu
        return s

    @_jit_sum
    def _ss(a, mu):  # pragma: no cover - compiled
        s = 0.0
        for i in range(a.size):
            d = a[i] - mu
            s += d * d
        return s

    @_jit_sum
    def _abs_terms(a, ref, w, mu, inv, lo_k, hi_k, flags):  # pragma: no cover - compiled
        """``sum_k |z_k - ref_k|`` over [lo_k, hi_k) (SIMD), in blocks of 64 k; ``flags[block]`` counts
        the k with ``|z_k - ref_k| <= w_k`` (necessary for ``z_k`` to lie in its own normal bin)."""
        s = 0.0
        nb = 0
        for b0 in range(lo_k, hi_k, 64):
            cnt = 0
            for k in range(b0, min(b0 + 64, hi_k)):
                t = abs((a[k] - mu) * inv - ref[k])
                s += t
                cnt += t <= w[k]
            flags[nb] = cnt
            nb += 1
        return s

    @_jit
    def _inbin_correction(a, ref, q, mu, inv, lo_k, hi_k, n, flags):  # pragma: no cover - compiled
        """``n x`` (closed form - ``|z_k - m_k|``) summed over the (rare) k in [lo_k, hi_k) whose ``z``
        lies inside its own normal bin ``[q_k, q_{k+1}]``; only the blocks flagged by _abs_terms."""
        total = 0.0
        c0 = 1.0 / np.sqrt(2.0 * np.pi)
        nb = 0
        for b0 in range(lo_k, hi_k, 64):
            flagged = flags[nb] > 0
            nb += 1
            if not flagged:
                continue
            for k in range(b0, min(b0 + 64, hi_k)):
                z = (a[k] - mu) * inv
                if z >= q[k] and z <= q[k + 1]:
                    lo = k / n
                    hi = (k + 1) / n
                    c = min(max(0.5 * math.erfc(-z / np.sqrt(2.0)), lo), hi)
                    phi_z = np.exp(-0.5 * z * z) * c0
                    phi_lo = np.exp(-0.5 * q[k] * q[k]) * c0 if np.isfinite(q[k]) else 0.0
                    phi_hi = np.exp(-0.5 * q[k + 1] * q[k + 1]) * c0 if np.isfinite(q[k + 1]) else 0.0
                    left = max(z * (c - lo) + phi_z - phi_lo, 0.0)
                    right = max(phi_z - phi_hi - z * (hi - c), 0.0)
                    total += (left + right) * n - abs(z - ref[k])
        return total

    @_jit
    def _terms4(a, ref, q, w, exact, mu, inv, lo_k, hi_k, n):  # pragma: no cover - compiled
        """``n x`` the sum of the per-k W1 terms for k in [lo_k, hi_k)."""
        flags = np.empty((hi_k - lo_k + 63) // 64, np.int64)
        s = _abs_terms(a, ref, w, mu, inv, lo_k, hi_k, flags)
        if exact:
            s += _inbin_correction(a, ref, q, mu, inv, lo_k, hi_k, n, flags)
        return s


    @_jit
    def sorted_column_stats(a, ref, q, w, exact):  # pragma: no cover - compiled
        """The exact scorer's statistics of one finite, sorted column ``a`` (see
        ``wasserstein.column_stats``, whose numpy form this fuses into three sweeps): returns
        ``(wd, wd_neg, wd_pos, mean, std, frac_negative, zero_var)``. ``ref`` is the per-k reference
        (normal bin means, or the sorted normal sample); with ``exact`` the k whose ``z`` lies inside
        its bin ``[q_k, q_{k+1}]`` (of width ``w_k``) get the closed form with ``ndtr(z) = erfc(-z / sqrt 2) / 2``."""
        n = a.size
        nneg = np.searchsorted(a, 0.0)  # sorted: the count of a < 0
        zero_var = a[0] == a[n - 1]
        if zero_var:
            mu = np.float64(a[0])
            sd = 0.0
            inv = 0.0
        else:
            mu = _sum(a, 0.0) / n
            sd = np.sqrt(_ss(a, mu) / n)
            inv = 1.0 / sd
        neg = _terms4(a, ref, q, w, exact, mu, inv, 0, nneg, n) / n
        pos = _terms4(a, ref, q, w, exact, mu, inv, nneg, n, n) / n
        return neg + pos, neg, pos, mu, sd, nneg / n, 1.0 if zero_var else 0.0


else:  # pragma: no cover
    moments_chunk = hist_chunk = tail_chunk = sorted_column_stats = None
