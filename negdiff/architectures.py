"""The one record per supported architecture, and the facts about each nonlinearity.

Every architecture-specific fact the pipeline needs lives in one :class:`Architecture` entry of
:data:`ARCHITECTURES`: where the blocks are, which module inside a block produces the MLP
*pre-activation* (the input to the nonlinearity; for SiLU-gated MLPs the gate projection), which
nonlinearity follows and which module applies it, the name GGUF files give it, the label figures
print, and how to build a tiny config of it (:func:`tiny_config`, used by training, the tests and the
benchmarks). Every other table is derived from these records: :data:`GGUF_ARCHITECTURES`,
:data:`ACTIVATION_LABELS`, :data:`TRAINABLE`, the hook points of :mod:`negdiff.hooks`; the schema's
``architecture`` enum is tied to them by a test. Adding an architecture is one entry here.

Next to the records, :data:`NONLINEARITIES` records what each nonlinearity is (``act(0) = 0``, zero
for ``a < 0``, nonnegative, the identity for ``a > 0``, zero for ``a > 0``), one field per fact, and
:data:`IDENTITY_RULES` says which facts make each intervention operation (see
:mod:`negdiff.interventions`) the identity. Which operations change nothing on an architecture is
derived from these two tables (:func:`operation_is_identity`, :func:`identity_reason`,
:func:`identity_operations`), never special-cased per model: on a ReLU model (OPT) neg_zero, sign_flip
and pos_relu are the identity, so the pipeline leaves their conditions out
(:func:`negdiff.conditions.conditions_for`) and skips the perplexity-matched search, whose target
(the neg_zero WN perplexity) would equal the baseline (:func:`negdiff.selection.matched_control`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ACTIVATION_LABELS",
    "ARCHITECTURES",
    "GGUF_ARCHITECTURES",
    "IDENTITY_RULES",
    "NONLINEARITIES",
    "TRAINABLE",
    "Architecture",
    "Nonlinearity",
    "arch_spec",
    "identity_operations",
    "identity_reason",
    "nonlinearity_spec",
    "operation_is_identity",
    "tiny_config",
]


@dataclass(frozen=True)
class Architecture:
    """Everything the pipeline knows about one architecture (``config.model_type``)."""

    name: str  # config.model_type
    layers: str  # dotted path (from the top-level model) to the ModuleList of blocks
    pre_activation: str  # dotted path inside a block to the module whose OUTPUT is the pre-activation
    activation: str  # the nonlinearity applied to that output: a key of NONLINEARITIES
    gated: bool  # SiLU-gated MLP (llama family): act(gate_proj(x)) * up_proj(x)
    # dotted path inside a block to the nonlinearity module: a per-layer instance, called exactly once
    # per forward with exactly the pre-activation as its only input (interventions hook its output)
    activation_module: str
    label: str  # the nonlinearity as figures name it
    config_class: str  # the transformers config class
    model_class: str  # the transformers causal-LM class
    # the project's generic sizes -> the config's keyword(s) for each
    sizes: Mapping[str, tuple[str, ...]]
    gguf: str | None = None  # GGUF ``general.architecture`` transformers can de-quantise, if any
    # keywords a from-scratch training config adds (training.make_config); None: not trained here
    training: Mapping[str, Any] | None = field(default=None)


_DECODER_SIZES = {
    "hidden_size": ("hidden_size",),
    "num_layers": ("num_hidden_layers",),
    "num_heads": ("num_attention_heads",),
    "intermediate_size": ("intermediate_size",),
    "context": ("max_position_embeddings",),
}
_GATED_SIZES = {**_DECODER_SIZES, "num_heads": ("num_attention_heads", "num_key_value_heads")}


def _llama_like(name: str, config_class: str, model_class: str) -> Architecture:
    return Architecture(name, "model.layers", "mlp.gate_proj", "silu", True, "mlp.act_fn", "SiLU",
                        config_class, model_class, _GATED_SIZES, gguf=name)


_LLAMA_TRAINING = {"hidden_act": "silu", "initializer_range": 0.02, "rms_norm_eps": 1e-6, "attention_bias": False,
                   "mlp_bias": False, "attention_dropout": 0.0}
_NEOX_TRAINING = {"hidden_act": "gelu", "use_parallel_residual": True, "initializer_range": 0.02,
                  "attention_dropout": 0.0, "hidden_dropout": 0.0, "attention_bias": True,
                  "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25}}
_OPT_TRAINING = {"do_layer_norm_before": True, "activation_function": "relu", "enable_bias": True, "dropout": 0.0,
                 "attention_dropout": 0.0, "layerdrop": 0.0, "init_std": 0.02}

ARCHITECTURES: dict[str, Architecture] = {
    "llama": Architecture("llama", "model.layers", "mlp.gate_proj", "silu", True, "mlp.act_fn", "SiLU",
                          "LlamaConfig", "LlamaForCausalLM", _GATED_SIZES, gguf="llama", training=_LLAMA_TRAINING),
    "mistral": _llama_like("mistral", "MistralConfig", "MistralForCausalLM"),
    "qwen2": _llama_like("qwen2", "Qwen2Config", "Qwen2ForCausalLM"),
    "qwen3": _llama_like("qwen3", "Qwen3Config", "Qwen3ForCausalLM"),
    "gpt_neox": Architecture("gpt_neox", "gpt_neox.layers", "mlp.dense_h_to_4h", "gelu", False, "mlp.act", "GELU",
                             "GPTNeoXConfig", "GPTNeoXForCausalLM", _DECODER_SIZES, training=_NEOX_TRAINING),
    "opt": Architecture("opt", "model.decoder.layers", "fc1", "relu", False, "activation_fn", "ReLU",
                        "OPTConfig", "OPTForCausalLM",
                        {**_DECODER_SIZES, "hidden_size": ("hidden_size", "word_embed_proj_dim"),
                         "intermediate_size": ("ffn_dim",)}, training=_OPT_TRAINING),
    "gpt2": Architecture("gpt2", "transformer.h", "mlp.c_fc", "gelu_new", False, "mlp.act", "GELU",
                         "GPT2Config", "GPT2LMHeadModel",
                         {"hidden_size": ("n_embd",), "num_layers": ("n_layer",), "num_heads": ("n_head",),
                          "intermediate_size": ("n_inner",), "context": ("n_positions",)}, gguf="gpt2"),
}

# derived tables
GGUF_ARCHITECTURES: dict[str, str] = {a.gguf: a.name for a in ARCHITECTURES.values() if a.gguf}
ACTIVATION_LABELS: dict[str, str] = {a.name: a.label for a in ARCHITECTURES.values()}
TRAINABLE: tuple[str, ...] = tuple(a.name for a in ARCHITECTURES.values() if a.training is not None)


def tiny_config(architecture: str, *, vocab_size: int, hidden_size: int, num_layers: int, num_heads: int,
                intermediate_size: int, context: int, **extra: Any):
    """A transformers config of ``architecture`` with the project's generic sizes, each mapped to the
    config's own keyword(s) by the record (:attr:`Architecture.sizes`); ``extra`` keywords are passed
    unchanged and win over the sizes."""
    import transformers

    spec = arch_spec(architecture)
    generic = {"hidden_size": hidden_size, "num_layers": num_layers, "num_heads": num_heads,
               "intermediate_size": intermediate_size, "context": context}
    kw: dict[str, Any] = {"vocab_size": int(vocab_size)}
    for size, value in generic.items():
        for key in spec.sizes[size]:
            kw[key] = int(value)
    kw.update(extra)
    return getattr(transformers, spec.config_class)(**kw)


def arch_spec(model_or_config: Any) -> Architecture:
    """The :class:`Architecture` record of a model, a config, a ``model_type`` string (or a record itself)."""
    if isinstance(model_or_config, Architecture):
        return model_or_config
    if isinstance(model_or_config, str):
        model_type = model_or_config
    else:
        config = getattr(model_or_config, "config", model_or_config)
        model_type = getattr(config, "model_type", None)
    spec = ARCHITECTURES.get(model_type) if model_type is not None else None
    if spec is None:
        raise ValueError(
            f"unsupported architecture {model_type!r}; supported: {', '.join(sorted(ARCHITECTURES))}"
        )
    return spec


# --------------------------------------------------------------------------------------------------
# what each nonlinearity is, and the operations that are therefore the identity on it


@dataclass(frozen=True)
class Nonlinearity:
    """Facts about one nonlinearity ``act``, each a statement about every real ``a`` (tests check them
    numerically against the torch implementation)."""

    name: str  # as in Architecture.activation
    zero_at_zero: bool  # act(0) = 0
    zero_below_zero: bool  # act(a) = 0 for every a < 0
    nonnegative: bool  # act(a) >= 0 for every a
    identity_above_zero: bool  # act(a) = a for every a > 0
    zero_above_zero: bool  # act(a) = 0 for every a > 0


NONLINEARITIES: dict[str, Nonlinearity] = {
    "silu": Nonlinearity("silu", zero_at_zero=True, zero_below_zero=False, nonnegative=False,
                         identity_above_zero=False, zero_above_zero=False),
    "gelu": Nonlinearity("gelu", zero_at_zero=True, zero_below_zero=False, nonnegative=False,
                         identity_above_zero=False, zero_above_zero=False),
    "gelu_new": Nonlinearity("gelu_new", zero_at_zero=True, zero_below_zero=False, nonnegative=False,
                             identity_above_zero=False, zero_above_zero=False),
    "relu": Nonlinearity("relu", zero_at_zero=True, zero_below_zero=True, nonnegative=True,
                         identity_above_zero=True, zero_above_zero=False),
}

# operation (negdiff.interventions.OPERATIONS, same order; kept here so this module needs no import of
# interventions) -> the Nonlinearity facts that together make it the identity (output == act(a) for
# every a): neg_zero outputs 0 where a < 0, full 0 everywhere, pos_zero 0 where a > 0, sign_flip
# -act(a) where act(a) < 0, pos_relu a where a > 0
IDENTITY_RULES: dict[str, tuple[str, ...]] = {
    "neg_zero": ("zero_below_zero",),
    "full": ("zero_below_zero", "zero_at_zero", "zero_above_zero"),
    "pos_zero": ("zero_above_zero",),
    "sign_flip": ("nonnegative",),
    "pos_relu": ("identity_above_zero",),
}

_FACT_TEXT = {
    "zero_at_zero": "{act}(0) = 0",
    "zero_below_zero": "{act}(a) = 0 for a < 0",
    "nonnegative": "{act}(a) >= 0 for every a",
    "identity_above_zero": "{act}(a) = a for a > 0",
    "zero_above_zero": "{act}(a) = 0 for a > 0",
}


def nonlinearity_spec(name: str) -> Nonlinearity:
    """The :class:`Nonlinearity` record of ``name`` (an ``Architecture.activation``)."""
    try:
        return NONLINEARITIES[name]
    except KeyError:
        raise ValueError(f"unknown nonlinearity {name!r}; known: {', '.join(NONLINEARITIES)}") from None


def _rule(operation: str) -> tuple[str, ...]:
    try:
        return IDENTITY_RULES[operation]
    except KeyError:
        raise ValueError(f"unknown operation {operation!r}; expected one of {', '.join(IDENTITY_RULES)}") from None


def operation_is_identity(operation: str, nonlinearity: str) -> bool:
    """Whether ``operation`` leaves every output ``act(a)`` unchanged, derived from :data:`IDENTITY_RULES`."""
    facts = _rule(operation)
    spec = nonlinearity_spec(nonlinearity)
    return all(getattr(spec, fact) for fact in facts)


def identity_reason(operation: str, nonlinearity: str) -> str | None:
    """Why ``operation`` is the identity on ``nonlinearity``, as a sentence
    (``"relu(a) = 0 for a < 0, so neg_zero changes nothing"``); None where it is not."""
    if not operation_is_identity(operation, nonlinearity):
        return None
    facts = " and ".join(_FACT_TEXT[f].format(act=nonlinearity) for f in _rule(operation))
    return f"{facts}, so {operation} changes nothing"


def identity_operations(architecture: Any) -> tuple[str, ...]:
    """The operations that are the identity on an architecture (anything :func:`arch_spec` takes:
    a ``model_type`` name, a config or a model), in :data:`IDENTITY_RULES` order."""
    act = arch_spec(architecture).activation
    return tuple(op for op in IDENTITY_RULES if operation_is_identity(op, act))


