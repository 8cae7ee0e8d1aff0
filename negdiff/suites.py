"""Minimal-pair suites: the registry of suites, and reading, sampling and the sources of pair files.

:data:`SUITES` names each suite the pipeline scores and how (a sentence's token log-probs summed, as
BLiMP does, or averaged, as the TSE templates are; the pair fields that group its pairs into
paradigms). A suite's pairs come from one of these sources (:func:`load_suite`): ``"builtin"`` (the
generated toy-grammar suite, see :mod:`negdiff.grammar`), ``"english"`` (the real-English fact pairs of
:mod:`negdiff.facts`), a local ``.jsonl`` file or folder of them (BLiMP's own format), or
``"hf:DATASET"``. :func:`sample_pairs` takes a seeded sample per paradigm, the same for every model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["REQUIRED_PAIR_FIELDS", "SUITES", "SuiteSpec", "load_suite", "read_pairs", "sample_indices", "sample_pairs"]


@dataclass(frozen=True)
class SuiteSpec:
    """How one suite is scored: its sentence reduction and the pair fields that group its pairs."""

    reduce: str  # "sum" | "mean": how a sentence's token log-probs are combined
    levels: tuple[tuple[str, str], ...]  # (level name, pair field holding the group label)


# the registry: a new suite is one entry (and its config keys in the schema; a test ties them)
SUITES: dict[str, SuiteSpec] = {
    "blimp": SuiteSpec("sum", (("paradigm", "UID"), ("linguistics_term", "linguistics_term"))),
    "tse": SuiteSpec("mean", (("template", "template"), ("case", "case"))),
    "nonsyntactic": SuiteSpec("sum", (("paradigm", "UID"), ("linguistics_term", "linguistics_term"))),
}


REQUIRED_PAIR_FIELDS = ("sentence_good", "sentence_bad")


def read_pairs(path_or_dir) -> list[dict]:
    """Read one ``.jsonl`` file, or every ``*.jsonl`` in a directory (sorted by file name).

    Raises ``ValueError`` naming the file and line for malformed JSON, a non-object line, missing or
    non-string ``sentence_good``/``sentence_bad``, or a line with neither ``UID`` nor ``template``.
    Blank lines are skipped.
    """
    path = Path(path_or_dir)
    if path.is_dir():
        files = sorted(path.glob("*.jsonl"), key=lambda p: p.name)
        if not files:
            raise ValueError(f"{path}: no .jsonl files")
    elif path.exists():
        files = [path]
    else:
        raise FileNotFoundError(
            f"minimal-pair benchmark {path} does not exist: expected a .jsonl file or a directory of "
            "*.jsonl files (one JSON object per line with sentence_good, sentence_bad and UID or template)"
        )
    rows: list[dict] = []
    for f in files:
        with open(f, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as err:
                    raise ValueError(f"{f}:{lineno}: invalid JSON: {err.msg}") from None
                if not isinstance(obj, dict):
                    raise ValueError(f"{f}:{lineno}: expected a JSON object, got {type(obj).__name__}")
                for key in REQUIRED_PAIR_FIELDS:
                    if not isinstance(obj.get(key), str) or not obj[key].strip():
                        raise ValueError(f"{f}:{lineno}: missing or empty field {key!r}")
                if "UID" not in obj and "template" not in obj:
                    raise ValueError(f"{f}:{lineno}: missing field 'UID' (or 'template')")
                rows.append(obj)
    return rows


def _check_count(n, what: str) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"{what} must be a positive int or 'all', got {n!r}")


def sample_pairs(pairs: list[dict], per_group: int | str, seed: int = 0, *, first: int | None = None) -> list[dict]:
    """A seeded sample of ``per_group`` pairs of each paradigm (``UID``) or TSE template, in file order.

    ``"all"`` (or a count at least the group's size) keeps every pair. Each group's sample is drawn
    with ``numpy.random.default_rng(SeedSequence([seed, crc32(group)]))``, so it depends only on the
    seed, the group name and that group's pairs, never on the other files present.

    ``first`` keeps only the first ``first`` pairs of each group's draw (a group kept whole is put in a
    random order drawn from the same seed first): a uniform subsample *nested* in the ``per_group``
    sample, so that conditions scored on it stay paired with those scored on the whole sample."""
    return [pairs[k] for k in sample_indices(pairs, per_group, seed, first=first)]


def sample_indices(pairs: list[dict], per_group: int | str, seed: int = 0, *, first: int | None = None) -> list[int]:
    """The positions in ``pairs`` of :func:`sample_pairs`' sample, ascending (the same arguments)."""
    import zlib

    groups: dict[str, list[int]] = {}
    for k, pair in enumerate(pairs):
        groups.setdefault(pair.get("UID") or pair.get("template") or "", []).append(k)
    if per_group == "all" and first is None:
        return list(range(len(pairs)))
    if per_group != "all":
        _check_count(per_group, "pairs per paradigm")
    if first is not None:
        _check_count(first, "the nested tier's pairs per paradigm")
    keep: list[int] = []
    for name, idx in groups.items():
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]))
        if per_group == "all" or len(idx) <= per_group:
            order = rng.permutation(len(idx)) if first is not None else range(len(idx))
        else:
            order = rng.choice(len(idx), size=per_group, replace=False)
        keep.extend(idx[j] for j in list(order)[:first])
    return sorted(keep)


def _hub_pairs(where: str) -> list[dict]:
    name = where[3:]
    try:
        import datasets
    except ImportError:
        raise ImportError(f"suite {where!r} needs the `datasets` package (pip install datasets)") from None
    from negdiff.staging import hub_configs

    try:
        pairs = []
        for cfg in sorted(hub_configs(name)):
            pairs.extend(dict(row) for row in datasets.load_dataset(name, cfg, split="train"))
    except Exception as err:
        raise RuntimeError(
            f"could not load suite {where!r} ({type(err).__name__}: {err}); offline, stage it first "
            "(staging.enabled: true, snakemake stage) or point the suite at a local directory of JSON-lines files"
        ) from None
    return pairs


def load_suite(where: str, *, local_dir: str | Path | None = None) -> list[dict]:
    """Minimal pairs from ``"builtin"`` (the generated suite in ``local_dir``), ``"english"`` (the
    real-English fact suite of :mod:`negdiff.facts`), a directory or file of JSON lines, or
    ``"hf:DATASET"`` (its configs, split "train": read from ``local_dir`` when the suite was staged by
    :func:`negdiff.staging.stage_suite`, else loaded through ``datasets``; BLiMP's configs are named in
    :data:`negdiff.staging.BLIMP_PARADIGMS`, never discovered, since offline discovery answers one)."""
    if where == "english":
        from negdiff.facts import english_fact_pairs

        return english_fact_pairs()
    if where == "builtin":
        if local_dir is None:
            raise ValueError("the built-in suite needs its directory")
        return read_pairs(local_dir)
    if where.startswith("hf:"):
        if local_dir is not None:
            return read_pairs(local_dir)
        return _hub_pairs(where)
    path = Path(where)
    if not path.exists():
        raise FileNotFoundError(f"benchmark suite {where!r} does not exist: expected a directory of *.jsonl files")
    return read_pairs(path)
