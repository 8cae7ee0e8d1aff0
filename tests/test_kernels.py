"""The compiled CPU kernels (negdiff.kernels) against the numpy / torch code they replace on the CPU
(which stays the path without numba, and the torch path on other devices)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from negdiff import kernels
from negdiff import wasserstein as W
from negdiff import streaming as St

pytestmark = pytest.mark.skipif(not kernels.AVAILABLE, reason="numba is not installed")


def columns(t: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.standard_t(2.5, size=(t, 9)) * rng.uniform(0.1, 3, 9) + rng.choice([-4, 0, 0.3, 5], 9)
    a[:, 0] = 1.5  # zero variance
    a[: t // 3, 1] = 0.0  # raw zeros count as non-negative
    a[: t // 4, 2] = -0.0
    return a.astype(np.float32)


@pytest.fixture
def numpy_only(monkeypatch):
    monkeypatch.setattr(kernels, "AVAILABLE", False)


@pytest.mark.parametrize("t", [1, 2, 3, 7, 64, 65, 1000, 4099])
@pytest.mark.parametrize("mode", ["exact", "sample"])
def test_sorted_column_stats_equal_the_numpy_kernel(t, mode, monkeypatch):
    a = np.sort(columns(t, seed=t), axis=0)
    ref, q, w = W.mode_refs(t, mode, seed=3)
    for j in range(a.shape[1]):
        col = np.ascontiguousarray(a[:, j])
        got = W.column_stats(col, ref, q, w)
        monkeypatch.setattr(kernels, "AVAILABLE", False)
        want = W.column_stats(col, ref, q, w)
        monkeypatch.setattr(kernels, "AVAILABLE", True)
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-13, err_msg=f"t={t} column {j}")


def test_exact_scores_equal_without_numba(monkeypatch):
    a = columns(3000, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = W.wd_to_normal(a)
        monkeypatch.setattr(kernels, "AVAILABLE", False)
        slow = W.wd_to_normal(a)
    for k in fast:
        np.testing.assert_allclose(fast[k], slow[k], rtol=1e-11, atol=1e-13, err_msg=k)


def _accumulate(a: np.ndarray, grid: St.Grid, chunk: int):
    mom = St.moments_init(a.shape[1])
    for s in range(0, a.shape[0], chunk):
        mom = St.moments_update(mom, a[s:s + chunk])
    h = St.hist_init(a.shape[1], grid, dtype=torch.int32)
    std = mom.std
    for s in range(0, a.shape[0], chunk):
        St.hist_update(h, a[s:s + chunk], mom.mean, std)
    return mom.numpy(), h.numpy()


@pytest.mark.parametrize("bins,z_range", [(32, 1.5), (4096, 8.0)])
def test_streaming_kernels_equal_the_torch_path(bins, z_range, monkeypatch):
    a = columns(5000, seed=2)
    grid = St.Grid(bins, z_range)
    mc, hc = _accumulate(a, grid, 777)
    monkeypatch.setattr(kernels, "AVAILABLE", False)
    mt, ht = _accumulate(a, grid, 777)
    assert mc.n == mt.n == 5000
    np.testing.assert_allclose(mc.mean, mt.mean, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mc.m2, mt.m2, rtol=1e-10)
    np.testing.assert_array_equal(mc.min, mt.min)
    np.testing.assert_array_equal(mc.max, mt.max)
    np.testing.assert_array_equal(mc.n_neg, mt.n_neg)
    live = mc.min != mc.max
    # every value of a live neuron is counted once, in a bin or a tail, by both
    for h in (hc, ht):
        assert np.all(h.counts[live].sum(axis=1) + h.tail_n[live].sum(axis=(1, 2)) == 5000)
    # the two bin positions differ only by rounding: a value may change bin only at an edge
    assert np.abs(hc.counts.astype(np.int64) - ht.counts).sum() <= 4
    if z_range < 8:
        assert hc.tail_n.sum() > 0
    wc, wt = St.w1_from_histogram(hc, mc), St.w1_from_histogram(ht, mt)
    for k in wc:
        np.testing.assert_allclose(wc[k], wt[k], atol=St.error_bound(grid) / 100)


def test_nonfinite_chunk_is_reported_by_the_compiled_moments():
    a = columns(100)
    a[17, 4] = np.nan
    a[3, 5] = np.inf
    mom = St.chunk_moments(a).numpy()
    assert np.isnan(mom.min[4]) and not np.isfinite(mom.min[5])
    assert np.isfinite(mom.min[[0, 1, 2, 3, 6, 7, 8]]).all()


def test_histogram_kernel_keeps_nan_inside_the_neuron_slots():
    """hist_update's callers raise on non-finite values first; called directly, NaN and inf still land in
    a tail slot of their own neuron (never an index outside it)."""
    a = columns(300, seed=5)
    mom = St.chunk_moments(a)
    a[10, 3], a[11, 3], a[12, 4] = np.nan, np.inf, -np.inf
    h = St.hist_init(a.shape[1], St.Grid(64, 4.0), dtype=torch.int32)
    St.hist_update(h, a, mom.mean, mom.std)
    hn = h.numpy()
    live = mom.numpy().min != mom.numpy().max
    assert np.all(hn.slots[live].sum(axis=1) == 300)
    assert hn.slots[3, 0] + hn.slots[3, -1] >= 2 and hn.slots[4, 0] >= 1
