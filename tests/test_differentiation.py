"""Negative differentiation per neuron (claim C8): the negative share against a grid reference, a synthetic
layer with planted neurons, the driver on tiny-model dumps (full and histogram), POS, and the rule."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

from conftest import TINY_INTERMEDIATE, TINY_LAYERS
from negdiff import scoring as S
from negdiff import mapping_difficulty as MD
from negdiff import streaming as St
from negdiff.activation_reader import ActivationReader
from negdiff.activations import dump_activations
from negdiff.differentiation import (DIFFERENTIATION_SCHEMA, differentiation_layer, differentiation_table,
                                     negative_share, token_pos)
from test_activations import make_stream

DUMP = dict(window=16, stride=10, max_tokens=300, tokens_per_shard=40, batch_size=3, progress=False,
            capture_mlp_input=True)
TAGS = ["DET", "NOUN", None, "VERB", "ADP", "PUNCT", "ADJ"]


# --------------------------------------------------------------------------- negative share


def _share_grid(a: float, b: float, n: int = 200_001) -> float:
    """Brute force: the fraction of midpoints of a fine grid on [min, max] that are <= 0."""
    lo, hi = min(a, b), max(a, b)
    edges = np.linspace(lo, hi, n)
    mid = 0.5 * (edges[1:] + edges[:-1])
    return float(np.mean(mid <= 0))


def test_negative_share_matches_grid_reference():
    rng = np.random.default_rng(0)
    pairs = [tuple(v) for v in rng.normal(0, 2, size=(200, 2))]
    pairs += [(-3.0, -0.5), (-1e-3, -2.0), (0.5, 4.0), (2.0, 1e-3), (-1.0, 3.0), (5.0, -0.25),
              (0.0, 1.0), (-1.0, 0.0), (0.0, -2.5), (1e-9, -1e-9)]
    yi, yj = np.array(pairs).T
    got = negative_share(yi, yj)
    ref = np.array([_share_grid(a, b) for a, b in pairs])
    np.testing.assert_allclose(got, ref, atol=2e-5)
    np.testing.assert_array_equal(got, negative_share(yj, yi))  # symmetric
    both_neg, both_pos = (yi < 0) & (yj < 0), (yi >= 0) & (yj >= 0)
    assert both_neg.sum() > 20 and both_pos.sum() > 20 and (~both_neg & ~both_pos).sum() > 20
    assert np.all(got[both_neg] == 1.0) and np.all(got[both_pos] == 0.0)
    straddle = ~both_neg & ~both_pos & (yi != 0) & (yj != 0)
    assert np.all((got[straddle] > 0) & (got[straddle] < 1))


def test_negative_share_is_continuous_and_undefined_for_equal_values():
    eps = np.array([1e-1, 1e-4, 1e-8, 0.0])
    np.testing.assert_allclose(negative_share(-eps, 1.0), eps / (1 + eps))  # -> 0 as the minimum -> 0
    np.testing.assert_allclose(negative_share(eps - 1.0, 0.0 * eps), 1.0)
    assert negative_share(-1.0, 3.0) == 0.25
    assert np.isnan(negative_share(2.0, 2.0)) and np.isnan(negative_share(-1.0, -1.0))
    assert negative_share(np.zeros((3, 4)), np.ones(4)).shape == (3, 4)


# --------------------------------------------------------------------------- synthetic layer


def _synthetic_layer(seed: int = 0, t: int = 1000, d: int = 8, b: int = 60, cluster: int = 400):
    """x: spread-out MLP inputs, ``cluster`` of them all close to one point. y: b Gaussian neurons, then
    neuron b (0 off the cluster, -1 / -2 on its two halves) and neuron b + 1 (the mirror: +1 / +2)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, size=(t, d))
    members = rng.choice(t, cluster, replace=False)
    x[members] = rng.normal(0, 1, size=d) + 0.01 * rng.normal(size=(cluster, d))
    y = rng.normal(0, 1, size=(t, b + 2))
    level = np.zeros(t)
    level[members[: cluster // 2]] = 1.0
    level[members[cluster // 2 :]] = 2.0
    y[:, b], y[:, b + 1] = -level, level
    return x.astype(np.float32), y.astype(np.float32), members


def test_planted_negative_differentiator_stands_out():
    x, y, members = _synthetic_layer()
    b = y.shape[1] - 2
    i, j = MD.md_pairs(x.shape[0], 4096, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the planted neurons' median |dy| is 0: no warning from here
        got = differentiation_layer(x, y, i, j, top_k=32)
    assert got.columns == ["neuron"] + [k for k in DIFFERENTIATION_SCHEMA if k not in ("layer", "neuron", "wd")]
    assert got["neuron"].to_list() == list(range(b + 2)) and (got["n_top"] == 32).all()
    gauss = got[:b]
    neg, pos = got.row(b, named=True), got.row(b + 1, named=True)
    # the planted pairs (close inputs, distinct levels) are the top pairs: both values negative / positive
    assert neg["top_both_neg"] == 32 and neg["top_share_neg"] == 1.0
    assert pos["top_both_pos"] == 32 and pos["top_share_neg"] == 0.0
    hi, lo = gauss["top_share_neg"].max(), gauss["top_share_neg"].min()
    assert neg["top_share_neg"] > hi + 0.1 and pos["top_share_neg"] < lo - 0.1
    # a Gaussian neuron is like its neighbours
    vals = gauss["top_share_neg"].to_numpy()
    assert abs(vals[0] - np.median(vals[1:])) <= 4 * vals[1:].std()
    assert abs(gauss["random_share_neg"].mean() - 0.5) < 0.02
    counts = gauss.select(pl.sum_horizontal("top_both_neg", "top_mixed", "top_both_pos"))
    assert (counts.to_series() == 32).all()
    assert got["top_function_share"].null_count() == got.height  # no POS given


def test_top_pairs_follow_the_md_ratio_and_pos():
    x, y, members = _synthetic_layer(seed=1)
    b = y.shape[1] - 2
    i, j = MD.md_pairs(x.shape[0], 2000, 4)
    in_cluster = np.zeros(x.shape[0], bool)
    in_cluster[members] = True
    # function tags on the cluster, content tags elsewhere, and some untagged rows
    pos = ["DET" if c else "NOUN" for c in in_cluster]
    pos[int(members[0])] = None
    got = differentiation_layer(x, y, i, j, top_k=5, pos=pos)
    assert got["top_function_share"][b] == 1.0 and got["top_function_share"][b + 1] == 1.0
    # independent reference for one Gaussian neuron: the ratio ranking by a plain loop
    n = 3
    dx = np.linalg.norm(x[i].astype(np.float64) - x[j], axis=1)
    dy = np.abs(y[i, n].astype(np.float64) - y[j, n])
    ratio = (dy / np.median(dy)) / (dx / dx.max())
    top = np.argsort(-ratio, kind="stable")[:5]
    ref = np.mean([negative_share(y[i[p], n], y[j[p], n]) for p in top])
    assert got["top_share_neg"][n] == pytest.approx(ref, abs=1e-12)
    tags = [pos[k] for p in top for k in (i[p], j[p]) if pos[k] is not None]
    assert got["top_function_share"][n] == pytest.approx(np.mean([t == "DET" for t in tags]))


def test_degenerate_inputs():
    x = np.zeros((10, 3), np.float32)
    y = np.random.default_rng(0).normal(size=(10, 4)).astype(np.float32)
    i, j = MD.md_pairs(10, 50, 0)
    with pytest.warns(UserWarning, match="no sampled pair with distinct MLP inputs"):
        got = differentiation_layer(x, y, i, j)
    assert got["top_share_neg"].null_count() == 4 and (got["n_top"] == 0).all()
    x = np.random.default_rng(1).normal(size=(10, 3)).astype(np.float32)
    const = differentiation_layer(x, np.ones((10, 2), np.float32), i, j, neuron_offset=7)
    assert const["neuron"].to_list() == [7, 8] and (const["n_top"] == 0).all()
    assert const["random_share_neg"].null_count() == 2
    with pytest.raises(ValueError, match="top_k"):
        differentiation_layer(x, y, i, j, top_k=0)
    with pytest.raises(ValueError, match="out of range"):
        differentiation_layer(x, y, i + 10, j)


# --------------------------------------------------------------------------- driver on real dumps


def _fake_pos(n: int) -> list:
    return [TAGS[k % len(TAGS)] for k in range(n)]


def _check_driver(reader, scores, *, md_pairs: int, seed: int):
    pos = _fake_pos(reader.n_tokens)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = differentiation_table(reader, scores, top_k=8, md_pairs=md_pairs, seed=seed, pos=pos, neuron_block=24)
    assert got.schema == pl.Schema(DIFFERENTIATION_SCHEMA)
    assert got.height == TINY_LAYERS * TINY_INTERMEDIATE
    assert got.select(pl.struct("layer", "neuron").n_unique()).item() == got.height
    assert got.equals(got.sort(["layer", "neuron"]))
    assert got["wd"].to_list() == scores.sort(["layer", "neuron"])["wd"].to_list()
    assert (got["n_top"] == 8).all() and got["top_function_share"].is_not_null().all()
    for layer in reader.layers:
        i, j = MD.md_pairs(reader.n_tokens, md_pairs, seed)
        ref = differentiation_layer(reader.read_mlp_input(layer), reader.read_pre_activation(layer), i, j,
                                    top_k=8, pos=pos)
        mine = got.filter(pl.col("layer") == layer).drop(["layer", "wd"])
        assert mine.equals(ref), layer
    return got


def test_driver_on_full_and_histogram_dumps(loaded, tmp_path):
    model = loaded("llama")
    stream = make_stream(400, seed=1)
    dump_activations(model, stream, tmp_path / "full", **DUMP)
    dump_activations(model, stream, tmp_path / "hist", keep="histograms", grid=St.Grid(128, 6.0),
                     sample_tokens=120, sample_seed=5, **DUMP)
    for name, mode in (("full", "exact"), ("hist", "streaming")):
        reader = ActivationReader(tmp_path / name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scores = S.score_activations(reader, mode=mode, md_pairs=200, md_seed=3, bins=128, z_range=6.0)
        assert reader.n_tokens == (300 if name == "full" else 120)
        _check_driver(reader, scores, md_pairs=200, seed=3)
    with pytest.raises(ValueError, match="lacks 1 dumped neuron"):
        differentiation_table(reader, scores[1:], md_pairs=200, seed=3)
    with pytest.raises(ValueError, match="pos has"):
        differentiation_table(reader, scores, md_pairs=200, seed=3, pos=["DET"])


def test_driver_without_mlp_input_gives_nulls(loaded, tmp_path):
    dump_activations(loaded("llama"), make_stream(100), tmp_path, **{**DUMP, "max_tokens": 50,
                                                                    "capture_mlp_input": False})
    reader = ActivationReader(tmp_path)
    scores = S.score_activations(reader)
    got = differentiation_table(reader, scores)
    assert got.schema == pl.Schema(DIFFERENTIATION_SCHEMA) and got.height == scores.height
    assert got["top_share_neg"].null_count() == got.height and (got["n_top"] == 0).all()


# --------------------------------------------------------------------------- POS and the rule


def test_token_pos_gold_and_mismatch():
    text = "the dog barks .\nno cat ever slept .\n"
    gold = "DET NOUN VERB PUNCT\nDET NOUN ADV VERB PUNCT\n"
    offsets = np.array([(0, 3), (3, 7), (8, 13), (14, 15), (15, 16), (16, 18)])
    tags, how = token_pos(text, offsets, gold_pos=gold)
    assert tags == ["DET", "NOUN", "VERB", "PUNCT", None, "DET"] and "gold" in how
    tags, how = token_pos(text[:10], offsets, gold_pos=gold)
    assert tags is None and "another text" in how
    tags, how = token_pos(text, offsets, spacy_model="no_such_spacy_model")
    assert tags is None and "spaCy" in how


def test_rule_resolves_in_a_dry_run(tmp_path):
    from workflow_util import copy_workflow, planned_jobs, snakemake

    import yaml

    wf = copy_workflow(tmp_path / "wf")
    steps = yaml.safe_load((wf / "config.yaml").read_text())["training"]["steps"]
    target = f"results/scores/tiny-llama/step{steps}.differentiation.parquet"
    planned = planned_jobs(snakemake(wf, target, "-n").stdout)
    assert planned["differentiation"] == 1 and planned["score_neurons"] == 1 and planned["dump_activations"] == 1
