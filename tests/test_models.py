from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import (
    ARCHS,
    TINY_HIDDEN,
    TINY_INTERMEDIATE,
    TINY_LAYERS,
    TINY_VOCAB,
    tiny_config,
)
from torch import nn
from transformers.pytorch_utils import Conv1D

from negdiff import architectures, models
from negdiff.capture import capture_pre_activations

# Where each architecture's MLP input can be observed independently of the pre-activation module:
# (dotted path inside the block, "input" = first positional input of that module / "output").
MLP_INPUT_SOURCE = {
    "llama": ("mlp", "input"),
    "mistral": ("mlp", "input"),
    "qwen2": ("mlp", "input"),
    "qwen3": ("mlp", "input"),
    "gpt_neox": ("mlp", "input"),
    "opt": ("final_layer_norm", "output"),
    "gpt2": ("mlp", "input"),
}


def _get(module, dotted):
    for part in dotted.split("."):
        module = getattr(module, part)
    return module


@pytest.fixture(scope="module")
def loaded(tiny_hf_model):
    cache = {}

    def get(arch):
        if arch not in cache:
            cache[arch] = models.load_model(tiny_hf_model(arch))
        return cache[arch]

    return get


def _ids(batch=2, seq=7, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(4, TINY_VOCAB, (batch, seq), generator=g)


def _manual_linear(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    if isinstance(module, Conv1D):
        return x @ module.weight + module.bias
    assert isinstance(module, nn.Linear)
    return F.linear(x, module.weight, module.bias)


def test_table_covers_expected_archs():
    # the MLP input is observed independently of the records: a new record needs its entry above
    assert set(architectures.ARCHITECTURES) == set(MLP_INPUT_SOURCE)
    for name, spec in architectures.ARCHITECTURES.items():
        assert spec.name == name
        assert spec.gated == (spec.activation == "silu")


@pytest.mark.parametrize("arch", ARCHS)
def test_arch_spec_matches_config_activation(arch):
    cfg = tiny_config(arch)
    spec = architectures.arch_spec(cfg)
    act = getattr(cfg, "hidden_act", None) or getattr(cfg, "activation_function", None)
    assert act == spec.activation


@pytest.mark.parametrize("arch", ARCHS)
def test_load_and_structure(arch, loaded, tiny_hf_model):
    model, tok = loaded(arch)
    assert not model.training
    assert architectures.arch_spec(model).name == arch
    assert len(models.block_modules(model)) == TINY_LAYERS
    mods = models.pre_activation_modules(model)
    assert len(mods) == TINY_LAYERS
    assert models.n_neurons(model) == TINY_INTERMEDIATE
    assert models.d_model(model) == TINY_HIDDEN
    assert next(model.parameters()).dtype == torch.float32
    # our word-level tokenizer is loaded as saved, whatever the model type
    assert tok.tokenize("the cat sat on a mat") == ["the", "cat", "sat", "on", "a", "mat"]


@pytest.mark.parametrize("arch", ARCHS)
def test_capture_is_exactly_the_pre_activation(arch, loaded):
    model, _ = loaded(arch)
    spec = architectures.arch_spec(model)
    blocks = models.block_modules(model)
    mods = models.pre_activation_modules(model)
    src_path, src_kind = MLP_INPUT_SOURCE[arch]
    independent: dict[int, torch.Tensor] = {}
    handles = []
    for l, block in enumerate(blocks):
        src = _get(block, src_path)
        if src_kind == "input":
            handles.append(src.register_forward_pre_hook(lambda m, a, l=l: independent.__setitem__(l, a[0].detach().clone())))
        else:
            handles.append(src.register_forward_hook(lambda m, a, o, l=l: independent.__setitem__(l, o.detach().clone())))
    ids = _ids(batch=3, seq=9)
    try:
        with torch.no_grad(), capture_pre_activations(model, [0, 1], capture_input=True) as cap:
            model(ids)
    finally:
        for h in handles:
            h.remove()
    N, D = models.n_neurons(model), models.d_model(model)
    for l in range(TINY_LAYERS):
        pre = cap.pre_activation[l]
        assert pre.shape == (3, 9, N)
        assert not pre.requires_grad
        x = independent[l].reshape(3, 9, D)
        assert torch.equal(cap.mlp_input[l], x)
        expected = _manual_linear(mods[l], x)
        torch.testing.assert_close(pre, expected, atol=1e-6, rtol=1e-6)
        # both signs occur (the point of the whole study)
        assert (pre < 0).any() and (pre > 0).any()
    if spec.gated:
        assert isinstance(mods[0], nn.Linear) and mods[0] is blocks[0].mlp.gate_proj


@pytest.mark.parametrize("arch", ARCHS)
def test_capture_leaves_output_unchanged_and_removes_hooks(arch, loaded):
    model, _ = loaded(arch)
    ids = _ids()
    mods = models.pre_activation_modules(model)
    blocks = models.block_modules(model)
    with torch.no_grad():
        ref = model(ids).logits
        with capture_pre_activations(model, [1]) as cap:
            got = model(ids).logits
            assert len(mods[1]._forward_hooks) == 1 and len(mods[0]._forward_hooks) == 0
    assert torch.equal(ref, got)
    assert set(cap.pre_activation) == {1} and cap.mlp_input == {}
    for m in mods + blocks:
        assert len(m._forward_hooks) == 0 and len(m._forward_pre_hooks) == 0


def test_each_forward_overwrites(loaded):
    model, _ = loaded("llama")
    with torch.no_grad(), capture_pre_activations(model, [0]) as cap:
        model(_ids(batch=1, seq=4))
        first = cap.pre_activation[0]
        model(_ids(batch=2, seq=6, seed=5))
        assert cap.pre_activation[0].shape == (2, 6, TINY_INTERMEDIATE)
        assert first.shape == (1, 4, TINY_INTERMEDIATE)


@pytest.mark.parametrize("arch", ["llama", "opt", "gpt2"])
def test_hooks_removed_on_exception(arch, loaded):
    model, _ = loaded(arch)
    mods = models.pre_activation_modules(model)
    blocks = models.block_modules(model)
    with pytest.raises(RuntimeError, match="boom"):
        with capture_pre_activations(model, [0, 1], capture_input=True):
            assert all(len(m._forward_hooks) == 1 for m in mods)
            raise RuntimeError("boom")
    for m in mods + blocks:
        assert len(m._forward_hooks) == 0 and len(m._forward_pre_hooks) == 0


def test_bad_layers(loaded):
    model, _ = loaded("gpt2")
    with pytest.raises(IndexError, match="out of range"):
        with capture_pre_activations(model, [TINY_LAYERS]):
            pass
    assert all(len(m._forward_hooks) == 0 for m in models.pre_activation_modules(model))


def test_unknown_architecture_lists_supported():
    from transformers import BertConfig

    with pytest.raises(ValueError) as err:
        architectures.arch_spec(BertConfig())
    msg = str(err.value)
    assert "bert" in msg
    for name in ARCHS:
        assert name in msg
    with pytest.raises(ValueError, match="gpt_neox"):
        architectures.arch_spec(nn.Linear(2, 2))


def test_load_unknown_architecture_fails_before_weights(tmp_path):
    from transformers import BertConfig

    BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=16).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="supported"):
        models.load_model(tmp_path)


def test_load_missing_path(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(FileNotFoundError, match="no-such-model"):
        models.load_model(missing)
    with pytest.raises(FileNotFoundError, match="nope"):
        models.load_model("./nope")


def test_load_dtype_and_separate_tokenizer(tiny_hf_model, tmp_path):
    src = tiny_hf_model("qwen2")
    model, tok = models.load_model(src, dtype="bfloat16", tokenizer_path=src)
    assert next(model.parameters()).dtype == torch.bfloat16
    cfg = json.loads((src / "tokenizer_config.json").read_text())
    assert cfg["tokenizer_class"] in {"PreTrainedTokenizerFast", "TokenizersBackend"}
    assert tok("the cat")["input_ids"] == tok.convert_tokens_to_ids(["the", "cat"])


def test_load_with_device_map(tiny_hf_model):
    model, _ = models.load_model(tiny_hf_model("gpt_neox"), device_map="cpu")
    assert models.model_device(model).type == "cpu"
    with torch.no_grad(), capture_pre_activations(model, [0]) as cap:
        model(_ids())
    assert cap.pre_activation[0].shape == (2, 7, TINY_INTERMEDIATE)


# ------------------------------------------------------------------------------------------ nonlinearity facts


@pytest.mark.parametrize("name", sorted(architectures.NONLINEARITIES))
def test_nonlinearity_facts_hold_numerically(name):
    """Each recorded fact agrees with the torch nonlinearity transformers builds, on a dense grid."""
    from transformers.activations import ACT2FN

    rec = architectures.NONLINEARITIES[name]
    assert rec.name == name and architectures.nonlinearity_spec(name) is rec
    a = torch.cat([torch.linspace(-6.0, 6.0, 12001, dtype=torch.float64),
                   torch.tensor([1e-30, -1e-30, 1e-9, -1e-9], dtype=torch.float64)])
    y = ACT2FN[name](a)
    neg, pos = a < 0, a > 0
    assert rec.zero_at_zero == bool(ACT2FN[name](torch.zeros(1, dtype=torch.float64)).item() == 0)
    assert rec.zero_below_zero == bool((y[neg] == 0).all())
    assert rec.nonnegative == bool((y >= 0).all())
    assert rec.identity_above_zero == bool((y[pos] == a[pos]).all())
    assert rec.zero_above_zero == bool((y[pos] == 0).all())


def test_every_table_nonlinearity_has_a_record():
    assert {spec.activation for spec in architectures.ARCHITECTURES.values()} <= set(architectures.NONLINEARITIES)
    with pytest.raises(ValueError, match="known: silu"):
        architectures.nonlinearity_spec("tanh")


@pytest.mark.parametrize("arch", ["llama", "opt"])
def test_load_config_reads_the_architecture_without_weights(arch, tiny_hf_model, monkeypatch):
    import transformers

    def no_weights(*a, **k):
        raise AssertionError("load_config must not load weights")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_weights)
    load = {"path": str(tiny_hf_model(arch)), "revision": None, "dtype": "float32", "device_map": None,
            "trust_remote_code": False}
    assert architectures.arch_spec(models.load_config(**load)).name == arch
