"""Tests for negdiff.scoring, negdiff.wasserstein and negdiff.mapping_difficulty (fast; no shared data)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl
import pytest
from scipy import integrate, special, stats

from negdiff import scoring as S
from negdiff import mapping_difficulty as MD
from negdiff import wasserstein as W


# --------------------------------------------------------------------------- helpers


class FakeReader:
    """In-memory stand-in for negdiff.activations' reader."""

    def __init__(self, acts: dict[int, np.ndarray], mlp_in: dict[int, np.ndarray] | None = None):
        self._acts = {k: np.asarray(v, dtype=np.float32) for k, v in acts.items()}
        self._x = mlp_in
        self.reads: list[tuple[int, int, int]] = []

    @property
    def layers(self):
        return sorted(self._acts)

    @property
    def n_tokens(self):
        return next(iter(self._acts.values())).shape[0]

    def n_neurons(self, layer):
        return self._acts[layer].shape[1]

    def read_pre_activation(self, layer, start, stop):
        self.reads.append((layer, start, stop))
        return np.ascontiguousarray(self._acts[layer][:, start:stop])

    @property
    def has_mlp_input(self):
        return self._x is not None

    def read_mlp_input(self, layer, rows=None):
        x = self._x[layer]
        return x if rows is None else x[np.asarray(rows)]


def _zscore(a):
    a = np.asarray(a, dtype=np.float64)
    sd = a.std()
    return np.zeros_like(a) if sd == 0 else (a - a.mean()) / sd


def _w1_quad(z):
    """W1(empirical z, N(0,1)) = int |F_n(t) - Phi(t)| dt, by quadrature between the atoms."""
    z = np.sort(np.asarray(z, dtype=np.float64))
    n = z.size
    total = integrate.quad(lambda t: special.ndtr(t), -np.inf, z[0], epsabs=1e-13)[0]
    total += integrate.quad(lambda t: special.ndtr(-t), z[-1], np.inf, epsabs=1e-13)[0]
    for k in range(n - 1):
        if z[k + 1] > z[k]:
            fn = (k + 1) / n
            total += integrate.quad(lambda t: abs(fn - special.ndtr(t)), z[k], z[k + 1],
                                    epsabs=1e-13, limit=200)[0]
    return total


_GRID = None


def _w1_grid(z):
    """W1 against N(0,1) discretised at the midpoints of 2e6 equal-probability bins."""
    global _GRID
    if _GRID is None:
        g = 2_000_000
        _GRID = special.ndtri((np.arange(g) + 0.5) / g)
    return stats.wasserstein_distance(np.asarray(z, dtype=np.float64), _GRID)


def _distributions(rng, n):
    half = rng.random(n) < 0.5
    return {
        "normal": rng.standard_normal(n) * 2.0 + 1.0,
        "bimodal": np.where(half, -3.0, 1.5) + 0.3 * rng.standard_normal(n),
        "heavy": rng.standard_t(2, n),
        "skewed": rng.lognormal(0.0, 1.0, n) - 1.2,
        "uniform": rng.uniform(-1.0, 2.0, n),
    }


# --------------------------------------------------------------------------- exact WD


@pytest.mark.parametrize("n", [1, 2, 3, 17, 60])
def test_exact_matches_quadrature(n):
    rng = np.random.default_rng(n)
    dists = _distributions(rng, n)
    a = np.stack(list(dists.values()), axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n == 1 is zero-variance
        got = W.wd_to_normal(a)["wd"]
    ref = np.array([_w1_quad(_zscore(a[:, k])) for k in range(a.shape[1])])
    np.testing.assert_allclose(got, ref, atol=1e-9, rtol=0)


@pytest.mark.parametrize("n", [500, 4099])
def test_exact_matches_fine_quantile_grid(n):
    rng = np.random.default_rng(1000 + n)
    dists = _distributions(rng, n)
    a = np.stack(list(dists.values()), axis=1).astype(np.float32)
    got = W.wd_to_normal(a)["wd"]
    ref = np.array([_w1_grid(_zscore(a[:, k])) for k in range(a.shape[1])])
    np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0)


def test_wd_exact_sorted_contributions():
    rng = np.random.default_rng(3)
    z = np.sort(rng.standard_normal((257, 4)), axis=0)
    terms = W.wd_exact_sorted(z)
    assert terms.shape == z.shape and terms.dtype == np.float64
    assert (terms >= 0).all()
    np.testing.assert_allclose(terms.sum(axis=0), [_w1_grid(z[:, k]) for k in range(4)],
                               atol=1e-5)
    np.testing.assert_allclose(W.wd_exact_sorted(z[:, 1]), terms[:, 1], rtol=0, atol=0)
    with pytest.raises(ValueError, match="sorted"):
        W.wd_exact_sorted(z[::-1])


def test_exact_large_normal_sample_is_small():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((131072, 2)).astype(np.float32)
    wd = W.wd_to_normal(a)["wd"]
    assert (wd < 0.01).all()


# --------------------------------------------------------------------------- sample WD


@pytest.mark.parametrize("n", [2, 33, 1000])
def test_sample_mode_matches_scipy(n):
    rng = np.random.default_rng(n)
    a = np.stack(list(_distributions(rng, n).values()), axis=1).astype(np.float32)
    seed = 123
    got = W.wd_to_normal(a, mode="sample", seed=seed)
    s = np.random.default_rng(seed).standard_normal(n)
    ref = [stats.wasserstein_distance(_zscore(a[:, k]), s) for k in range(a.shape[1])]
    np.testing.assert_allclose(got["wd"], ref, atol=1e-9, rtol=0)
    np.testing.assert_allclose(got["wd_neg"] + got["wd_pos"], got["wd"], atol=1e-12)


def test_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        W.wd_to_normal(np.ones((4, 1)), mode="approx")


# --------------------------------------------------------------------------- neg/pos split


@pytest.mark.parametrize("mode", ["exact", "sample"])
def test_neg_pos_split(mode):
    rng = np.random.default_rng(11)
    n = 3000
    a = np.stack(list(_distributions(rng, n).values()), axis=1)
    a = np.concatenate([a, (rng.exponential(1.0, n) + 0.1)[:, None]], axis=1)  # all positive
    r = W.wd_to_normal(a, mode=mode, seed=1)
    np.testing.assert_allclose(r["wd_neg"] + r["wd_pos"], r["wd"], rtol=1e-12, atol=1e-14)
    assert r["wd_neg"][-1] == 0.0 and r["wd_pos"][-1] == r["wd"][-1]
    np.testing.assert_array_equal(r["frac_negative"], (a < 0).mean(axis=0))
    np.testing.assert_allclose(r["mean"], a.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(r["std"], a.std(axis=0), rtol=1e-12)
    # the split is by the raw value's sign, position by position
    col = np.sort(a[:, 1])
    terms = W.wd_exact_sorted(np.sort(_zscore(a[:, 1])))
    if mode == "exact":
        np.testing.assert_allclose(r["wd_neg"][1], terms[col < 0].sum(), rtol=1e-10)


# --------------------------------------------------------------------------- edge cases


@pytest.mark.parametrize("mode", ["exact", "sample"])
def test_zero_variance_neuron(mode):
    a = np.random.default_rng(0).standard_normal((100, 3))
    a[:, 1] = -0.7
    with pytest.warns(UserWarning, match=r"layer 4: zero-variance .*neuron\(s\) \[11\]"):
        r = W.wd_to_normal(a, mode=mode, layer=4, neuron_offset=10)
    assert np.isfinite(r["wd"]).all()
    if mode == "exact":
        assert r["wd"][1] == pytest.approx(math.sqrt(2 / math.pi), abs=1e-12)
    else:
        s = np.random.default_rng(0).standard_normal(100)
        assert r["wd"][1] == pytest.approx(np.abs(s).mean(), abs=1e-12)
    assert r["std"][1] == 0.0 and r["frac_negative"][1] == 1.0
    assert r["wd_neg"][1] == r["wd"][1]


def test_single_token_is_zero_variance():
    with pytest.warns(UserWarning, match="zero-variance"):
        r = W.wd_to_normal(np.array([[2.0, -1.0]]))
    np.testing.assert_allclose(r["wd"], math.sqrt(2 / math.pi))


def test_nonfinite_raises_with_location():
    a = np.random.default_rng(0).standard_normal((50, 5)).astype(np.float32)
    a[30, 2] = np.nan
    a[7, 3] = np.inf
    a[9, 2] = -np.inf
    with pytest.raises(ValueError, match=r"layer 6: token position 9, neuron 2\b"):
        W.wd_to_normal(a, layer=6)
    reader = FakeReader({6: a})
    with pytest.raises(ValueError, match=r"layer 6: token position 9, neuron 2\b"):
        S.score_layer(reader, 6, neuron_block=2)
    with pytest.raises(ValueError, match=r"layer 6: token position 9, neuron 2\b"):
        S.score_layer(reader, 6, engine="polars")


# --------------------------------------------------------------------------- MD


def _md_loop(x, y, i, j):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    out = []
    for b in range(y.shape[1]):
        dx, dy = [], []
        for p, q in zip(i, j):
            d = math.sqrt(sum((x[p, k] - x[q, k]) ** 2 for k in range(x.shape[1])))
            if d == 0:
                continue
            dx.append(d)
            dy.append(abs(y[p, b] - y[q, b]))
        dx, dy = np.array(dx), np.array(dy)
        med = float(np.median(dy))
        if med == 0:
            if (dy == 0).all():
                out.append(0.0)
                continue
            med = float(np.mean(dy))
        out.append(float(np.mean([(v / med) / (u / dx.max()) for u, v in zip(dx, dy)])))
    return np.array(out)


def test_md_pairs():
    i, j = MD.md_pairs(10, 5000, seed=3)
    assert i.shape == j.shape == (5000,)
    assert (i != j).all() and i.min() >= 0 and j.min() >= 0 and max(i.max(), j.max()) == 9
    i2, j2 = MD.md_pairs(10, 5000, seed=3)
    np.testing.assert_array_equal(i, i2)
    np.testing.assert_array_equal(j, j2)
    with pytest.raises(ValueError):
        MD.md_pairs(1, 10, 0)


def test_mapping_difficulty_matches_loop():
    rng = np.random.default_rng(8)
    t, d = 40, 6
    x = rng.standard_normal((t, d)).astype(np.float32)
    x[5] = x[6]  # pairs (5, 6) have dx == 0 and are dropped
    y = np.stack([x @ rng.standard_normal(d), rng.standard_normal(t) * 3,
                  np.where(rng.random(t) < 0.5, -2.0, 0.5) + 0.01 * rng.standard_normal(t)], axis=1)
    i, j = MD.md_pairs(t, 300, seed=2)
    i = np.concatenate([i, [5, 6]])
    j = np.concatenate([j, [6, 5]])
    got = MD.mapping_difficulty(x, y, i, j)
    np.testing.assert_allclose(got, _md_loop(x, y, i, j), rtol=1e-12)
    dxn, dyn = MD.pair_distances(x, y, i, j)
    dropped = np.sum(((i == 5) & (j == 6)) | ((i == 6) & (j == 5)))
    assert dxn.shape == (len(i) - dropped,) and dyn.shape == (len(i) - dropped, 3)
    assert dxn.max() == 1.0 and (dxn > 0).all()
    np.testing.assert_allclose(np.median(dyn, axis=0), 1.0)
    np.testing.assert_allclose((dyn / dxn[:, None]).mean(axis=0), got, rtol=1e-12)


def test_mapping_difficulty_zero_median():
    rng = np.random.default_rng(9)
    t = 30
    x = rng.standard_normal((t, 4))
    y = np.zeros((t, 3))
    y[:3, 1] = [1.0, 2.0, -1.0]  # sparse: median |dy| == 0 but not all zero
    y[:, 2] = rng.standard_normal(t)
    i, j = MD.md_pairs(t, 200, seed=0)
    with pytest.warns(UserWarning, match=r"layer 2: median \|dy\| is 0 for neuron\(s\) \[8\]"):
        got = MD.mapping_difficulty(x, y, i, j, layer=2, neuron_offset=7)
    assert got[0] == 0.0
    np.testing.assert_allclose(got, _md_loop(x, y, i, j), rtol=1e-12)


# --------------------------------------------------------------------------- tables


def _planted_layer(rng, t=4000, b=40, planted=23):
    a = rng.standard_normal((t, b)) * rng.uniform(0.2, 5.0, b) + rng.uniform(-3.0, 3.0, b)
    mix = rng.random(t)
    a[:, planted] = (np.where(mix < 0.45, -3.0, np.where(mix < 0.9, -0.5, 1.0))
                     + 0.05 * rng.standard_normal(t))
    return a.astype(np.float32)


def _mlp_input(rng, a, d=8):
    return (a[:, :d] @ rng.standard_normal((d, d)) + 0.1 * rng.standard_normal((a.shape[0], d))
            ).astype(np.float32)


@pytest.mark.parametrize("mode", ["exact", "sample"])
def test_planted_neuron_ranks_first(mode):
    rng = np.random.default_rng(21)
    a = _planted_layer(rng)
    reader = FakeReader({3: a}, {3: _mlp_input(rng, a)})
    scores = S.score_layer(reader, 3, mode=mode, neuron_block=16, md_pairs=512)
    assert scores.schema == pl.Schema(S.SCORE_SCHEMA)
    assert scores.sort("wd", descending=True)["neuron"][0] == 23
    row = scores.filter(pl.col("neuron") == 23)
    assert row["wd_neg"][0] > 0.8 * row["wd"][0]  # the non-Gaussianity lives in a < 0
    top = S.top_neurons(scores, 1)
    assert top["neuron"].to_list() == [23] and top["layer"].to_list() == [3]
    assert scores["md"].is_not_null().all()


def test_block_size_independence_and_determinism():
    rng = np.random.default_rng(4)
    a = _planted_layer(rng, t=1500, b=19, planted=5)
    reader = FakeReader({0: a, 1: a[:, ::-1].copy()}, {0: _mlp_input(rng, a), 1: _mlp_input(rng, a)})
    big = S.score_activations(reader, neuron_block=256, md_pairs=300, md_seed=5)
    small = S.score_activations(reader, neuron_block=3, md_pairs=300, md_seed=5)
    assert big.equals(small)
    assert (0, 15, 18) in reader.reads
    again = S.score_activations(reader, neuron_block=3, md_pairs=300, md_seed=5)
    assert small.equals(again)
    other = S.score_activations(reader, neuron_block=3, md_pairs=300, md_seed=6)
    assert not other["md"].equals(small["md"])
    samp1 = S.score_activations(reader, mode="sample", seed=9)
    samp2 = S.score_activations(reader, mode="sample", seed=9, neuron_block=4)
    assert samp1.equals(samp2)
    assert big.height == 38 and big["layer"].to_list() == [0] * 19 + [1] * 19
    assert big["neuron"].to_list() == list(range(19)) * 2


def test_score_layer_matches_direct_functions():
    rng = np.random.default_rng(6)
    a = _planted_layer(rng, t=800, b=9, planted=2)
    x = _mlp_input(rng, a)
    reader = FakeReader({1: a}, {1: x})
    tab = S.score_layer(reader, 1, neuron_block=4, md_pairs=256, md_seed=3)
    r = W.wd_to_normal(a)
    for k in ("wd", "wd_neg", "wd_pos", "mean", "std", "frac_negative"):
        np.testing.assert_allclose(tab[k].to_numpy(), r[k], rtol=1e-13, atol=1e-15)
    i, j = MD.md_pairs(800, 256, 3)
    np.testing.assert_allclose(tab["md"].to_numpy(), MD.mapping_difficulty(x, a, i, j), rtol=1e-12)


def test_polars_engine_matches_numpy_engine():
    rng = np.random.default_rng(12)
    a = _planted_layer(rng, t=700, b=8, planted=5)
    a[:, 6] = 0.25  # zero variance
    reader = FakeReader({0: a})
    for mode in ("exact", "sample"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fast = S.score_layer(reader, 0, mode=mode, neuron_block=3)
            slow = S.score_layer(reader, 0, mode=mode, neuron_block=3, engine="polars")
        for k in ("wd", "wd_neg", "wd_pos", "mean", "std", "frac_negative"):
            np.testing.assert_allclose(fast[k].to_numpy(), slow[k].to_numpy(), rtol=1e-11,
                                       atol=1e-13)


def test_md_null_without_mlp_input():
    a = np.random.default_rng(0).standard_normal((100, 5)).astype(np.float32)
    tab = S.score_layer(FakeReader({2: a}), 2)
    assert tab["md"].null_count() == 5 and tab["md"].dtype == pl.Float64
    assert tab["layer"].dtype == pl.Int32 and tab["neuron"].dtype == pl.Int32


def test_zero_variance_in_score_layer_warns_with_layer():
    a = np.random.default_rng(0).standard_normal((64, 6)).astype(np.float32)
    a[:, 4] = 0.0
    with pytest.warns(UserWarning, match=r"layer 7: zero-variance .*\[4\]"):
        tab = S.score_layer(FakeReader({7: a}), 7, neuron_block=4)
    assert tab["wd"].is_finite().all()


def test_top_neurons_counts_and_ties():
    scores = pl.DataFrame(
        {
            "layer": [0] * 5 + [1] * 250,
            "neuron": list(range(5)) + list(range(250)),
            "wd": [0.1, 0.3, 0.3, 0.2, 0.0] + [float(k % 7) for k in range(250)],
        },
        schema_overrides={"layer": pl.Int32, "neuron": pl.Int32},
    )
    top = S.top_neurons(scores, 1)
    l0 = top.filter(pl.col("layer") == 0)
    assert l0["neuron"].to_list() == [1]  # at least one; tie 1 vs 2 -> lower index
    l1 = top.filter(pl.col("layer") == 1)
    assert l1.height == round(250 * 1 / 100)  # 2 (round half to even)
    assert l1["neuron"].to_list() == [6, 13]
    assert S.top_neurons(scores, 40).filter(pl.col("layer") == 0)["neuron"].to_list() == [1, 2]
    assert S.top_neurons(scores, 100).height == 255
    with pytest.raises(ValueError):
        S.top_neurons(scores, 0)


def test_constant_neuron_never_outranks_a_varying_one():
    import warnings

    rng = np.random.default_rng(3)
    a = rng.standard_normal((500, 4))
    a[:, 2] = -1.0  # dead neuron: defined WD (sqrt(2/pi)), larger than the Gaussian ones
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = W.wd_to_normal(a)
    scores = pl.DataFrame(
        {"layer": [0] * 4, "neuron": list(range(4)), "wd": stats["wd"], "std": stats["std"]},
        schema_overrides={"layer": pl.Int32, "neuron": pl.Int32},
    )
    assert scores["wd"][2] == scores["wd"].max()
    assert S.top_neurons(scores, 25)["neuron"].to_list() != [2]
    assert S.top_neurons(scores, 100)["neuron"].to_list()[-1] == 2
