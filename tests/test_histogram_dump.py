"""Dump-time histograms (activations.keep: histograms): scores from a histogram dump against the exact
scorer on a full dump of the same model and windows; the token sample; the files and the errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import polars as pl
import pytest

from conftest import TINY_INTERMEDIATE, TINY_LAYERS
from negdiff import scoring as S
from negdiff import mapping_difficulty as MD
from negdiff import streaming as St
from negdiff.activation_reader import HISTOGRAMS, ActivationReader
from negdiff.activations import dump_activations, sample_rows
from test_activations import make_stream

DUMP = dict(window=16, stride=10, max_tokens=300, tokens_per_shard=40, batch_size=3, progress=False,
            capture_mlp_input=True)
GRID = St.Grid(256, 6.0)


def score(reader, mode, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return S.score_activations(reader, mode=mode, neuron_block=24, md_pairs=200, md_seed=3, **kw)


@pytest.mark.parametrize("arch", ["llama", "gpt_neox", "opt"])
def test_histogram_dump_scores_within_bound_of_exact(arch, loaded, tmp_path):
    model = loaded(arch)
    stream = make_stream(400, seed=1)
    full = dump_activations(model, stream, tmp_path / "full", **DUMP)
    hist = dump_activations(model, stream, tmp_path / "hist", keep="histograms", grid=GRID,
                            sample_tokens=120, sample_seed=5, **DUMP)
    assert hist["keep"] == "histograms" and full["keep"] == "all"
    assert hist["n_tokens_seen"] == full["n_tokens"] == 300
    assert hist["n_tokens"] == 120 and hist["sample"] == {"tokens": 120, "of": 300, "seed": 5}
    assert hist["histograms"]["bins"] == 256 and (tmp_path / "hist" / HISTOGRAMS).is_file()

    rf, rh = ActivationReader(tmp_path / "full"), ActivationReader(tmp_path / "hist")
    exact = score(rf, "exact")
    got = score(rh, "streaming")
    assert got.height == exact.height == TINY_LAYERS * TINY_INTERMEDIATE
    bound = St.error_bound(GRID)
    for c in ("wd", "wd_neg", "wd_pos"):
        err = (got[c] - exact[c]).abs().max()
        assert err <= bound, (c, err, bound)
    # moments over all 300 tokens, not over the sample
    np.testing.assert_allclose(got["mean"], exact["mean"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got["std"], exact["std"], rtol=1e-6)
    assert got["frac_negative"].to_list() == exact["frac_negative"].to_list()
    # the same top-5% per layer
    for layer in range(TINY_LAYERS):
        a = set(S.top_neurons(exact.filter(pl.col("layer") == layer), 5)["neuron"].to_list())
        b = set(S.top_neurons(got.filter(pl.col("layer") == layer), 5)["neuron"].to_list())
        assert len(a & b) >= len(a) - 1, (layer, a, b)

    # the sample: the seeded rows of the full dump, bit for bit (float32 dumps)
    rows = sample_rows(300, 120, 5)
    assert rows.size == 120 and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(rh.token_ids(), rf.token_ids()[rows])
    np.testing.assert_array_equal(rh.offsets(), rf.offsets()[rows])
    np.testing.assert_array_equal(rh.positions(), rf.positions()[rows])
    for layer in range(TINY_LAYERS):
        np.testing.assert_allclose(rh.read_pre_activation(layer), rf.read_pre_activation(layer)[rows],
                                   rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rh.read_mlp_input(layer), rf.read_mlp_input(layer)[rows], rtol=1e-5, atol=1e-6)
    # MD over the sample = MD of the exact scorer over a reader of just those rows
    md_ref = MD.mapping_difficulty(rh.read_mlp_input(0), rh.read_pre_activation(0),
                                  *MD.md_pairs(120, 200, 3))
    np.testing.assert_allclose(got.filter(pl.col("layer") == 0)["md"].to_numpy(), md_ref, rtol=1e-12)


def test_histogram_counts_every_token_once(loaded, tmp_path):
    model = loaded("llama")
    dump_activations(model, make_stream(200), tmp_path / "h", keep="histograms", grid=St.Grid(16, 1.0),
                     sample_tokens=50, **{**DUMP, "max_tokens": 150})
    r = ActivationReader(tmp_path / "h")
    for layer in r.layers:
        mom, h = r.histogram(layer)
        live = mom.min != mom.max
        total = h.counts.sum(axis=1) + h.tail_n.sum(axis=(1, 2))
        assert mom.n == 150 and np.all(total[live] == 150)
        assert h.tail_n.sum() > 0  # a narrow grid: out-of-grid values on both sides
        np.testing.assert_array_equal(h.tail_n[:, :, 0].sum(axis=1) <= mom.n_neg, True)


def test_sample_larger_than_the_dump_keeps_every_token(loaded, tmp_path):
    m = dump_activations(loaded("opt"), make_stream(100), tmp_path / "h", keep="histograms", grid=GRID,
                         sample_tokens=10_000, **{**DUMP, "max_tokens": 60})
    assert m["n_tokens"] == m["n_tokens_seen"] == 60
    np.testing.assert_array_equal(sample_rows(60, 10_000, 0), np.arange(60))


def test_histogram_dump_errors(loaded, tmp_path):
    model = loaded("llama")
    with pytest.raises(ValueError, match="needs a grid"):
        dump_activations(model, make_stream(50), tmp_path / "a", keep="histograms", **DUMP)
    with pytest.raises(ValueError, match="keep must be one of"):
        dump_activations(model, make_stream(50), tmp_path / "a", keep="some", **DUMP)
    dump_activations(model, make_stream(50), tmp_path / "h", keep="histograms", grid=GRID, sample_tokens=20,
                     **{**DUMP, "max_tokens": 40})
    r = ActivationReader(tmp_path / "h")
    with pytest.raises(ValueError, match=r"keeps histograms.*scoring.mode: streaming"):
        S.score_layer(r, 0, mode="exact")
    # a rewritten histogram file is refused, naming it
    (tmp_path / "h" / HISTOGRAMS).write_bytes(b"x" * 10)
    with pytest.raises(ValueError, match=HISTOGRAMS):
        ActivationReader(tmp_path / "h")
    # a full dump has no histograms
    dump_activations(model, make_stream(50), tmp_path / "f", **{**DUMP, "max_tokens": 40})
    with pytest.raises(KeyError, match="no histograms"):
        ActivationReader(tmp_path / "f").histogram(0)


def test_interrupted_histogram_dump_leaves_nothing(loaded, tmp_path, monkeypatch):
    from negdiff import streaming

    def boom(*a, **k):
        raise RuntimeError("stop in pass 2")

    monkeypatch.setattr(streaming, "hist_update", boom)
    with pytest.raises(RuntimeError, match="pass 2"):
        dump_activations(loaded("llama"), make_stream(80), tmp_path / "h", keep="histograms", grid=GRID,
                         sample_tokens=20, **{**DUMP, "max_tokens": 60})
    assert sorted(p.name for p in (tmp_path / "h").iterdir()) == []
