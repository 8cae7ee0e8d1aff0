"""The one table of supported architectures, model loading, and the pre-activation capture hook.

Every architecture-specific fact the pipeline needs lives in :data:`ARCHITECTURES`: where the blocks
are, which module inside a block produces the MLP *pre-activation* (the input to the nonlinearity;
for SiLU-gated MLPs the gate projection), and which nonlinearity follows. Everything else (capture,
dumps) goes through :func:`pre_activation_modules`; interventions hook the nonlinearity module of
each block (:func:`activation_modules`), whose input is that pre-activation.

Next to the table, :data:`NONLINEARITIES` records what each nonlinearity is (``act(0) = 0``, zero for
``a < 0``, nonnegative, the identity for ``a > 0``, zero for ``a > 0``), one field per fact, and
:data:`IDENTITY_RULES` says which facts make each intervention operation (see
:mod:`negdiff.interventions`) the identity. Which operations change nothing on an architecture is
derived from these two tables (:func:`operation_is_identity`, :func:`identity_reason`,
:func:`identity_operations`), never special-cased per model: on a ReLU model (OPT) neg_zero, sign_flip
and pos_relu are the identity, so the pipeline leaves their conditions out
(:func:`negdiff.conditions.conditions_for`) and skips the perplexity-matched search, whose target
(the neg_zero WN perplexity) would equal the baseline (:func:`negdiff.selection.matched_control`).
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn


@dataclass(frozen=True)
class ArchSpec:
    name: str  # config.model_type
    layers: str  # dotted path (from the top-level model) to the ModuleList of blocks
    pre_activation: str  # dotted path inside a block to the module whose OUTPUT is the pre-activation
    activation: str  # the nonlinearity applied to that output: "silu" | "gelu" | "relu" | "gelu_new"
    gated: bool  # SiLU-gated MLP (llama family): act(gate_proj(x)) * up_proj(x)
    # dotted path inside a block to the nonlinearity module: a per-layer instance, called exactly once
    # per forward with exactly the pre-activation as its only input (interventions hook its output)
    activation_module: str = ""


def _llama_like(name: str) -> ArchSpec:
    return ArchSpec(name, "model.layers", "mlp.gate_proj", "silu", True, "mlp.act_fn")


ARCHITECTURES: dict[str, ArchSpec] = {
    "llama": _llama_like("llama"),
    "mistral": _llama_like("mistral"),
    "qwen2": _llama_like("qwen2"),
    "qwen3": _llama_like("qwen3"),
    "gpt_neox": ArchSpec("gpt_neox", "gpt_neox.layers", "mlp.dense_h_to_4h", "gelu", False, "mlp.act"),
    "opt": ArchSpec("opt", "model.decoder.layers", "fc1", "relu", False, "activation_fn"),
    "gpt2": ArchSpec("gpt2", "transformer.h", "mlp.c_fc", "gelu_new", False, "mlp.act"),
}


def arch_spec(model_or_config: Any) -> ArchSpec:
    """The :class:`ArchSpec` for a model, a config, a ``model_type`` string (or an ArchSpec itself)."""
    if isinstance(model_or_config, ArchSpec):
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

    name: str  # as in ArchSpec.activation
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

# operation (negdiff.interventions.OPERATIONS, same order; kept here so models.py needs no import of
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
    """The :class:`Nonlinearity` record of ``name`` (an ``ArchSpec.activation``)."""
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


def _get_path(root: nn.Module, dotted: str) -> Any:
    obj: Any = root
    for part in dotted.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise AttributeError(
                f"{type(root).__name__} has no submodule {dotted!r} (missing {part!r})"
            ) from None
    return obj


def block_modules(model: nn.Module) -> list[nn.Module]:
    """The transformer blocks, in order."""
    spec = arch_spec(model)
    return list(_get_path(model, spec.layers))


def pre_activation_modules(model: nn.Module) -> list[nn.Module]:
    """One module per layer whose forward output is that layer's MLP pre-activation [..., n_neurons].

    Forward hooks on these modules see (and may replace) the pre-activation; capture and intervention
    context managers both build on this list. The output is [B, T, n_neurons] except for OPT, whose
    MLP runs on tokens flattened to [B*T, n_neurons]; a per-neuron edit (mask over the last dim)
    works on either.
    """
    spec = arch_spec(model)
    return [_get_path(block, spec.pre_activation) for block in block_modules(model)]


def activation_modules(model: nn.Module) -> list[nn.Module]:
    """One module per layer: the MLP nonlinearity, whose (only) input is that layer's pre-activation.

    Its forward input equals the output of ``pre_activation_modules(model)[l]`` (same shape, also
    [B*T, n_neurons] for OPT) and its output is the post-activation, so a forward hook on it can
    replace the post-activation as a function of the pre-activation (see :mod:`negdiff.interventions`).
    Raises if the architecture has no ``activation_module`` entry or if two layers share one module
    instance (a hook would then fire for several layers).
    """
    spec = arch_spec(model)
    if not spec.activation_module:
        raise ValueError(f"architecture {spec.name!r} has no activation_module in ARCHITECTURES")
    mods = [_get_path(block, spec.activation_module) for block in block_modules(model)]
    if len({id(m) for m in mods}) != len(mods):
        raise ValueError(
            f"{spec.name}: the activation module {spec.activation_module!r} is shared between layers; "
            "per-layer hooks on it are impossible"
        )
    return mods


def _linear_shape(module: nn.Module) -> tuple[int, int]:
    """(in_features, out_features) of an nn.Linear or a GPT-2 style Conv1D."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    weight = getattr(module, "weight", None)
    if weight is not None and hasattr(module, "nf"):  # transformers.pytorch_utils.Conv1D: x @ W + b
        return int(weight.shape[0]), int(module.nf)
    if weight is not None and weight.dim() == 2:
        return int(weight.shape[1]), int(weight.shape[0])
    raise TypeError(f"cannot read the shape of pre-activation module {type(module).__name__}")


def n_neurons(model: nn.Module) -> int:
    """MLP width (the pre-activation dimension); equal across layers for every supported arch."""
    return _linear_shape(pre_activation_modules(model)[0])[1]


def d_model(model: nn.Module) -> int:
    """Width of the MLP input (the residual stream)."""
    return _linear_shape(pre_activation_modules(model)[0])[0]


def n_layers(model: nn.Module) -> int:
    return len(block_modules(model))


# --------------------------------------------------------------------------------------------------
# loading


def _looks_local(path: str) -> bool:
    """True for things that can only be a filesystem path, not a hub id ("name" or "org/name")."""
    if os.path.isabs(path) or path.startswith((".", "~")) or "\\" in path:
        return True
    return path.count("/") > 1


def _dtype_kw() -> str:
    """``dtype`` on transformers >= 4.56, ``torch_dtype`` before that."""
    import transformers

    major, minor = (int(x) for x in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def torch_dtype(name: str | torch.dtype) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    try:
        return _DTYPES[name]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; expected one of {sorted(_DTYPES)}") from None


def local_revision(folder: Path, revision: str | None) -> tuple[Path, str | None]:
    """A revision of a local model folder: the subfolder named after it (``folder/step1000``).

    ``None`` or ``"main"`` without such a subfolder means the folder itself. Hub revisions are left
    to ``from_pretrained``; a local folder has no git history, so checkpoints live in subfolders.
    """
    if revision is None:
        return folder, None
    sub = folder / revision
    if sub.is_dir():
        return sub, None
    if revision == "main" and (folder / "config.json").is_file():
        return folder, None
    available = sorted(d.name for d in folder.iterdir() if d.is_dir() and (d / "config.json").is_file())
    raise FileNotFoundError(
        f"revision {revision!r} not found in local model folder {folder}: expected a subfolder {sub} "
        f"with config.json; subfolders with a model: {available or 'none'}"
    )


def _resolve_source(
    path: str | os.PathLike, revision: str | None, trust_remote_code: bool, gguf_file: str | None
) -> tuple[str, Path, dict[str, Any]]:
    """(path for from_pretrained, the local folder, the common from_pretrained keywords)."""
    path_s = os.fspath(path)
    local = Path(path_s).expanduser()
    if local.exists():
        if not local.is_dir():
            raise NotADirectoryError(f"model path {path_s} is not a directory")
        if gguf_file:
            revision = None  # a GGUF file is one checkpoint
        else:
            local, revision = local_revision(local, revision)
        if not gguf_file and not (local / "config.json").is_file():
            raise FileNotFoundError(f"model folder {local} has no config.json: expected a save_pretrained() folder")
        path_s = str(local)
    elif _looks_local(path_s):
        raise FileNotFoundError(f"model directory {path_s} does not exist")

    common: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
    if gguf_file:
        gguf_architecture(Path(path_s) / gguf_file)  # a wrong file fails before de-quantising
        common["gguf_file"] = gguf_file
    return path_s, local, common


def _checked_config(path_s: str, common: dict[str, Any]):
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path_s, **common)
    arch_spec(config)  # unsupported architectures fail here
    return config


def load_config(
    path: str | os.PathLike,
    *,
    revision: str | None = None,
    trust_remote_code: bool = False,
    gguf_file: str | None = None,
    **_load_kw: Any,
):
    """The config :func:`load_model` would use (same path and revision resolution), without the weights.

    Takes :func:`load_model`'s keywords (the ones that do not matter for the config are ignored), so
    ``arch_spec(load_config(**load))`` gives a model's architecture cheaply."""
    path_s, _, common = _resolve_source(path, revision, trust_remote_code, gguf_file)
    return _checked_config(path_s, common)


def load_model(
    path: str | os.PathLike,
    *,
    revision: str | None = None,
    dtype: str | torch.dtype = "float32",
    device: str | torch.device = "cpu",
    device_map: Any = None,
    trust_remote_code: bool = False,
    tokenizer_path: str | os.PathLike | None = None,
    **kw: Any,
):
    """Load ``(model, tokenizer)`` from a local directory or hub id; the model is in eval mode.

    The architecture must be one of :data:`ARCHITECTURES` (checked from the config before the weights
    are read). Local directories holding ``*.safetensors`` are loaded from safetensors only. The
    tokenizer comes from ``tokenizer_path`` if given, else from ``path``; extra ``kw`` go to the model.
    """
    from transformers import AutoModelForCausalLM

    path_s, local, common = _resolve_source(path, revision, trust_remote_code, kw.pop("gguf_file", None))
    config = _checked_config(path_s, common)  # fails early on unsupported architectures

    load_kw: dict[str, Any] = dict(common)
    load_kw[_dtype_kw()] = torch_dtype(dtype)
    if device_map is not None:
        load_kw["device_map"] = device_map
    if local.is_dir() and any(local.glob("*.safetensors")):
        load_kw["use_safetensors"] = True
    load_kw.update(kw)
    model = AutoModelForCausalLM.from_pretrained(path_s, config=config, **load_kw)
    if device_map is None:
        model.to(device)
    model.eval()
    tokenizer = load_tokenizer(path_s if tokenizer_path is None else tokenizer_path, **common)
    return model, tokenizer


# GGUF ``general.architecture`` -> HF model_type, for the architectures of :data:`ARCHITECTURES` that
# transformers can de-quantise from GGUF
GGUF_ARCHITECTURES = {"llama": "llama", "mistral": "mistral", "qwen2": "qwen2", "qwen3": "qwen3", "gpt2": "gpt2"}


def gguf_architecture(path: str | os.PathLike) -> str:
    """The HF model_type of a GGUF file, read from its metadata alone (no tensor is loaded).

    Raises ValueError naming the file for an unreadable file or an architecture the pipeline does not
    support, so a wrong file fails before the de-quantisation."""
    try:
        import gguf
    except ImportError:
        raise ImportError("reading GGUF files needs the `gguf` package: pip install gguf accelerate") from None
    try:
        reader = gguf.GGUFReader(os.fspath(path))
        field_ = reader.fields["general.architecture"]
        arch = bytes(field_.parts[field_.data[0]]).decode("utf-8")
    except KeyError:
        raise ValueError(f"GGUF file {path} has no general.architecture metadata") from None
    except Exception as err:
        raise ValueError(f"cannot read GGUF file {path}: {type(err).__name__}: {err}") from None
    if arch not in GGUF_ARCHITECTURES:
        raise ValueError(
            f"GGUF file {path}: architecture {arch!r} is not supported; supported: {', '.join(sorted(GGUF_ARCHITECTURES))}"
        )
    return GGUF_ARCHITECTURES[arch]


def convert_gguf(gguf_path: str | os.PathLike, out_dir: str | os.PathLike, *, dtype: str = "float32") -> dict:
    """De-quantise a GGUF model once into an ordinary HF folder (safetensors, config, tokenizer).

    transformers de-quantises the weights to ``dtype`` while loading (``from_pretrained(folder,
    gguf_file=...)``); the float weights are then saved with ``save_pretrained``, so later jobs load
    them like any local model. The folder appears atomically and holds ``gguf.json`` (source file,
    size, architecture). Returns that record."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from negdiff.io import atomic_dir, write_json

    src = Path(gguf_path)
    if not src.is_file():
        raise FileNotFoundError(f"GGUF file {src} does not exist")
    model_type = gguf_architecture(src)
    folder, name = str(src.parent), src.name
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    arch_spec(config)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, **{_dtype_kw(): torch_dtype(dtype)})
    # the weights are plain floats now; drop the loader's GGUF quantizer so save_pretrained accepts them
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    record = {
        "gguf_file": str(src),
        "gguf_bytes": src.stat().st_size,
        "model_type": model_type,
        "dtype": dtype,
        "n_layers": n_layers(model),
        "n_neurons": n_neurons(model),
        "parameters": int(sum(p.numel() for p in model.parameters())),
    }
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(Path(tmp) / "gguf.json", record)
    return record


_GENERIC_TOKENIZER_CLASSES = {"PreTrainedTokenizerFast", "TokenizersBackend"}


def load_tokenizer(path: str | os.PathLike, **kw: Any):
    """Fast tokenizer from ``path``.

    A tokenizer saved as a plain ``PreTrainedTokenizerFast`` (our own trained tokenizers) is loaded as
    exactly that: ``AutoTokenizer`` in transformers 5 would otherwise pick the model-specific class from
    a ``config.json`` in the same directory (e.g. ``Qwen2Tokenizer``) and replace the saved
    pre-tokenizer with that model's own.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path_s = os.fspath(path)
    cfg_file = Path(path_s) / "tokenizer_config.json"
    if cfg_file.is_file():
        try:
            tok_class = json.loads(cfg_file.read_text(encoding="utf-8")).get("tokenizer_class")
        except (json.JSONDecodeError, AttributeError):
            tok_class = None
        if tok_class in _GENERIC_TOKENIZER_CLASSES and (Path(path_s) / "tokenizer.json").is_file():
            return PreTrainedTokenizerFast.from_pretrained(path_s, **kw)
    return AutoTokenizer.from_pretrained(path_s, use_fast=True, **kw)


def model_device(model: nn.Module) -> torch.device:
    """Device that inputs should go to (the embedding's device under a device_map)."""
    try:
        return model.get_input_embeddings().weight.device
    except (AttributeError, NotImplementedError):
        return next(model.parameters()).device


# --------------------------------------------------------------------------------------------------
# capture


@dataclass
class Capture:
    """Filled by :func:`capture_pre_activations`; each forward overwrites the entries."""

    layers: list[int]
    pre_activation: dict[int, torch.Tensor] = field(default_factory=dict)
    mlp_input: dict[int, torch.Tensor] = field(default_factory=dict)

    def clear(self) -> None:
        self.pre_activation.clear()
        self.mlp_input.clear()


def _check_layers(model: nn.Module, layers: list[int]) -> tuple[list[nn.Module], list[int]]:
    modules = pre_activation_modules(model)
    layers = [int(l) for l in layers]
    bad = [l for l in layers if not 0 <= l < len(modules)]
    if bad:
        raise IndexError(f"layers {bad} out of range: model has {len(modules)} layers")
    if len(set(layers)) != len(layers):
        raise ValueError(f"duplicate layers in {layers}")
    return modules, layers


@contextlib.contextmanager
def capture_pre_activations(
    model: nn.Module, layers: list[int] | None = None, *, capture_input: bool = False
) -> Iterator[Capture]:
    """Record each listed layer's pre-activation (and, if asked, the MLP input) on every forward.

    ``Capture.pre_activation[l]`` is the output of ``pre_activation_modules(model)[l]`` (detached, not
    copied), shaped [B, T, n_neurons]; ``Capture.mlp_input[l]`` its first positional input [B, T, d].
    ``layers=None`` means all layers. OPT applies its MLP to hidden states flattened to [B*T, d]; the
    captured tensors are reshaped back to [B, T, ...] (a view of the same values), using the shape of
    the block's input recorded by a forward pre-hook on the block.
    The hooks are removed on exit, also when the body raises.
    """
    modules = pre_activation_modules(model)
    if layers is None:
        layers = list(range(len(modules)))
    modules, layers = _check_layers(model, layers)
    blocks = block_modules(model)
    cap = Capture(layers=list(layers))
    handles = []
    lead_shape: dict[int, torch.Size] = {}

    def make_block_hook(layer: int):
        def block_hook(module, args, kwargs):
            hidden = args[0] if args else kwargs.get("hidden_states")
            if isinstance(hidden, torch.Tensor):
                lead_shape[layer] = hidden.shape[:-1]

        return block_hook

    def unflatten(layer: int, t: torch.Tensor) -> torch.Tensor:
        # OPT runs its MLP on hidden states flattened to [B*T, d]; report [B, T, ...] like the others
        lead = lead_shape.get(layer)
        if lead is not None and t.shape[:-1] != lead and t.shape[:-1].numel() == lead.numel():
            t = t.reshape(*lead, t.shape[-1])
        return t

    def make_hook(layer: int):
        def hook(module, args, output):
            cap.pre_activation[layer] = unflatten(layer, output.detach())
            if capture_input:
                cap.mlp_input[layer] = unflatten(layer, args[0].detach())

        return hook

    try:
        for layer in layers:
            handles.append(blocks[layer].register_forward_pre_hook(make_block_hook(layer), with_kwargs=True))
            handles.append(modules[layer].register_forward_hook(make_hook(layer)))
        yield cap
    finally:
        for h in handles:
            h.remove()
