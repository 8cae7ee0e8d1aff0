"""Staging on the submitting host: hub models and hub suites fetched once, so GPU jobs need no network.

Compute nodes are usually offline, and two hub calls do not survive that: ``from_pretrained`` of a
model that is not in the cache, and ``datasets.get_dataset_config_names`` of a multi-config dataset
(offline it answers ``['default']``, a known ``datasets`` bug, so BLiMP would silently shrink to one
config). With ``staging.enabled`` the pipeline's light ``localrules`` do both on the login node:

* :func:`stage_model` downloads each configured revision of a hub model (weights as safetensors only,
  config and tokenizer files) with ``huggingface_hub.snapshot_download`` into ``staging.cache_dir``
  and records the commit each revision resolved to. Model jobs then load with that ``cache_dir`` and
  ``local_files_only=True`` (and run under ``HF_HUB_OFFLINE=1``).
* :func:`stage_suite` writes a hub suite once as local JSON lines, one file per config, with the
  dataset's commit and each file's sha256 recorded. BLiMP's 67 configs are named here
  (:data:`BLIMP_PARADIGMS`), never discovered at run time.

Both return the record their rule writes; neither runs a model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Iterable

from negdiff.io import atomic_path
from negdiff.provenance import sha256_file

__all__ = ["BLIMP_PARADIGMS", "MODEL_FILES", "hub_configs", "stage_model", "stage_suite"]

# the files a model job needs: safetensors weights, configs, tokenizer files (no .bin / .pt / .h5 / .msgpack)
MODEL_FILES = ("*.safetensors", "*.safetensors.index.json", "*.json", "*.model", "*.txt", "*.tiktoken")

# BLiMP's 67 paradigms (Warstadt et al. 2020), the configs of the hub dataset nyu-mll/blimp, one per
# data/*.jsonl file of the BLiMP repository
BLIMP_PARADIGMS = (
    "adjunct_island", "anaphor_gender_agreement", "anaphor_number_agreement", "animate_subject_passive",
    "animate_subject_trans", "causative", "complex_NP_island",
    "coordinate_structure_constraint_complex_left_branch", "coordinate_structure_constraint_object_extraction",
    "determiner_noun_agreement_1", "determiner_noun_agreement_2", "determiner_noun_agreement_irregular_1",
    "determiner_noun_agreement_irregular_2", "determiner_noun_agreement_with_adj_2",
    "determiner_noun_agreement_with_adj_irregular_1", "determiner_noun_agreement_with_adj_irregular_2",
    "determiner_noun_agreement_with_adjective_1", "distractor_agreement_relational_noun",
    "distractor_agreement_relative_clause", "drop_argument", "ellipsis_n_bar_1", "ellipsis_n_bar_2",
    "existential_there_object_raising", "existential_there_quantifiers_1", "existential_there_quantifiers_2",
    "existential_there_subject_raising", "expletive_it_object_raising", "inchoative", "intransitive",
    "irregular_past_participle_adjectives", "irregular_past_participle_verbs",
    "irregular_plural_subject_verb_agreement_1", "irregular_plural_subject_verb_agreement_2",
    "left_branch_island_echo_question", "left_branch_island_simple_question",
    "matrix_question_npi_licensor_present", "npi_present_1", "npi_present_2", "only_npi_licensor_present",
    "only_npi_scope", "passive_1", "passive_2", "principle_A_c_command", "principle_A_case_1",
    "principle_A_case_2", "principle_A_domain_1", "principle_A_domain_2", "principle_A_domain_3",
    "principle_A_reconstruction", "regular_plural_subject_verb_agreement_1",
    "regular_plural_subject_verb_agreement_2", "sentential_negation_npi_licensor_present",
    "sentential_negation_npi_scope", "sentential_subject_island", "superlative_quantifiers_1",
    "superlative_quantifiers_2", "tough_vs_raising_1", "tough_vs_raising_2", "transitive", "wh_island",
    "wh_questions_object_gap", "wh_questions_subject_gap", "wh_questions_subject_gap_long_distance",
    "wh_vs_that_no_gap", "wh_vs_that_no_gap_long_distance", "wh_vs_that_with_gap",
    "wh_vs_that_with_gap_long_distance",
)

# hub datasets whose configs are named here rather than discovered
KNOWN_CONFIGS: dict[str, tuple[str, ...]] = {"nyu-mll/blimp": BLIMP_PARADIGMS, "blimp": BLIMP_PARADIGMS}


def stage_model(path: str, revisions: Iterable[str], *, cache_dir: str | os.PathLike,
                allow_patterns: Iterable[str] = MODEL_FILES, download: Callable[..., str] | None = None) -> dict:
    """Download every revision of hub model ``path`` into ``cache_dir``; returns the record
    ``{"model": path, "cache_dir": ..., "revisions": {revision: {"commit": sha, "files": [...]}}}``.

    ``download`` defaults to ``huggingface_hub.snapshot_download`` (its result is the snapshot folder,
    named after the commit the revision resolved to). Fails naming the model and revision when a
    revision has no safetensors weights: model jobs load safetensors only.
    """
    if download is None:
        from huggingface_hub import snapshot_download as download
    out: dict[str, Any] = {"model": path, "cache_dir": str(cache_dir), "revisions": {}}
    for revision in revisions:
        try:
            folder = Path(download(repo_id=path, revision=revision, cache_dir=str(cache_dir),
                                   allow_patterns=list(allow_patterns)))
        except Exception as err:
            raise RuntimeError(f"staging model {path} revision {revision!r} failed ({type(err).__name__}: {err})") from err
        files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        if not any(f.endswith(".safetensors") for f in files):
            raise FileNotFoundError(f"model {path} revision {revision!r} has no *.safetensors weights in {folder}; "
                                    "model jobs load safetensors only")
        out["revisions"][revision] = {"commit": folder.name, "files": files}
    return out


def hub_configs(name: str, configs: Iterable[str] | None = None) -> list[str]:
    """The configs of hub dataset ``name`` to stage: ``configs`` when given, the known list
    (:data:`KNOWN_CONFIGS`, BLiMP), else those the hub lists (networked login node only)."""
    if configs is not None:
        return list(configs)
    if name in KNOWN_CONFIGS:
        return list(KNOWN_CONFIGS[name])
    import datasets

    return sorted(datasets.get_dataset_config_names(name))


def _dataset_commit(name: str, revision: str | None) -> str | None:
    """The commit ``revision`` of hub dataset ``name`` points at (None offline or for non-hub names)."""
    try:
        from huggingface_hub import HfApi

        return HfApi().dataset_info(name, revision=revision).sha
    except Exception:
        return None


def stage_suite(where: str, out_dir: str | os.PathLike, *, revision: str | None = None,
                configs: Iterable[str] | None = None, split: str = "train",
                load: Callable[..., Iterable[dict]] | None = None) -> dict:
    """Write hub suite ``where`` (``"hf:DATASET"``) as ``out_dir/{config}.jsonl``, one file per config;
    returns the record (dataset, revision, resolved commit, split, and per file its rows and sha256).

    ``load`` defaults to ``datasets.load_dataset(name, config, split=split, revision=revision)``.
    """
    if not where.startswith("hf:"):
        raise ValueError(f"stage_suite stages hub suites ('hf:DATASET'), got {where!r}")
    name = where[3:]
    if load is None:
        import datasets

        def load(n, c, **kw):
            return datasets.load_dataset(n, c, **kw)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for cfg in hub_configs(name, configs):
        rows = [dict(r) for r in load(name, cfg, split=split, revision=revision)]
        if not rows:
            raise ValueError(f"suite {where}: config {cfg!r} split {split!r} has no rows")
        path = out_dir / f"{cfg}.jsonl"
        with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        files[path.name] = {"rows": len(rows), "sha256": sha256_file(path)}
    return {"suite": where, "dataset": name, "revision": revision, "commit": _dataset_commit(name, revision),
            "split": split, "files": files}
