from __future__ import annotations

import collections
import json

import numpy as np
import pytest
import torch

from conftest import TINY_HIDDEN, TINY_INTERMEDIATE, TINY_LAYERS, TINY_VOCAB
from negdiff.capture import capture_pre_activations
from negdiff import activations, models
from negdiff.activation_reader import ActivationReader
from negdiff.activations import dump_activations
from negdiff.data import TokenStream, iter_windows




def make_stream(n: int, seed: int = 0) -> TokenStream:
    rng = np.random.default_rng(seed)
    ids = rng.integers(4, TINY_VOCAB, size=n, dtype=np.int64)
    starts = np.arange(n, dtype=np.int64) * 4 + 1
    offsets = np.stack([starts, starts + 3], axis=1)
    return TokenStream(ids, offsets)


def reference(model, stream, *, window, stride, max_tokens, bos_token_id=None):
    """Pre-activations / MLP inputs of the recorded tokens, one plain full-model forward per window."""
    pre = collections.defaultdict(list)
    inp = collections.defaultdict(list)
    tok, off, pos = [], [], []
    n = 0
    for w in iter_windows(len(stream), window, stride):
        x = stream.ids[w.start : w.end]
        if bos_token_id is not None:
            x = np.concatenate([[bos_token_id], x])
        b = 0 if bos_token_id is None else 1
        with torch.no_grad(), capture_pre_activations(model, list(range(TINY_LAYERS)), capture_input=True) as cap:
            model(torch.from_numpy(x)[None])
        lo = w.keep_from - w.start
        hi = min(w.end - w.start, lo + (max_tokens - n))
        for l in range(TINY_LAYERS):
            pre[l].append(cap.pre_activation[l][0, b + lo : b + hi])
            inp[l].append(cap.mlp_input[l][0, b + lo : b + hi])
        tok.append(stream.ids[w.start + lo : w.start + hi])
        off.append(stream.offsets[w.start + lo : w.start + hi])
        pos.append(np.arange(lo, hi))
        n += hi - lo
        if n >= max_tokens:
            break
    return (
        {l: torch.cat(v) for l, v in pre.items()},
        {l: torch.cat(v) for l, v in inp.items()},
        np.concatenate(tok),
        np.concatenate(off),
        np.concatenate(pos),
    )


DUMP = dict(window=16, stride=10, max_tokens=83, tokens_per_shard=20, batch_size=3, progress=False)


@pytest.mark.parametrize("arch", ["llama", "qwen3", "gpt_neox", "opt", "gpt2"])
def test_float32_round_trip(arch, loaded, tmp_path):
    model = loaded(arch)
    stream = make_stream(100)
    out = tmp_path / "dump"
    manifest = dump_activations(model, stream, out, capture_mlp_input=True, meta={"model": arch}, **DUMP)
    ref_pre, ref_inp, ref_tok, ref_off, ref_pos = reference(model, stream, window=16, stride=10, max_tokens=83)

    assert manifest["n_tokens"] == 83
    assert [s["n_tokens"] for s in manifest["shards"]] == [20, 20, 20, 20, 3]
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"] + [f"shard-{k:05d}.safetensors" for k in range(5)]
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(manifest))
    assert on_disk["meta"] == {"model": arch}
    assert on_disk["architecture"] == arch
    assert on_disk["layers"] == list(range(TINY_LAYERS))
    assert (on_disk["n_neurons"], on_disk["d_model"]) == (TINY_INTERMEDIATE, TINY_HIDDEN)
    for s in on_disk["shards"]:
        assert (out / s["file"]).stat().st_size == s["bytes"]

    r = ActivationReader(out)
    assert r.n_tokens == 83 and r.layers == [0, 1] and r.has_mlp_input and r.dtype == "float32"
    assert r.n_neurons(0) == TINY_INTERMEDIATE
    for l in range(TINY_LAYERS):
        got = r.read_pre_activation(l)
        assert got.dtype == np.float32 and got.shape == (83, TINY_INTERMEDIATE)
        # batched dump vs one-window-at-a-time reference: same values up to BLAS blocking
        np.testing.assert_allclose(got, ref_pre[l].numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(r.read_mlp_input(l), ref_inp[l].numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(r.token_ids(), ref_tok)
    np.testing.assert_array_equal(r.offsets(), ref_off)
    np.testing.assert_array_equal(r.positions(), ref_pos)
    np.testing.assert_array_equal(r.token_ids(), stream.ids[:83])  # each token recorded once, in order
    np.testing.assert_array_equal(r.offsets(), stream.offsets[:83])


def test_float32_exact_with_same_batching(loaded, tmp_path):
    """With one window per forward the dump is bit-identical to a direct forward."""
    model = loaded("llama")
    stream = make_stream(60, seed=3)
    dump_activations(model, stream, tmp_path, **{**DUMP, "batch_size": 1, "max_tokens": 50})
    ref_pre, *_ = reference(model, stream, window=16, stride=10, max_tokens=50)
    r = ActivationReader(tmp_path)
    for l in range(TINY_LAYERS):
        np.testing.assert_array_equal(r.read_pre_activation(l), ref_pre[l].numpy())


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_low_precision_round_trip(dtype, loaded, tmp_path):
    model = loaded("qwen2")
    stream = make_stream(70, seed=1)
    dump_activations(model, stream, tmp_path, dtype=dtype, capture_mlp_input=True,
                     **{**DUMP, "batch_size": 1, "max_tokens": 55})
    ref_pre, ref_inp, *_ = reference(model, stream, window=16, stride=10, max_tokens=55)
    r = ActivationReader(tmp_path)
    assert r.dtype == dtype
    tdt = getattr(torch, dtype)
    for l in range(TINY_LAYERS):
        got = r.read_pre_activation(l)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, ref_pre[l].to(tdt).float().numpy())
        np.testing.assert_array_equal(r.read_mlp_input(l, rows=[54, 0, 21]),
                                      ref_inp[l].to(tdt).float().numpy()[[54, 0, 21]])


def test_bos_prepended_and_dropped(loaded, tmp_path):
    model = loaded("gpt2")
    stream = make_stream(50, seed=2)
    # window counts model positions, the BOS included: 17 = the BOS + 16 stream tokens
    m = dump_activations(model, stream, tmp_path, bos_token_id=1,
                         **{**DUMP, "window": 17, "batch_size": 1, "max_tokens": 50})
    assert m["bos_token_id"] == 1
    ref_pre, _, ref_tok, _, ref_pos = reference(model, stream, window=16, stride=10, max_tokens=50, bos_token_id=1)
    r = ActivationReader(tmp_path)
    np.testing.assert_array_equal(r.read_pre_activation(1), ref_pre[1].numpy())
    np.testing.assert_array_equal(r.token_ids(), stream.ids)
    np.testing.assert_array_equal(r.positions(), ref_pos)
    assert r.positions()[0] == 0 and r.positions().max() == 15


def test_column_slices_and_rows(loaded, tmp_path):
    model = loaded("llama")
    dump_activations(model, make_stream(90), tmp_path, capture_mlp_input=True, layers=[1], **DUMP)
    r = ActivationReader(tmp_path)
    assert r.layers == [1]
    full = r.read_pre_activation(1)
    for start, stop in [(0, 1), (5, 17), (60, None), (0, None), (63, 64)]:
        np.testing.assert_array_equal(r.read_pre_activation(1, start, stop), full[:, start:stop])
    blocks = list(r.iter_pre_activation(1, 3, 9))
    assert [b.shape[0] for b in blocks] == [20, 20, 20, 20, 3]
    np.testing.assert_array_equal(np.concatenate(blocks), full[:, 3:9])
    inp = r.read_mlp_input(1)
    rows = np.array([82, 19, 20, 0, 45, 45, 61])
    np.testing.assert_array_equal(r.read_mlp_input(1, rows), inp[rows])
    assert r.read_mlp_input(1, []).shape == (0, TINY_HIDDEN)
    with pytest.raises(KeyError, match="layer 0"):
        r.read_pre_activation(0)
    with pytest.raises(IndexError):
        r.read_mlp_input(1, [83])


def test_layer_subset_stops_early_but_matches(loaded, tmp_path):
    model = loaded("gpt_neox")
    stream = make_stream(100)
    dump_activations(model, stream, tmp_path / "all", **DUMP)
    dump_activations(model, stream, tmp_path / "l0", layers=[0], **DUMP)
    a, b = ActivationReader(tmp_path / "all"), ActivationReader(tmp_path / "l0")
    assert b.layers == [0]
    np.testing.assert_array_equal(a.read_pre_activation(0), b.read_pre_activation(0))
    assert all(len(m._forward_hooks) == 0 for m in models.pre_activation_modules(model))


def test_short_stream_and_no_limit(loaded, tmp_path):
    model = loaded("opt")
    stream = make_stream(37)
    with pytest.warns(UserWarning, match="fewer than max_tokens"):
        m = dump_activations(model, stream, tmp_path / "a", **{**DUMP, "max_tokens": 1000})
    assert m["n_tokens"] == 37
    m = dump_activations(model, stream, tmp_path / "b", **{**DUMP, "max_tokens": None})
    assert m["n_tokens"] == 37
    np.testing.assert_array_equal(ActivationReader(tmp_path / "b").token_ids(), stream.ids)


def test_stale_files_removed(loaded, tmp_path):
    model = loaded("llama")
    (tmp_path / "shard-00099.safetensors").write_bytes(b"stale")
    (tmp_path / "manifest.json").write_text("{}")
    (tmp_path / "keep.txt").write_text("unrelated")
    dump_activations(model, make_stream(40), tmp_path, **{**DUMP, "max_tokens": 30})
    assert not (tmp_path / "shard-00099.safetensors").exists()
    assert (tmp_path / "keep.txt").exists()
    assert ActivationReader(tmp_path).n_tokens == 30


def test_missing_or_truncated_shard(loaded, tmp_path):
    model = loaded("llama")
    dump_activations(model, make_stream(100), tmp_path, **DUMP)
    shard = tmp_path / "shard-00001.safetensors"
    data = shard.read_bytes()
    shard.write_bytes(data[:-10])
    with pytest.raises(ValueError, match="shard-00001.safetensors"):
        ActivationReader(tmp_path)
    shard.unlink()
    with pytest.raises(FileNotFoundError, match="shard-00001.safetensors"):
        ActivationReader(tmp_path)


def test_no_manifest_is_not_a_dump(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path.name)):
        ActivationReader(tmp_path)


def test_manifest_written_last(loaded, tmp_path, monkeypatch):
    model = loaded("llama")
    seen = {}
    real_write_json = activations.write_json

    def spy(path, obj):
        seen["shards_present"] = sorted(p.name for p in tmp_path.glob("shard-*.safetensors"))
        real_write_json(path, obj)

    monkeypatch.setattr(activations, "write_json", spy)
    m = dump_activations(model, make_stream(100), tmp_path, **DUMP)
    assert seen["shards_present"] == [s["file"] for s in m["shards"]]

    # a dump that dies part-way leaves no manifest, so no reader will trust it
    calls = {"n": 0}
    real_save = activations.save_file

    def failing_save(tensors, filename, metadata=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk on fire")
        real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(activations, "save_file", failing_save)
    with pytest.raises(OSError, match="disk on fire"):
        dump_activations(model, make_stream(100), tmp_path, **DUMP)
    assert not (tmp_path / "manifest.json").exists()
    assert not list(tmp_path.glob(".tmp-*"))
    with pytest.raises(FileNotFoundError, match="manifest"):
        ActivationReader(tmp_path)


def test_shards_flushed_as_they_fill(loaded, tmp_path, monkeypatch):
    """Memory stays bounded: shards are written during the run, each at most tokens_per_shard tokens."""
    model = loaded("llama")
    forwards = {"n": 0}
    handle = models.block_modules(model)[0].register_forward_hook(lambda *a: forwards.__setitem__("n", forwards["n"] + 1))
    sizes, at_forward = [], []
    real_save = activations.save_file

    def spy(tensors, filename, metadata=None):
        sizes.append(tensors["token_ids"].shape[0])
        at_forward.append(forwards["n"])
        real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(activations, "save_file", spy)
    try:
        dump_activations(model, make_stream(400), tmp_path, **{**DUMP, "max_tokens": 390, "batch_size": 2})
    finally:
        handle.remove()
    assert max(sizes) <= 20 and sum(sizes) == 390
    assert at_forward[0] < forwards["n"] / 4  # the first shard was written early, not at the end


@pytest.mark.parametrize("arch", ["llama", "opt"])
def test_nan_raises_with_layer_and_position(arch, loaded, tmp_path):
    model = loaded(arch)
    mod = models.pre_activation_modules(model)[1]

    def inject(module, args, output):
        out = output.clone()
        # OPT's MLP sees tokens flattened to [B*T, N]; windows are 16 tokens long
        view = out.view(-1, 16, out.shape[-1]) if arch == "opt" else out
        view[0, 5, 3] = float("nan")
        return out

    handle = mod.register_forward_hook(inject)
    try:
        with pytest.raises(ValueError, match=r"layer 1, position 5\b"):
            dump_activations(model, make_stream(100), tmp_path, **DUMP)
    finally:
        handle.remove()
    assert not (tmp_path / "manifest.json").exists()


def test_insufficient_disk_raises_before_writing(loaded, tmp_path, monkeypatch):
    model = loaded("llama")
    Usage = collections.namedtuple("Usage", "total used free")
    monkeypatch.setattr(activations.shutil, "disk_usage", lambda p: Usage(10**6, 10**6 - 1000, 1000))
    with pytest.raises(OSError, match="not enough disk space"):
        dump_activations(model, make_stream(100), tmp_path / "d", **DUMP)
    assert not list((tmp_path / "d").glob("*"))


def test_estimate_counts_layers_and_inputs():
    est = activations.estimate_dump_bytes(100, 2, 64, 32, "bfloat16", True)
    assert est == 100 * (2 * (64 + 32) * 2 + 32)
    assert activations.estimate_dump_bytes(100, 2, 64, 32, "float32", False) == 100 * (2 * 64 * 4 + 32)


def test_argument_errors(loaded, tmp_path):
    model = loaded("llama")
    s = make_stream(100)
    with pytest.raises(ValueError, match="dtype"):
        dump_activations(model, s, tmp_path, **dict(DUMP, dtype="int8"))
    with pytest.raises(IndexError, match="out of range"):
        dump_activations(model, s, tmp_path, layers=[5], **DUMP)
    with pytest.raises(ValueError, match="context"):
        dump_activations(model, s, tmp_path, **dict(DUMP, window=129, stride=64), bos_token_id=1)
