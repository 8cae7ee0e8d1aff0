"""The CUDA path (dtype, device_map, device-side dumps and hooks): skipped without a GPU.

CI has no GPU; these ran on a lent H100 (see BENCHMARKS.md §7). Each compares the GPU against the CPU
on the same tiny randomly initialised model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pair_reference import minimal_pair_accuracy
from negdiff import interventions, models
from negdiff import scoring as S
from negdiff import streaming as St
from negdiff.activation_reader import ActivationReader
from negdiff.activations import dump_activations
from test_activations import make_stream

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

DUMP = dict(window=16, stride=10, max_tokens=500, tokens_per_shard=64, batch_size=4, progress=False,
            capture_mlp_input=True)


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32"])
def test_load_on_cuda_in_dtype(tiny_hf_model, dtype):
    model, _ = models.load_model(tiny_hf_model("llama"), dtype=dtype, device="cuda")
    p = next(model.parameters())
    assert p.device.type == "cuda" and p.dtype == getattr(torch, dtype)
    assert models.model_device(model).type == "cuda"


def test_device_map_auto_places_the_model_on_the_gpu(tiny_hf_model):
    model, _ = models.load_model(tiny_hf_model("qwen3"), dtype="bfloat16", device_map="auto")
    assert {p.device.type for p in model.parameters()} == {"cuda"}
    assert models.model_device(model).type == "cuda"


@pytest.mark.parametrize("arch", ["llama", "gpt_neox", "opt"])
def test_dump_on_cuda_matches_cpu(tiny_hf_model, arch, tmp_path):
    """keep all: the overlapped device-to-host copies keep every row in order."""
    path = tiny_hf_model(arch)
    stream = make_stream(600, seed=2)
    cpu, _ = models.load_model(path)
    gpu, _ = models.load_model(path, device="cuda")
    dump_activations(cpu, stream, tmp_path / "cpu", **DUMP)
    dump_activations(gpu, stream, tmp_path / "gpu", **DUMP)
    rc, rg = ActivationReader(tmp_path / "cpu"), ActivationReader(tmp_path / "gpu")
    assert rg.n_tokens == rc.n_tokens == 500
    np.testing.assert_array_equal(rg.token_ids(), rc.token_ids())
    np.testing.assert_array_equal(rg.positions(), rc.positions())
    for layer in rc.layers:
        np.testing.assert_allclose(rg.read_pre_activation(layer), rc.read_pre_activation(layer), rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(rg.read_mlp_input(layer), rc.read_mlp_input(layer), rtol=1e-3, atol=1e-4)


def test_bf16_model_and_dump_on_cuda(tiny_hf_model, tmp_path):
    gpu, _ = models.load_model(tiny_hf_model("llama"), dtype="bfloat16", device="cuda")
    m = dump_activations(gpu, make_stream(300), tmp_path / "d", dtype="bfloat16", **{**DUMP, "max_tokens": 200})
    assert m["model_dtype"] == "bfloat16" and m["dtype"] == "bfloat16"
    r = ActivationReader(tmp_path / "d")
    assert np.isfinite(r.read_pre_activation(0)).all() and r.n_tokens == 200


def test_histogram_dump_on_cuda_matches_exact_cpu(tiny_hf_model, tmp_path):
    path = tiny_hf_model("llama")
    stream = make_stream(600, seed=4)
    cpu, _ = models.load_model(path)
    gpu, _ = models.load_model(path, device="cuda")
    grid = St.Grid(512, 8.0)
    dump_activations(cpu, stream, tmp_path / "full", **DUMP)
    dump_activations(gpu, stream, tmp_path / "hist", keep="histograms", grid=grid, sample_tokens=100, **DUMP)
    exact = S.score_activations(ActivationReader(tmp_path / "full"), md_pairs=100)
    got = S.score_activations(ActivationReader(tmp_path / "hist"), mode="streaming", md_pairs=100)
    # the GPU's float32 arithmetic differs from the CPU's by rounding: allow it on top of the bound
    assert (got["wd"] - exact["wd"]).abs().max() <= St.error_bound(grid) + 1e-4
    np.testing.assert_allclose(got["std"], exact["std"], rtol=1e-4)


def test_streaming_accumulators_on_cuda_equal_cpu():
    rng = np.random.default_rng(0)
    a = (rng.standard_t(3, size=(5000, 64)) * 2 + 1).astype(np.float32)
    grid = St.Grid(256, 4.0)
    out = {}
    for dev in ("cpu", "cuda"):
        x = torch.from_numpy(a).to(dev)
        mom = St.moments_init(64, dev)
        for s in range(0, 5000, 1000):
            mom = St.moments_update(mom, x[s:s + 1000])
        h = St.hist_init(64, grid, dev, dtype=torch.int32)
        for s in range(0, 5000, 1000):
            St.hist_update(h, x[s:s + 1000], mom.mean, mom.std)
        out[dev] = (mom.numpy(), h.numpy())
    (mc, hc), (mg, hg) = out["cpu"], out["cuda"]
    np.testing.assert_allclose(mg.mean, mc.mean, rtol=1e-12)
    np.testing.assert_allclose(mg.m2, mc.m2, rtol=1e-10)
    assert np.array_equal(mg.n_neg, mc.n_neg) and np.array_equal(mg.min, mc.min)
    # float64 bin positions: a value may change bin only within rounding of an edge
    assert np.abs(hg.slots.astype(np.int64) - hc.slots).sum() <= 4
    np.testing.assert_allclose(hg.tail_sum, hc.tail_sum, rtol=1e-9, atol=1e-9)


def test_neg_zero_hook_on_cuda_matches_cpu(tiny_hf_model):
    path = tiny_hf_model("llama")
    cpu, tok = models.load_model(path)
    gpu, _ = models.load_model(path, device="cuda")
    words = "the cat sat on a mat and the dog ran to the park".split()
    pairs = [{"sentence_good": " ".join(words[i:i + 6]), "sentence_bad": " ".join(words[i:i + 6][::-1])}
             for i in range(6)]
    n = models.n_neurons(cpu)
    mask = {l: np.arange(n) % 5 == 0 for l in range(models.n_layers(cpu))}
    res = {}
    for name, m in (("cpu", cpu), ("gpu", gpu)):
        with interventions.intervene(m, mask, "neg_zero"):
            res[name] = minimal_pair_accuracy(m, tok, pairs, batch_size=4)
        res[name + "_off"] = minimal_pair_accuracy(m, tok, pairs, batch_size=4)
    for k in ("logp_good", "logp_bad"):
        np.testing.assert_allclose(res["gpu"][k].to_numpy(), res["cpu"][k].to_numpy(), rtol=1e-4, atol=1e-4)
        assert not np.allclose(res["gpu"][k].to_numpy(), res["gpu_off"][k].to_numpy())
