"""The one hook mechanism (negdiff.hooks): named points on every architecture, hooks always removed,
replaced forwards restored, and running a model only up to a point."""

from __future__ import annotations

import pytest
import torch
from conftest import ARCHS, TINY_LAYERS, TINY_VOCAB

from negdiff import models
from negdiff.capture import capture_pre_activations
from negdiff.hooks import HOOK_POINTS, active_hooks, hook_module, hook_name, hooks, run_until
from negdiff.interventions import intervene


def _ids(batch=2, seq=7):
    return torch.randint(0, TINY_VOCAB, (batch, seq), generator=torch.Generator().manual_seed(0))


def _hook_counts(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.mark.parametrize("arch", ARCHS)
def test_names_resolve_to_the_architecture_modules(arch, loaded):
    model = loaded(arch)
    for layer in range(TINY_LAYERS):
        assert hook_module(model, hook_name(layer)) is models.block_modules(model)[layer]
        assert hook_module(model, hook_name(layer, "mlp.hook_pre")) is models.pre_activation_modules(model)[layer]
        assert hook_module(model, hook_name(layer, "mlp.hook_post")) is models.activation_modules(model)[layer]
    assert hook_name(3, "mlp.hook_pre") == "blocks.3.mlp.hook_pre"


def test_unknown_points_and_layers_are_named(loaded):
    model = loaded("llama")
    with pytest.raises(ValueError, match="blocks.0.attn"):
        hook_module(model, "blocks.0.attn")
    with pytest.raises(IndexError, match=f"blocks.{TINY_LAYERS}.mlp.hook_pre"):
        hook_module(model, hook_name(TINY_LAYERS, "mlp.hook_pre"))
    with pytest.raises(ValueError, match="unknown hook point"):
        hook_name(0, "mlp.nope")
    with pytest.raises(ValueError, match="unknown kind"):
        with hooks(model, [(hook_name(0), "sideways", lambda *a: None)]):
            pass
    assert _hook_counts(model) == 0 and active_hooks(model) == []


@pytest.mark.parametrize("arch", ["llama", "opt"])
def test_hooks_are_removed_when_the_body_raises(arch, loaded):
    model = loaded(arch)
    base = _hook_counts(model)
    seen = []
    with pytest.raises(RuntimeError, match="boom"):
        with hooks(model, [(hook_name(0, "mlp.hook_pre"), "output", lambda m, a, o: seen.append(o.shape)),
                           (hook_name(1), "input", lambda m, a, k: None)]):
            assert [k for _, k in active_hooks(model)] == ["output", "input"]
            assert _hook_counts(model) == base + 2
            with torch.no_grad():
                model(_ids())
            raise RuntimeError("boom")
    assert seen and _hook_counts(model) == base and active_hooks(model) == []


def test_replace_restores_the_forward_and_nests(loaded):
    model = loaded("llama")
    block = models.block_modules(model)[0]
    assert "forward" not in block.__dict__
    with torch.no_grad():
        ref = model(_ids()).logits
        with hooks(model, [(hook_name(0), "output", lambda m, a, o: None)]):
            with hooks(model, [(hook_name(0), "replace", lambda *a, **k: (_ for _ in ()).throw(KeyError("stub")))]):
                assert active_hooks(model) == [("blocks.0", "output"), ("blocks.0", "replace")]
                with pytest.raises(KeyError):
                    model(_ids())
            assert active_hooks(model) == [("blocks.0", "output")]
        assert "forward" not in block.__dict__
        assert torch.equal(model(_ids()).logits, ref)


@pytest.mark.parametrize("arch", ARCHS)
def test_run_until_stops_after_the_point(arch, loaded):
    model = loaded(arch)
    ran = []
    attach = [(hook_name(l, "mlp.hook_pre"), "output", lambda m, a, o, l=l: ran.append(l)) for l in range(TINY_LAYERS)]
    with torch.no_grad(), hooks(model, attach):
        run_until(model, hook_name(0, "mlp.hook_pre"), input_ids=_ids(), use_cache=False)
    assert ran == [0]
    assert active_hooks(model) == [] and _hook_counts(model) == 0


def test_capture_and_interventions_attach_named_hooks(loaded):
    import numpy as np

    model = loaded("gpt_neox")
    mask = {1: np.arange(models.n_neurons(model)) < 3}
    with capture_pre_activations(model, [0]), intervene(model, mask, "neg_zero"):
        assert active_hooks(model) == [("blocks.0", "input"), ("blocks.0.mlp.hook_pre", "output"),
                                       ("blocks.1.mlp.hook_post", "output")]
    assert active_hooks(model) == []
    assert set(HOOK_POINTS) == {"", "mlp.hook_pre", "mlp.hook_post"}
