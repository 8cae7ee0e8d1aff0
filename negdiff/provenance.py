"""Provenance of a model job: which model, software, device and input files produced its outputs.

:func:`job_provenance` returns the record one model job (dump, neuron selection, pair and text
evaluation) writes beside its outputs (``results/provenance/{model}/...json``): the model as configured
and as resolved (the hub commit, or the sha256 of a local folder's weight files, and for a GGUF model the
de-quantised file's record with its package version and sha256), the versions of torch, transformers,
datasets, lm_eval (``None`` when not installed) and related packages, the device names, the weights'
dtype, the attention implementation, the prefix token, and the sha256 of every suite and text file the
job read. Paths are kept as the job saw them (relative to the working directory) and nothing depends on
the time, so two runs in one environment write the same bytes. :func:`provenance_table` flattens the
records into the run's ``tables/provenance.csv``.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

__all__ = ["PACKAGES", "file_hashes", "job_provenance", "model_identity", "package_versions", "provenance_table",
           "runtime_record", "sha256_file"]

# distributions whose versions every record carries (None when not installed)
PACKAGES = ("torch", "transformers", "tokenizers", "accelerate", "safetensors", "datasets", "lm_eval", "numpy",
            "polars", "spacy", "gguf", "snakemake", "negdiff")
# files of a local model folder that decide its outputs (weights, config, tokenizer)
MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".pt", ".json", ".model", ".txt")


def sha256_file(path: str | os.PathLike, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(block), b""):
            h.update(chunk)
    return h.hexdigest()


def file_hashes(paths: Iterable[str | os.PathLike]) -> dict[str, str]:
    """``{path: sha256}`` of each file, and of every file below each directory (sorted, recursive)."""
    out: dict[str, str] = {}
    for path in paths:
        p = Path(path)
        if p.is_dir():
            for f in sorted(q for q in p.rglob("*") if q.is_file()):
                out[str(f)] = sha256_file(f)
        elif p.is_file():
            out[str(p)] = sha256_file(p)
        else:
            raise FileNotFoundError(f"provenance: input {p} does not exist")
    return out


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """Installed version of each distribution (``lm_eval`` is also found as ``lm-eval``), None if absent."""
    from importlib import metadata

    out: dict[str, str | None] = {}
    for name in names:
        version = None
        for dist in dict.fromkeys([name, name.replace("_", "-")]):
            try:
                version = metadata.version(dist)
                break
            except metadata.PackageNotFoundError:
                continue
        out[name] = version
    return out


def hub_commit(load: Mapping[str, Any]) -> str | None:
    """The commit a hub model's revision resolved to in the local hub cache (the snapshot folder holding
    its config.json; offline-safe), or None for local folders and models not in the cache."""
    path = str(load.get("path"))
    if Path(path).expanduser().exists():
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(path, "config.json", cache_dir=load.get("cache_dir"),
                                       revision=load.get("revision"))
    except Exception:
        return None
    return Path(found).parent.name if isinstance(found, str) else None


def model_identity(model, load: Mapping[str, Any]) -> dict:
    """The model as configured (``load``: :func:`negdiff.models.load_model`'s keywords) and as resolved:
    the hub commit transformers recorded, or for a local folder the sha256 of its model files (and the
    GGUF record a de-quantised folder holds, see :func:`negdiff.models.convert_gguf`)."""
    config = model.config
    name = getattr(config, "name_or_path", None) or str(load.get("path"))
    out: dict[str, Any] = {
        "path": str(load.get("path")),
        "revision": load.get("revision"),
        "name_or_path": name,
        "commit": getattr(config, "_commit_hash", None) or hub_commit(load),
        "model_type": getattr(config, "model_type", None),
    }
    folder = Path(name)
    if folder.is_dir():
        files = sorted(f for f in folder.iterdir() if f.is_file() and f.suffix in MODEL_FILE_SUFFIXES)
        out["files"] = file_hashes(files)
        if (folder / "gguf.json").is_file():
            out["gguf"] = json.loads((folder / "gguf.json").read_text(encoding="utf-8"))
    return out


def runtime_record(model) -> dict:
    """Devices (with their names), dtype and attention implementation of a loaded model."""
    import platform

    import torch

    devices = sorted({str(p.device) for p in model.parameters()})
    names = {}
    for dev in devices:
        d = torch.device(dev)
        names[dev] = torch.cuda.get_device_name(d) if d.type == "cuda" else (platform.processor() or platform.machine())
    return {
        "devices": names,
        "dtype": str(getattr(model, "dtype", next(model.parameters()).dtype)).removeprefix("torch."),
        "attn_implementation": getattr(model.config, "_attn_implementation", None),
        "cuda": torch.version.cuda,
    }


def job_provenance(
    model=None,
    *,
    load: Mapping[str, Any],
    inputs: Mapping[str, Any] | None = None,
    sources: Mapping[str, str] | None = None,
    prefix: Mapping[str, Any] | None = None,
) -> dict:
    """The provenance record of one model job.

    ``model``: the loaded model (None when the job never loaded one, e.g. a selection without a search that
    runs it: then only the configured ``load`` is recorded). ``inputs``: ``{name: path or list of paths}`` of
    the suite and text files it read (directories: every file below). ``sources``: where inputs without a
    file came from (``{"blimp": "hf:nyu-mll/blimp", "nonsyntactic": "english"}``). ``prefix``: what
    :func:`negdiff.tokenizer.use_prefix_token` returned (None: no prefix prepended)."""
    record: dict[str, Any] = {"load": dict(load), "loaded": model is not None}
    if model is not None:
        record["model"] = model_identity(model, load)
        record.update(runtime_record(model))
    record["prefix"] = dict(prefix) if prefix else None
    record["versions"] = package_versions()
    files: dict[str, dict[str, str]] = {}
    for name, paths in (inputs or {}).items():
        paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths or [])
        if paths:
            files[name] = file_hashes(paths)
    record["inputs"] = files
    record["sources"] = dict(sources or {})
    return record


def _digest(mapping: Mapping[str, str]) -> str | None:
    if not mapping:
        return None
    return hashlib.sha256(json.dumps(sorted(mapping.items())).encode()).hexdigest()[:16]


def provenance_table(records: Mapping[tuple[str, str, str], dict]):
    """One row per model job, from ``{(rule, model, checkpoint): record}``: the resolved model (commit, or a
    digest of its files' sha256), device, dtype, attention, prefix, package versions and a digest of its
    inputs' sha256 (the full lists stay in the JSON records)."""
    import polars as pl

    rows = []
    for (rule, model_name, checkpoint), rec in records.items():
        ident = rec.get("model") or {}
        inputs = {f: h for group in rec.get("inputs", {}).values() for f, h in group.items()}
        versions = rec.get("versions", {})
        gguf = ident.get("gguf") or {}
        rows.append({
            "rule": rule, "model": model_name, "checkpoint": checkpoint,
            "model_path": rec["load"].get("path"), "revision": rec["load"].get("revision"),
            "loaded": rec.get("loaded", False), "commit": ident.get("commit"),
            "model_files_sha256": _digest(ident.get("files") or {}),
            "gguf_sha256": gguf.get("gguf_sha256"), "gguf_package": json.dumps(gguf["package"]) if gguf.get("package") else None,
            "devices": json.dumps(rec.get("devices")) if rec.get("devices") else None,
            "dtype": rec.get("dtype"), "attn_implementation": rec.get("attn_implementation"),
            "bos_token": (rec.get("prefix") or {}).get("bos_token"),
            "bos_token_id": (rec.get("prefix") or {}).get("bos_token_id"),
            **{k: versions.get(k) for k in ("torch", "transformers", "datasets", "lm_eval")},
            "n_input_files": len(inputs), "inputs_sha256": _digest(inputs),
            "sources": json.dumps(rec.get("sources"), sort_keys=True) if rec.get("sources") else None,
        })
    schema = {"bos_token_id": pl.Int64, "loaded": pl.Boolean, "n_input_files": pl.Int64}
    return pl.DataFrame(rows, schema_overrides=schema, infer_schema_length=None)
