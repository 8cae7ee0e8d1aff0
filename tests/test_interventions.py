from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch
import torch.nn.functional as F
from scipy import special

from conftest import ARCHS, TINY_INTERMEDIATE, TINY_LAYERS, TINY_VOCAB
from negdiff import architectures
from negdiff.capture import capture_pre_activations
from negdiff import interventions as I
from negdiff import models

ACT_CLASS = {  # class name of the nonlinearity module transformers builds for each table activation
    "silu": "SiLUActivation",
    "gelu": "GELUActivation",
    "gelu_new": "NewGELUActivation",
    "relu": "ReLU",
}




def _ids(batch=2, seq=7, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(4, TINY_VOCAB, (batch, seq), generator=g)


def _half_mask(seed=0, n=TINY_INTERMEDIATE):
    mask = np.random.default_rng(seed).permutation(n) < n // 2
    assert mask.any() and not mask.all()
    return mask


def _no_hooks(model):
    mods = models.activation_modules(model) + models.pre_activation_modules(model) + models.block_modules(model)
    return all(len(m._forward_hooks) == 0 and len(m._forward_pre_hooks) == 0 for m in mods)


# ------------------------------------------------------------------------------------------ module paths


@pytest.mark.parametrize("arch", ARCHS)
def test_activation_modules_are_per_layer_nonlinearities(arch, loaded):
    model = loaded(arch)
    spec = architectures.arch_spec(model)
    mods = models.activation_modules(model)
    blocks = models.block_modules(model)
    assert len(mods) == TINY_LAYERS
    assert len({id(m) for m in mods}) == TINY_LAYERS  # distinct instances: a hook touches one layer
    for block, mod in zip(blocks, mods):
        assert type(mod).__name__ == ACT_CLASS[spec.activation]
        assert any(mod is m for m in block.modules())
        assert not any(True for _ in mod.parameters())


@pytest.mark.parametrize("arch", ARCHS)
def test_activation_module_input_is_exactly_the_pre_activation(arch, loaded):
    model = loaded(arch)
    mods = models.activation_modules(model)
    seen: dict[int, list] = {l: [] for l in range(TINY_LAYERS)}
    handles = [
        m.register_forward_hook(lambda mod, args, out, l=l: seen[l].append((args, out.detach().clone())))
        for l, m in enumerate(mods)
    ]
    ids = _ids(batch=3, seq=9)
    try:
        with torch.no_grad(), capture_pre_activations(model) as cap:
            model(ids)
    finally:
        for h in handles:
            h.remove()
    assert _no_hooks(model)
    act = {"silu": F.silu, "gelu": F.gelu, "relu": F.relu,
           "gelu_new": lambda x: F.gelu(x, approximate="tanh")}[architectures.arch_spec(model).activation]
    for l in range(TINY_LAYERS):
        assert len(seen[l]) == 1  # called exactly once per forward
        args, out = seen[l][0]
        assert len(args) == 1
        a = args[0]
        pre = cap.pre_activation[l]
        assert a.shape[-1] == TINY_INTERMEDIATE
        assert torch.equal(a.reshape(pre.shape), pre)  # OPT: [B*T, N] -> [B, T, N]
        torch.testing.assert_close(out, act(a), atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------------------ operations


def _run_capturing(model, ids, layer=0, masks=None, operation="neg_zero"):
    """Input and (possibly intervened) output of the activation module of ``layer`` and the logits."""
    mod = models.activation_modules(model)[layer]
    rec = {}

    def capture(m, args, out):
        rec["a"] = args[0].detach().clone()
        rec["out"] = out.detach().clone()

    with torch.no_grad():
        if masks is None:
            h = mod.register_forward_hook(capture)
            try:
                logits = model(ids).logits
            finally:
                h.remove()
        else:
            with I.intervene(model, masks, operation):
                h = mod.register_forward_hook(capture)  # registered after ours: sees the new output
                try:
                    logits = model(ids).logits
                finally:
                    h.remove()
    return rec["a"], rec["out"], logits


@pytest.mark.parametrize("operation", I.OPERATIONS)
@pytest.mark.parametrize("arch", ARCHS)
def test_operation_changes_only_masked_neurons_in_its_region(arch, operation, loaded):
    model = loaded(arch)
    ids = _ids(batch=2, seq=11, seed=3)
    mask_np = _half_mask(seed=7)
    mask = torch.from_numpy(mask_np)
    a0, out0, _ = _run_capturing(model, ids)
    a1, out1, _ = _run_capturing(model, ids, masks={0: mask_np}, operation=operation)
    assert torch.equal(a0, a1)  # first layer: identical inputs
    a = a0
    assert (a[..., mask] < 0).any() and (a[..., mask] > 0).any()
    # unmasked neurons: bit-identical
    assert torch.equal(out1[..., ~mask], out0[..., ~mask])
    am, o0, o1 = a[..., mask], out0[..., mask], out1[..., mask]
    neg, pos = am < 0, am > 0
    if operation == "neg_zero":
        assert (o1[neg] == 0).all()
        assert torch.equal(o1[~neg], o0[~neg])
    elif operation == "full":
        assert (o1 == 0).all()
    elif operation == "pos_zero":
        assert (o1[pos] == 0).all()
        assert torch.equal(o1[~pos], o0[~pos])
    elif operation == "sign_flip":
        assert (o1 >= 0).all()
        assert torch.equal(o1, o0.abs())
    elif operation == "pos_relu":
        assert torch.equal(o1[pos], am[pos])
        assert torch.equal(o1[~pos], o0[~pos])
    # the operation is an actual change where the definition says so
    spec = architectures.arch_spec(model)
    changes = {
        "neg_zero": spec.activation != "relu",  # ReLU is already 0 for a < 0
        "full": True,
        "pos_zero": True,
        "sign_flip": spec.activation != "relu",
        "pos_relu": spec.activation != "relu",  # ReLU is already the identity for a > 0
    }[operation]
    assert (not torch.equal(o1, o0)) == changes


@pytest.mark.parametrize("arch", ARCHS)
def test_empty_or_all_false_mask_is_bit_identical(arch, loaded):
    model = loaded(arch)
    ids = _ids()
    with torch.no_grad():
        ref = model(ids).logits
        for operation in I.OPERATIONS:
            with I.intervene(model, {}, operation):
                assert torch.equal(model(ids).logits, ref)
            all_false = {l: np.zeros(TINY_INTERMEDIATE, bool) for l in range(TINY_LAYERS)}
            with I.intervene(model, all_false, operation):
                assert torch.equal(model(ids).logits, ref)
        assert torch.equal(model(ids).logits, ref)
    assert _no_hooks(model)


@pytest.mark.parametrize("arch", ARCHS)
def test_nonempty_mask_changes_logits(arch, loaded):
    model = loaded(arch)
    relu = architectures.arch_spec(model).activation == "relu"
    ids = _ids()
    masks = {l: _half_mask(seed=l) for l in range(TINY_LAYERS)}
    with torch.no_grad():
        ref = model(ids).logits
        for operation in I.OPERATIONS:
            with I.intervene(model, masks, operation):
                got = model(ids).logits
            if relu and operation in ("neg_zero", "sign_flip", "pos_relu"):
                assert torch.equal(got, ref)  # identities on ReLU
            else:
                assert not torch.equal(got, ref), operation
        # a single neuron of the last layer is enough
        one = np.zeros(TINY_INTERMEDIATE, bool)
        one[3] = True
        with I.intervene(model, {TINY_LAYERS - 1: torch.from_numpy(one)}, "full"):
            assert not torch.equal(model(ids).logits, ref)
        assert torch.equal(model(ids).logits, ref)


@pytest.mark.parametrize("arch", ARCHS)
def test_hooks_removed_after_context_and_exception(arch, loaded):
    model = loaded(arch)
    mods = models.activation_modules(model)
    masks = {1: _half_mask()}
    with I.intervene(model, masks, "neg_zero"):
        assert len(mods[1]._forward_hooks) == 1 and len(mods[0]._forward_hooks) == 0
    assert _no_hooks(model)
    with pytest.raises(RuntimeError, match="boom"):
        with I.intervene(model, {0: _half_mask(), 1: _half_mask(1)}, "full"):
            assert all(len(m._forward_hooks) == 1 for m in mods)
            raise RuntimeError("boom")
    assert _no_hooks(model)


def test_intervention_is_differentiable(loaded):
    model = loaded("llama")
    ids = _ids(batch=1, seq=5)
    with I.intervene(model, {0: _half_mask()}, "neg_zero"):
        loss = model(ids, labels=ids).loss
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    model.zero_grad(set_to_none=True)


def test_layers_scoped_independently(loaded):
    """An intervention on layer 1 leaves layer 0's activation output untouched."""
    model = loaded("qwen2")
    ids = _ids()
    _, out0, _ = _run_capturing(model, ids, layer=0)
    _, out1, _ = _run_capturing(model, ids, layer=0, masks={1: _half_mask()}, operation="full")
    assert torch.equal(out0, out1)


# ------------------------------------------------------------------------------------------ apply_operation


def _np_act(name, x):
    if name == "silu":
        return x / (1.0 + np.exp(-x))
    if name == "gelu":
        return 0.5 * x * (1.0 + special.erf(x / math.sqrt(2.0)))
    if name == "gelu_new":
        return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    if name == "relu":
        return np.maximum(x, 0.0)
    raise KeyError(name)


def _torch_act(name, x):
    from transformers.activations import ACT2FN

    return ACT2FN[name](x)


def _np_reference(name, operation, a):
    act = _np_act(name, a)
    if operation == "neg_zero":
        return _np_act(name, np.maximum(a, 0.0))
    if operation == "full":
        return np.zeros_like(a)
    if operation == "pos_zero":
        return _np_act(name, np.minimum(a, 0.0))
    if operation == "sign_flip":
        return np.where(act < 0, np.abs(act), act)
    if operation == "pos_relu":
        return np.where(a > 0, a, act)
    raise KeyError(operation)


@pytest.mark.parametrize("operation", I.OPERATIONS)
@pytest.mark.parametrize("name", ["silu", "gelu", "gelu_new", "relu"])
def test_apply_operation_matches_float64_reference(name, operation):
    rng = np.random.default_rng(0)
    a_np = np.concatenate([rng.normal(0, 3, size=(6, 40)), np.array([[0.0, -0.0, 1e-9, -1e-9, 8.0, -8.0,
                                                                      0.5, -0.5] * 5])]).astype(np.float64)
    mask_np = rng.random(a_np.shape[-1]) < 0.6
    a = torch.from_numpy(a_np)
    out = _torch_act(name, a)
    np.testing.assert_allclose(out.numpy(), _np_act(name, a_np), rtol=1e-12, atol=1e-15)
    got = I.apply_operation(a, out, operation, torch.from_numpy(mask_np))
    assert got.shape == a.shape and got.dtype == torch.float64
    ref = np.where(mask_np, _np_reference(name, operation, a_np), _np_act(name, a_np))
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=1e-15)
    # unmasked elements come from `out` bit for bit
    assert torch.equal(got[..., ~torch.from_numpy(mask_np)], out[..., ~torch.from_numpy(mask_np)])


@pytest.mark.parametrize("operation", I.OPERATIONS)
def test_apply_operation_float32_bit_identity_outside_region(operation):
    a = torch.randn(4, 5, 16, generator=torch.Generator().manual_seed(0))
    out = F.silu(a)
    mask = torch.arange(16) % 3 == 0
    got = I.apply_operation(a, out, operation, mask)
    assert torch.equal(got[..., ~mask], out[..., ~mask])
    region = {"neg_zero": a < 0, "full": torch.ones_like(a, dtype=torch.bool), "pos_zero": a > 0,
              "sign_flip": out < 0, "pos_relu": a > 0}[operation] & mask
    assert torch.equal(got[~region], out[~region])
    assert not torch.equal(got[region], out[region])
    assert not torch.equal(got, out) and torch.equal(out, F.silu(a))  # inputs not modified


def test_apply_operation_full_shape_mask_and_checks():
    a = torch.tensor([[-1.0, 2.0], [3.0, -4.0]])
    out = F.relu(a)
    mask = torch.tensor([[True, False], [False, True]])
    assert torch.equal(I.apply_operation(a, out, "pos_relu", mask), out)
    assert torch.equal(I.apply_operation(a, out, "full", torch.tensor([True, False])),
                       torch.tensor([[0.0, 2.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="neg_zero"):
        I.apply_operation(a, out, "zero", mask)
    with pytest.raises(TypeError, match="bool"):
        I.apply_operation(a, out, "full", torch.tensor([1, 0]))
    with pytest.raises(ValueError, match="shape"):
        I.apply_operation(a, out[:1], "full", torch.tensor([True, False]))


# ------------------------------------------------------------------------------------------ validation


def test_bad_operation_lists_operations(loaded):
    model = loaded("gpt2")
    with pytest.raises(ValueError) as err:
        with I.intervene(model, {0: _half_mask()}, "negzero"):
            pass
    msg = str(err.value)
    assert "negzero" in msg and all(op in msg for op in I.OPERATIONS)
    assert _no_hooks(model)


def test_bad_mask_shape_names_layer_and_sizes(loaded):
    model = loaded("opt")
    with pytest.raises(ValueError) as err:
        with I.intervene(model, {0: _half_mask(), 1: np.zeros(TINY_INTERMEDIATE + 3, bool)}, "full"):
            pass
    msg = str(err.value)
    assert "layer 1" in msg and str(TINY_INTERMEDIATE) in msg and str(TINY_INTERMEDIATE + 3) in msg
    assert _no_hooks(model)  # validation happens before any hook is registered
    with pytest.raises(ValueError, match="layer 0"):
        with I.intervene(model, {0: np.zeros((2, TINY_INTERMEDIATE), bool)}, "full"):
            pass
    with pytest.raises(TypeError, match="boolean"):
        with I.intervene(model, {0: np.zeros(TINY_INTERMEDIATE, np.int64)}, "full"):
            pass
    with pytest.raises(TypeError, match="boolean"):
        with I.intervene(model, {0: torch.zeros(TINY_INTERMEDIATE)}, "full"):
            pass
    with pytest.raises(IndexError, match="out of range"):
        with I.intervene(model, {TINY_LAYERS: _half_mask()}, "full"):
            pass
    assert _no_hooks(model)


# ------------------------------------------------------------------------------------------ masks


def test_masks_from_selection():
    sel = pl.DataFrame({"layer": [0, 0, 2, 2, 2], "neuron": [1, 5, 0, 9, 5]},
                       schema={"layer": pl.Int32, "neuron": pl.Int32})
    masks = I.masks_from_selection(sel, n_layers=3, n_neurons=10)
    assert set(masks) == {0, 2}
    assert masks[0].dtype == bool and masks[0].shape == (10,)
    assert np.flatnonzero(masks[0]).tolist() == [1, 5]
    assert np.flatnonzero(masks[2]).tolist() == [0, 5, 9]
    scoped = I.masks_from_selection(sel, 3, 10, layers=[1, 2])
    assert set(scoped) == {2} and np.array_equal(scoped[2], masks[2])
    assert I.masks_from_selection(sel, 3, 10, layers=[]) == {}
    assert I.masks_from_selection(sel.head(0), 3, 10) == {}
    with pytest.raises(IndexError, match="neuron"):
        I.masks_from_selection(sel, 3, 9)
    with pytest.raises(IndexError, match="layer"):
        I.masks_from_selection(sel, 2, 10)
    with pytest.raises(IndexError, match="out of range"):
        I.masks_from_selection(sel, 3, 10, layers=[5])
    two_sets = sel.with_columns(pl.Series("set", ["a", "a", "b", "b", "b"]))
    with pytest.raises(ValueError, match="filter"):
        I.masks_from_selection(two_sets, 3, 10)
    with pytest.raises(ValueError, match="neuron"):
        I.masks_from_selection(sel.drop("neuron"), 3, 10)


def test_masks_from_selection_drive_intervene(loaded):
    model = loaded("gpt_neox")
    sel = pl.DataFrame({"layer": [1, 1], "neuron": [0, 7]})
    masks = I.masks_from_selection(sel, models.n_layers(model), models.n_neurons(model))
    ids = _ids()
    with torch.no_grad():
        ref = model(ids).logits
        with I.intervene(model, masks, "full"):
            got = model(ids).logits
    assert not torch.equal(ref, got)
    assert _no_hooks(model)


# ------------------------------------------------------------------------------------------ identity operations


def _grid(dtype):
    tiny = [0.0, -0.0, 1e-30, -1e-30, 1e-9, -1e-9]
    return torch.cat([torch.linspace(-6.0, 6.0, 12001, dtype=dtype), torch.tensor(tiny, dtype=dtype)])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("arch", sorted(architectures.ARCHITECTURES))
def test_identity_operations_agree_with_a_numerical_check(arch, dtype):
    """For every (operation, nonlinearity) of the table: the derived rule says "identity" exactly when the
    real operation, applied to every neuron on a dense grid of a in [-6, 6], leaves act(a) unchanged."""
    act = architectures.ARCHITECTURES[arch].activation
    a = _grid(dtype)
    out = _torch_act(act, a)
    everywhere = torch.ones(a.shape[-1], dtype=torch.bool)
    for operation in I.OPERATIONS:
        unchanged = torch.equal(I.apply_operation(a, out, operation, everywhere), out)
        assert architectures.operation_is_identity(operation, act) == unchanged, (arch, act, operation)
        assert (architectures.identity_reason(operation, act) is not None) == unchanged
        assert (operation in architectures.identity_operations(arch)) == unchanged


def test_identity_rules_name_every_operation_and_relu_reasons():
    assert tuple(architectures.IDENTITY_RULES) == tuple(I.OPERATIONS)
    assert architectures.identity_operations("opt") == ("neg_zero", "sign_flip", "pos_relu")
    assert all(architectures.identity_operations(a) == () for a in architectures.ARCHITECTURES if a != "opt")
    assert architectures.identity_reason("neg_zero", "relu") == "relu(a) = 0 for a < 0, so neg_zero changes nothing"
    assert architectures.identity_reason("sign_flip", "relu") == "relu(a) >= 0 for every a, so sign_flip changes nothing"
    assert architectures.identity_reason("pos_relu", "relu") == "relu(a) = a for a > 0, so pos_relu changes nothing"
    assert architectures.identity_reason("full", "relu") is None and architectures.identity_reason("neg_zero", "silu") is None
    with pytest.raises(ValueError, match="expected one of neg_zero"):
        architectures.operation_is_identity("halve", "relu")
    with pytest.raises(ValueError, match="unknown nonlinearity 'tanh'"):
        architectures.operation_is_identity("neg_zero", "tanh")


def test_conditions_leave_out_exactly_the_identity_operations():
    from negdiff import conditions as C

    sel = {"percents": [1, 2], "main_percent": 1, "random_seeds": 2, "ppl_matched": {"enabled": True}}
    ev = {"layer_group_size": 1, "operations": list(I.OPERATIONS), "layerwise_controls": True}
    for cohort in (True, False):
        every = C.conditions_for(sel, ev, 3, cohort=cohort)
        # SiLU (llama): nothing is the identity, the conditions are the same as before
        assert C.conditions_for(sel, ev, 3, cohort=cohort, identity_operations=architectures.identity_operations("llama")) == every
        opt = C.conditions_for(sel, ev, 3, cohort=cohort, identity_operations=architectures.identity_operations("opt"))
        assert opt == [c for c in every if c.intervention not in ("neg_zero", "sign_flip", "pos_relu")]
        # a {operation: reason} mapping works the same
        reasons = {op: architectures.identity_reason(op, "relu") for op in architectures.identity_operations("opt")}
        assert C.conditions_for(sel, ev, 3, cohort=cohort, identity_operations=reasons) == opt
    final = C.final_conditions(sel, ev, 3, identity_operations=architectures.identity_operations("opt"))
    assert [c.name for c in final] == ["baseline", "full|wn@1|all", "pos_zero|wn@1|all"]
    assert {c.intervention for c in C.final_conditions(sel, ev, 3)} == {"none", *I.OPERATIONS}
    assert C.checkpoint_conditions(sel, ev, 3, identity_operations=("neg_zero",)) == [C.BASELINE]
