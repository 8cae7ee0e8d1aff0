"""The one architecture record: the schema, the GGUF table, the plot labels and every tiny config derive
from negdiff.architectures.ARCHITECTURES."""

from __future__ import annotations

import pytest
import torch
import yaml
from conftest import ARCHS

from negdiff import architectures as A
from negdiff import models
from negdiff.hooks import hook_module, hook_name


def _schema():
    from pathlib import Path

    return yaml.safe_load((Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml").read_text())


def _find(node, key):
    if isinstance(node, dict):
        if key in node and isinstance(node[key], dict) and "enum" in node[key]:
            return node[key]["enum"]
        for v in node.values():
            found = _find(v, key)
            if found is not None:
                return found
    return None


def test_schema_architectures_are_the_records():
    assert _find(_schema(), "architecture") == list(A.ARCHITECTURES)
    assert ARCHS == list(A.ARCHITECTURES)  # the tests' parametrisation covers every record


def test_derived_tables_follow_the_records():
    assert A.GGUF_ARCHITECTURES == {r.gguf: r.name for r in A.ARCHITECTURES.values() if r.gguf}
    assert A.ACTIVATION_LABELS == {r.name: r.label for r in A.ARCHITECTURES.values()}
    assert set(A.GGUF_ARCHITECTURES.values()) <= set(A.ARCHITECTURES)
    for rec in A.ARCHITECTURES.values():  # the label names the record's nonlinearity (gelu_new: GELU)
        assert rec.label.lower() == rec.activation.split("_")[0], rec
    assert A.TRAINABLE == ("llama", "gpt_neox", "opt")
    for name, rec in A.ARCHITECTURES.items():
        assert rec.name == name and rec.activation in A.NONLINEARITIES
        assert set(rec.sizes) == {"hidden_size", "num_layers", "num_heads", "intermediate_size", "context"}


@pytest.mark.parametrize("arch", list(A.ARCHITECTURES))
def test_every_record_builds_a_tiny_model_whose_hook_points_resolve(arch):
    import transformers

    cfg = A.tiny_config(arch, vocab_size=64, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                        context=16)
    assert cfg.model_type == arch and type(cfg).__name__ == A.ARCHITECTURES[arch].config_class
    torch.manual_seed(0)
    model = getattr(transformers, A.ARCHITECTURES[arch].model_class)(cfg).eval()
    assert models.n_layers(model) == 2 and models.n_neurons(model) == 32 and models.d_model(model) == 16
    for layer in range(2):
        for point in ("", "mlp.hook_pre", "mlp.hook_post"):
            hook_module(model, hook_name(layer, point))


def test_extra_keywords_win_over_the_sizes():
    cfg = A.tiny_config("llama", vocab_size=64, hidden_size=16, num_layers=2, num_heads=4, intermediate_size=32,
                        context=16, num_key_value_heads=2)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads) == (4, 2)
    with pytest.raises(ValueError, match="unsupported architecture 'bert'"):
        A.tiny_config("bert", vocab_size=64, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
                      context=16)
