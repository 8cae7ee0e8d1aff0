"""Tests for negdiff.streaming and scoring's streaming mode (fast; no shared data)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import special

from negdiff import scoring as S
from negdiff import wasserstein as W
from negdiff import streaming as St


class ChunkReader:
    """In-memory reader that streams fixed-size token chunks, like the dump reader's shards."""

    def __init__(self, acts: np.ndarray, chunk: int = 700, x: np.ndarray | None = None):
        self.a = np.asarray(acts, np.float32)
        self.chunk = chunk
        self.x = x
        self.layers = [0]
        self.n_tokens = self.a.shape[0]
        self.has_mlp_input = x is not None

    def n_neurons(self, layer=None):
        return self.a.shape[1]

    def iter_pre_activation(self, layer, start=0, stop=None):
        for s in range(0, self.n_tokens, self.chunk):
            yield np.ascontiguousarray(self.a[s:s + self.chunk, start:stop])

    def read_pre_activation(self, layer, start=0, stop=None):
        return np.ascontiguousarray(self.a[:, start:stop])

    def read_mlp_input(self, layer, rows=None):
        return self.x if rows is None else self.x[np.asarray(rows)]


def heavy(t: int, b: int, seed: int = 0) -> np.ndarray:
    """Heavy-tailed, skewed columns with varied offsets (some far from 0, so raw 0 sits in a tail)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_t(2.5, size=(t, b))
    skew = rng.uniform(-0.5, 0.5, b)
    loc = rng.choice([-6.0, -0.3, 0.0, 0.4, 5.0], size=b)
    return (loc + z + skew * (z * z - 1) / 4).astype(np.float32)


def _psi(t: float) -> float:
    """int_-inf^t Phi = t Phi(t) + phi(t)."""
    return t * special.ndtr(t) + math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)


def w1_reference(a: np.ndarray) -> float:
    """Independent float64 reference, in t-space (not the scorers' quantile form):
    ``wd = int |F_n(t) - Phi(t)| dt``, piece by piece between the sorted atoms, each piece cut
    where ``Phi`` crosses the constant ``F_n``, in closed form with ``Psi = int Phi``."""
    a = np.sort(np.asarray(a, np.float64))
    n = a.size
    z = (a - a.mean()) / a.std()
    total = _psi(z[0]) + _psi(-z[-1])  # the two unbounded pieces (F_n = 0, then 1)
    for k in range(1, n):
        x0, x1, f = z[k - 1], z[k], k / n
        cuts = [x0, x1]
        q = special.ndtri(f)
        if x0 < q < x1:
            cuts.insert(1, q)
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            total += abs(f * (hi - lo) - (_psi(hi) - _psi(lo)))
    return total


def stream(a: np.ndarray, grid: St.Grid, chunk: int = 333):
    a = np.asarray(a)
    mom = St.moments_init(a.shape[1])
    for s in range(0, a.shape[0], chunk):
        mom = St.moments_update(mom, a[s:s + chunk])
    h = St.hist_init(a.shape[1], grid)
    for s in range(0, a.shape[0], chunk):
        St.hist_update(h, a[s:s + chunk], mom.mean, mom.std)
    return St.w1_from_histogram(h, mom), mom.numpy(), h.numpy()


# --------------------------------------------------------------------------- moments


@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_chan_merge_matches_two_pass_float64(offset):
    rng = np.random.default_rng(1)
    a = (offset + rng.standard_t(3, size=(5000, 7))).astype(np.float32)
    mom = St.moments_init(7)
    cuts = [0, 1, 2, 100, 101, 2500, 5000]  # includes 1-row and empty-adjacent chunks
    for s, e in zip(cuts[:-1], cuts[1:]):
        mom = St.moments_update(mom, a[s:e])
    mom = St.moments_merge(mom, St.moments_init(7)).numpy()  # merging an empty state is a no-op
    a64 = a.astype(np.float64)
    assert mom.n == 5000
    np.testing.assert_allclose(mom.mean, a64.mean(axis=0), rtol=1e-14, atol=1e-12)
    np.testing.assert_allclose(mom.std, a64.std(axis=0), rtol=1e-10)
    np.testing.assert_array_equal(mom.n_neg, (a < 0).sum(axis=0))
    np.testing.assert_array_equal(mom.min, a.min(axis=0))
    np.testing.assert_array_equal(mom.max, a.max(axis=0))


# --------------------------------------------------------------------------- the bound


def test_error_bound_formula():
    g = St.Grid(bins=100, z_range=5.0)
    psi = math.exp(-12.5) / math.sqrt(2 * math.pi) - 5.0 * special.ndtr(-5.0)
    assert St.normal_tail_psi(5.0) == pytest.approx(psi, rel=1e-12)
    assert St.error_bound(g) == pytest.approx(0.05 + 4 * psi + 1e-9)
    assert St.error_bound(St.Grid()) < 2e-3  # default grid: 4096 bins on [-8, 8)


@pytest.mark.parametrize("bins,z_range", [(64, 3.0), (16, 1.5), (4096, 8.0)])
def test_streaming_within_bound_of_exact_heavy_tails_beyond_grid(bins, z_range):
    a = heavy(3000, 12, seed=bins)
    grid = St.Grid(bins, z_range)
    res, _, h = stream(a, grid)
    exact = W.wd_to_normal(a)
    bound = St.error_bound(grid)
    if z_range < 8:
        assert h.tail_n.sum() > 0  # values beyond the grid, on both sides and of both raw signs
        assert (h.tail_n[:, 0, :].sum() > 0) and (h.tail_n[:, 1, :].sum() > 0)
    for k in ("wd", "wd_neg", "wd_pos"):
        err = np.abs(res[k] - exact[k])
        assert err.max() <= bound, (k, err.max(), bound)
    np.testing.assert_allclose(res["wd_neg"] + res["wd_pos"], res["wd"], rtol=1e-12)


def test_streaming_against_independent_scipy_reference():
    a = heavy(400, 5, seed=7)
    grid = St.Grid(32, 2.0)  # coarse: most of the error budget is used, tails are populated
    res, _, h = stream(a, grid, chunk=97)
    bound = St.error_bound(grid)
    assert h.tail_n.sum() > 0
    exact = W.wd_to_normal(a)
    for j in range(a.shape[1]):
        wd = w1_reference(a[:, j])
        assert exact["wd"][j] == pytest.approx(wd, abs=1e-9)  # the reference agrees with exact
        assert abs(res["wd"][j] - wd) <= bound
    for k in ("wd_neg", "wd_pos"):
        assert np.abs(res[k] - exact[k]).max() <= bound


def test_error_shrinks_with_the_bin_width():
    a = heavy(4000, 6, seed=3)
    exact = W.wd_to_normal(a)["wd"]
    errs = [np.abs(stream(a, St.Grid(b, 8.0))[0]["wd"] - exact).max() for b in (64, 512, 4096)]
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 1e-3 * St.Grid(4096, 8.0).width * 100  # far below the bound in practice


def test_raw_zero_in_a_tail_splits_tail_sums_by_sign():
    rng = np.random.default_rng(5)
    # mean 10, std ~1, a few raw negatives far in the left tail: p0 falls inside the left tail
    a = np.concatenate([10 + rng.standard_normal(2000), [-1.0, -2.0, -0.5, 0.0, 0.25]])[:, None]
    grid = St.Grid(64, 3.0)
    res, mom, h = stream(a.astype(np.float32), grid)
    assert mom.n_neg[0] == 3
    assert h.tail_n[0, 0, 0] == 3 and h.tail_n[0, 0, 1] >= 2
    exact = W.wd_to_normal(a.astype(np.float32))
    for k in ("wd", "wd_neg", "wd_pos"):
        assert abs(res[k][0] - exact[k][0]) <= St.error_bound(grid)


def test_zero_variance_is_exact():
    a = np.full((50, 2), 3.0, np.float32)
    a[:, 1] = -2.0
    res, mom, _ = stream(a, St.Grid(16, 4.0))
    assert np.all(mom.std == 0)
    assert res["wd"] == pytest.approx([math.sqrt(2 / math.pi)] * 2, abs=1e-15)
    assert res["wd_pos"][0] == pytest.approx(math.sqrt(2 / math.pi)) and res["wd_neg"][0] == 0
    assert res["wd_neg"][1] == pytest.approx(math.sqrt(2 / math.pi)) and res["wd_pos"][1] == 0


def test_grid_validation():
    with pytest.raises(ValueError):
        St.Grid(bins=1)
    with pytest.raises(ValueError):
        St.Grid(z_range=0.0)


# --------------------------------------------------------------------------- scorer mode


def test_score_layer_streaming_matches_exact_columns():
    rng = np.random.default_rng(2)
    a = heavy(2500, 40, seed=11)
    a[:, 3] = 0.7  # zero variance
    x = rng.standard_normal((2500, 8)).astype(np.float32)
    reader = ChunkReader(a, chunk=600, x=x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exact = S.score_layer(reader, 0, neuron_block=16, md_pairs=300)
        st = S.score_layer(reader, 0, mode="streaming", neuron_block=16, md_pairs=300,
                           bins=1024, z_range=8.0)
    assert st.schema == exact.schema and st.height == 40
    for c in ("layer", "neuron", "md", "frac_negative"):
        assert st[c].to_list() == exact[c].to_list(), c
    np.testing.assert_allclose(st["mean"], exact["mean"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(st["std"], exact["std"], rtol=1e-10)
    bound = St.error_bound(St.Grid(1024, 8.0))
    for c in ("wd", "wd_neg", "wd_pos"):
        assert (st[c] - exact[c]).abs().max() <= bound, c
    # the same top neurons at this token count
    top_e = set(S.top_neurons(exact, 10)["neuron"].to_list())
    top_s = set(S.top_neurons(st, 10)["neuron"].to_list())
    assert len(top_e & top_s) >= 3


def test_streaming_mode_reads_chunks_not_columns():
    a = heavy(1000, 6, seed=4)

    class NoFullRead(ChunkReader):
        def read_pre_activation(self, *args, **kw):  # only the error path may read a full block
            raise AssertionError("streaming mode materialised a full column")

    out = S.score_layer(NoFullRead(a, chunk=128), 0, mode="streaming", neuron_block=4)
    assert out.height == 6


def test_streaming_nonfinite_names_token():
    a = heavy(500, 4, seed=9)
    a[123, 2] = np.nan
    with pytest.raises(ValueError, match=r"token position 123, neuron 2"):
        S.score_layer(ChunkReader(a, chunk=100), 0, mode="streaming", neuron_block=4)
